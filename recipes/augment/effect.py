"""`augmentation_effect`: does augmentation help this model on this data? Measured, not assumed.

Augmentation pays most when real training data are few. The recipe trains the same model twice from the
same seed on a small real training set, once as it is and once multiplied by an augmenter, for the same
number of optimizer steps (the plain arm repeats its rows, so that more steps do not pass for an effect),
and scores both on the same untouched test set. A difference within the noise is reported as no clear
effect; the noise is judged on paired data (the same test rows scored by both arms), which is far tighter
than comparing two independent accuracies.
"""

import dataclasses
import inspect
import math

import numpy as np

from recipes.augment.core import _check_seed
from recipes.augment.dataset import _check_augmenter, _check_n, augment_dataset

VERDICTS = ("helps", "hurts", "no clear effect")
# A difference counts when it exceeds this many standard errors (about 95% two-sided).
Z = 2.0


@dataclasses.dataclass(frozen=True)
class EffectReport:
    """What `augmentation_effect` returns. `str(report)` is its `summary`.

    Attributes:
        verdict: One of `VERDICTS`: `"helps"`, `"hurts"` or `"no clear effect"`.
        baseline: Test accuracy without augmentation, one per repeat.
        augmented: Test accuracy with augmentation, one per repeat.
        baseline_mean: Mean of `baseline`.
        augmented_mean: Mean of `augmented`.
        difference: `augmented_mean - baseline_mean`.
        margin: The smallest difference counted as an effect: `Z` standard errors of `difference`, the
            larger of two: over the test rows (per row, the share of repeats the augmented arm got right
            minus that of the plain arm: a paired test, McNemar's in spirit) and over the repeats (the
            spread of the per-repeat differences).
        augmenter: The augmenter's name.
        num_train: Real training rows.
        num_synthetic: Synthetic rows added (`n` per real row).
        num_test: Test rows.
        steps: Optimizer steps per training run, the same in both arms.
        summary: One paragraph: the verdict and the figures.
    """

    verdict: str
    baseline: list
    augmented: list
    baseline_mean: float
    augmented_mean: float
    difference: float
    margin: float
    augmenter: str
    num_train: int
    num_synthetic: int
    num_test: int
    steps: int
    summary: str

    def __str__(self):
        return self.summary


def augmentation_effect(
    model_fn, train, test, augmenter, *, n=2, seed=0, epochs=5, batch_size=32, repeats=1, progress=False
):
    """Test accuracy of a model trained with and without augmentation, on the same real data.

    For each repeat `r`, the global seeds are set to `seed + r` (`recipes.set_seed`) before each arm, so
    both arms start from the same initial weights: the plain arm trains on `train`; the augmented arm on
    `augment_dataset(train, augmenter, n=n, seed=seed + r)` (the real rows plus `n` variants of each).
    Both take `epochs * ceil((n + 1) * len(train) / batch_size)` steps of shuffled batches, and both are
    scored on `test`, which is never augmented.

    Example:

    ```python
    import keras
    import recipes
    from recipes.augment import augmentation_effect, text_augmenter

    reviews = recipes.datasets.load_rotten_tomatoes().sample(600, random_state=0)
    train, test = reviews[:200], reviews[200:]

    def model_fn(texts):
        vectorize = keras.layers.TextVectorization(max_tokens=5000, output_mode="tf_idf")
        vectorize.adapt(texts)
        head = keras.layers.Dense(2, activation="softmax")
        model = keras.Sequential([keras.Input(shape=(), dtype="string"), vectorize, head])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    report = augmentation_effect(
        model_fn,
        (train.text.to_numpy(), train.label.to_numpy()),
        (test.text.to_numpy(), test.label.to_numpy()),
        text_augmenter("swap", aug_p=0.1),
        n=2,
        epochs=3,
    )
    print(report)  # no clear effect: test accuracy 0.6xx with swap, 0.6xx without, ...
    ```

    Args:
        model_fn: Callable returning a new compiled classifier (`keras.Model`, class probabilities out).
            Called with as many of `(x_train, y_train)` as it has required positional parameters, so that
            factories that adapt preprocessing on their training inputs see the augmented inputs in the
            augmented arm.
        train: `(x, y)` or `(x, y, keys)`: the small real training set (integer class ids).
        test: `(x, y)`: the untouched test set.
        augmenter: Callable `(item, seed) -> item`, e.g. `text_augmenter("synonym")`.
        n: Int >= 1, defaults to 2. Synthetic variants per training row.
        seed: Non-negative int, defaults to 0.
        epochs: Int >= 1, defaults to 5. Passes over the augmented set (and as many steps for the plain arm).
        batch_size: Int >= 1, defaults to 32.
        repeats: Int >= 1, defaults to 1. Runs with seeds `seed`, `seed + 1`, ...; the accuracies are
            averaged and their spread enters the margin.
        progress: Bool, defaults to `False`. Progress bars of the augmentation.

    Returns:
        An `EffectReport`.
    """
    from recipes import pipeline
    from recipes.seed import set_seed

    if not callable(model_fn):
        raise ValueError(f"`model_fn` must be a callable returning a compiled model. Received: {model_fn!r}")
    _check_augmenter(augmenter)
    n, seed = _check_n(n), _check_seed(seed)
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    for name, value in (("train", train), ("test", test)):
        if not isinstance(value, (tuple, list)) or len(value) not in (2, 3) or len(value[0]) != len(value[1]):
            raise ValueError(
                f"`{name}` must be an (x, y) tuple of arrays of one length. Received: {type(value).__name__}"
            )
    x_train, y_train = np.asarray(train[0]), np.asarray(train[1])
    x_test, y_test = np.asarray(test[0]), np.asarray(test[1])
    if len(x_train) == 0 or len(x_test) == 0:
        raise ValueError(f"`train` and `test` must not be empty; received {len(x_train)} and {len(x_test)} rows")

    steps_per_epoch = math.ceil((n + 1) * len(x_train) / batch_size)
    baseline, augmented = [], []
    row_differences = np.zeros(len(y_test))
    for repeat in range(repeats):
        run_seed = seed + repeat
        more = augment_dataset(tuple(train), augmenter, n=n, seed=run_seed, progress=progress)
        for arm, (x, y) in (("baseline", (x_train, y_train)), ("augmented", (more.x, more.y))):
            set_seed(run_seed)
            model = _build(model_fn, x, y)
            model.fit(
                pipeline.training_pipeline((x, y), batch_size),
                steps_per_epoch=steps_per_epoch,
                epochs=epochs,
                shuffle=False,  # the pipeline shuffles
                verbose=0,
            )
            correct = _correct(model, x_test, y_test, batch_size)
            (baseline if arm == "baseline" else augmented).append(float(correct.mean()))
            row_differences += (correct if arm == "augmented" else -correct) / repeats

    baseline_mean, augmented_mean = float(np.mean(baseline)), float(np.mean(augmented))
    difference = augmented_mean - baseline_mean
    margin = _margin(baseline, augmented, row_differences)
    verdict = "helps" if difference > margin else "hurts" if difference < -margin else "no clear effect"
    name = getattr(augmenter, "name", type(augmenter).__name__)
    summary = (
        f"{verdict}: test accuracy {augmented_mean:.3f} with augmentation ({name}, {n} synthetic per real row) vs "
        f"{baseline_mean:.3f} without, a difference of {difference:+.3f} (counted beyond +-{margin:.3f}); "
        f"{len(x_train)} real training rows, {len(x_test)} test rows, {steps_per_epoch * epochs} steps per run, "
        f"{repeats} repeat(s)."
    )
    return EffectReport(
        verdict, baseline, augmented, baseline_mean, augmented_mean, difference, margin, name,
        len(x_train), n * len(x_train), len(x_test), steps_per_epoch * epochs, summary,
    )  # fmt: skip


def _margin(baseline, augmented, row_differences):
    """`Z` standard errors of the difference: over the paired test rows, or over the repeats."""
    rows = float(np.std(row_differences, ddof=1) / math.sqrt(len(row_differences))) if len(row_differences) > 1 else 0.0
    spread = 0.0
    if len(baseline) > 1:
        differences = np.asarray(augmented) - np.asarray(baseline)
        spread = float(np.std(differences, ddof=1) / math.sqrt(len(differences)))
    return Z * max(rows, spread)


def _build(model_fn, x, y):
    import keras

    try:
        parameters = inspect.signature(model_fn).parameters.values()
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        arity = sum(1 for p in parameters if p.kind in positional and p.default is inspect.Parameter.empty)
    except (TypeError, ValueError):
        arity = 0
    if arity > 2:
        raise ValueError(f"`model_fn` must take at most (x_train, y_train). Received {arity} required parameters")
    model = model_fn(*(x, y)[:arity])
    if not isinstance(model, keras.Model) or getattr(model, "optimizer", None) is None:
        raise ValueError(f"`model_fn` must return a compiled keras.Model. Received: {type(model).__name__}")
    return model


def _correct(model, x, y, batch_size):
    """Whether each row is classified right, as floats 0/1."""
    import keras

    probabilities = np.asarray(keras.ops.convert_to_numpy(model.predict(x, batch_size=max(batch_size, 256), verbose=0)))
    if probabilities.ndim == 1 or probabilities.shape[-1] == 1:
        predicted = (probabilities.reshape(len(probabilities)) > 0.5).astype(np.int64)
    else:
        predicted = probabilities.reshape(len(probabilities), -1).argmax(axis=1)
    return (predicted == np.asarray(y).reshape(len(y))).astype(np.float64)

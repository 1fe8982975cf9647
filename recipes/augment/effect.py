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

from recipes._common import check_callable, check_int, check_verbose
from recipes.augment.dataset import AUGMENTER_EXPECTED, augment_dataset
from recipes.report import Report

EFFECTS = ("helps", "hurts", "no clear effect")
# The report's verdict for each effect: augmentation that hurts fails, one that does not clearly help warns.
EFFECT_VERDICTS = {"helps": "pass", "hurts": "fail", "no clear effect": "warn"}
# A difference counts when it exceeds this many standard errors (about 95% two-sided).
Z = 2.0
# Passes over the augmented training set when `total_examples` is not given.
DEFAULT_PASSES = 5


@dataclasses.dataclass(frozen=True)
class EffectReport(Report):
    """What `augmentation_effect` returns: a `recipes.report.Report`.

    Attributes:
        verdict: `"pass"` when augmentation helps, `"fail"` when it hurts, `"warn"` for no clear effect.
        summary: One line: the effect and the figures.
        advice: What to do about it.
        effect: One of `EFFECTS`: `"helps"`, `"hurts"` or `"no clear effect"`.
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
        num_train: Real training examples.
        num_synthetic: Synthetic examples added (`n` per real one).
        num_test: Test examples.
        steps: Optimizer steps per training run, the same in both arms.
    """

    effect: str = "no clear effect"
    baseline: tuple = ()
    augmented: tuple = ()
    baseline_mean: float = math.nan
    augmented_mean: float = math.nan
    difference: float = math.nan
    margin: float = math.nan
    augmenter: str = ""
    num_train: int = 0
    num_synthetic: int = 0
    num_test: int = 0
    steps: int = 0


def augmentation_effect(
    model_fn,
    train_data,
    test_data,
    augmenter,
    *,
    n=2,
    seed=0,
    total_examples=None,
    num_checkpoints=DEFAULT_PASSES,
    batch_size=32,
    repeats=1,
    verbose="auto",
):
    """Test accuracy of a model trained with and without augmentation, on the same real data.

    For each repeat `r`, the global seeds are set to `seed + r` (`recipes.set_seed`) before each arm, so
    both arms start from the same initial weights: the plain arm trains on `train_data`; the augmented arm
    on `augment_dataset(train_data, augmenter, n=n, seed=seed + r)` (the real examples plus `n` variants of
    each). Both train with `recipes.fit` for the same `total_examples` in `num_checkpoints` virtual epochs
    (the plain arm repeats its examples, so that more steps do not pass for an effect), and both are scored
    on `test_data`, which is never augmented.

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
        total_examples=3 * 600,  # three passes over the 600 real and synthetic examples
    )
    print(report.summary)  # no clear effect: test accuracy 0.6xx with swap, 0.6xx without, ...
    ```

    Args:
        model_fn: Callable returning a new compiled classifier (`keras.Model`, class probabilities out).
            Called with as many of `(x_train, y_train)` as it has required positional parameters, so that
            factories that adapt preprocessing on their training inputs see the augmented inputs in the
            augmented arm.
        train_data: `(x, y)` or `(x, y, keys)`: the small real training set (integer class ids).
        test_data: `(x, y)`: the untouched test set.
        augmenter: Callable `(item, seed) -> item`, e.g. `text_augmenter("synonym")`.
        n: Int >= 1, defaults to 2. Synthetic variants per training example.
        seed: Int >= 0, defaults to 0.
        total_examples: Optional int, examples each arm is shown in all; defaults to `None`:
            `DEFAULT_PASSES` (5) passes over the augmented set, `5 * (n + 1) * len(train_data)`.
        num_checkpoints: Int >= 1, defaults to 5. Virtual epochs of each training run (nothing is
            written: the steps of each are `total_examples // (batch_size * num_checkpoints)`).
        batch_size: Int >= 1, defaults to 32.
        repeats: Int >= 1, defaults to 1. Runs with seeds `seed`, `seed + 1`, ...; the accuracies are
            averaged and their spread enters the margin.
        verbose: Progress of the augmentation, as `augment_dataset` shows it: `"auto"` (default), 0, 1
            or 2. Training is silent.

    Returns:
        An `EffectReport`.
    """
    from recipes.seed import set_seed
    from recipes.training import fit, virtual_steps_per_epoch

    check_callable("model_fn", model_fn, "a callable returning a compiled model")
    check_callable("augmenter", augmenter, AUGMENTER_EXPECTED)
    n, seed = check_int("n", n), check_int("seed", seed, minimum=0)
    batch_size, repeats = check_int("batch_size", batch_size), check_int("repeats", repeats)
    num_checkpoints = check_int("num_checkpoints", num_checkpoints)
    check_verbose(verbose)
    for name, value in (("train_data", train_data), ("test_data", test_data)):
        if not isinstance(value, (tuple, list)) or len(value) not in (2, 3) or len(value[0]) != len(value[1]):
            raise ValueError(
                f"`{name}` must be an (x, y) tuple of arrays of one length. Received: {name}={type(value).__name__}"
            )
    x_train, y_train = np.asarray(train_data[0]), np.asarray(train_data[1])
    x_test, y_test = np.asarray(test_data[0]), np.asarray(test_data[1])
    if len(x_train) == 0 or len(x_test) == 0:
        raise ValueError(
            f"`train_data` and `test_data` must not be empty. Received: {len(x_train)} and {len(x_test)} examples"
        )
    if total_examples is None:
        total_examples = DEFAULT_PASSES * (n + 1) * len(x_train)
    steps = num_checkpoints * virtual_steps_per_epoch(total_examples, batch_size, num_checkpoints)

    baseline, augmented = [], []
    row_differences = np.zeros(len(y_test))
    for repeat in range(repeats):
        run_seed = seed + repeat
        more = augment_dataset(tuple(train_data), augmenter, n=n, seed=run_seed, verbose=verbose)
        for arm, (x, y) in (("baseline", (x_train, y_train)), ("augmented", (more.x, more.y))):
            set_seed(run_seed)
            model = _build(model_fn, x, y)
            fit(
                model,
                (x, y),
                batch_size=batch_size,
                total_examples=total_examples,
                num_checkpoints=num_checkpoints,
                verbose=0,
            )
            correct = _correct(model, x_test, y_test, batch_size)
            (baseline if arm == "baseline" else augmented).append(float(correct.mean()))
            row_differences += (correct if arm == "augmented" else -correct) / repeats

    baseline_mean, augmented_mean = float(np.mean(baseline)), float(np.mean(augmented))
    difference = augmented_mean - baseline_mean
    margin = _margin(baseline, augmented, row_differences)
    effect = "helps" if difference > margin else "hurts" if difference < -margin else "no clear effect"
    name = getattr(augmenter, "name", type(augmenter).__name__)
    summary = (
        f"{effect}: test accuracy {augmented_mean:.3f} with augmentation ({name}, {n} synthetic per real example) "
        f"vs {baseline_mean:.3f} without, a difference of {difference:+.3f} (counted beyond +-{margin:.3f}); "
        f"{len(x_train)} real training examples, {len(x_test)} test examples, {steps} steps per run, "
        f"{repeats} repeat(s)"
    )
    return EffectReport(
        EFFECT_VERDICTS[effect],
        summary,
        _advice(effect, name, n),
        effect=effect,
        baseline=baseline,
        augmented=augmented,
        baseline_mean=baseline_mean,
        augmented_mean=augmented_mean,
        difference=difference,
        margin=margin,
        augmenter=name,
        num_train=len(x_train),
        num_synthetic=n * len(x_train),
        num_test=len(x_test),
        steps=steps,
    )


def _advice(effect, name, n):
    if effect == "helps":
        return [f"train on recipes.augment.augment_dataset(train_data, augmenter, n={n}) (the {name!r} augmenter)"]
    if effect == "hurts":
        return [
            f"drop the {name!r} augmenter, or make it milder (a smaller aug_p or factor) and measure again",
            "check that its outputs keep their labels: print a few of augment_dataset's synthetic rows",
        ]
    return [
        "narrow the margin before deciding: more repeats (repeats=) or more test examples",
        f"try another augmenter than {name!r}, or fewer synthetic variants (n=)",
    ]


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
        raise ValueError(
            f"`model_fn` must take at most two required arguments, (x_train, y_train). Received: {arity} of them"
        )
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

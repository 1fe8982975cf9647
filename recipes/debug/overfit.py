"""`overfit_check`: a model that cannot learn a few hundred rows by heart has a bug.

Simplify the problem before tuning anything: sample a few classes and a few rows of each, train on them
and evaluate on the very same rows. Any model worth training gets (almost) all of them right, so a FAIL
points at a bug, not at too little data or capacity ("overfit a single batch", A. Karpathy, *A Recipe for
Training Neural Networks*, 2019). Where it is cheap, the check looks for the usual bugs itself and names
them: labels unrelated to the inputs, a loss that does not fit the label format, a learning rate of 0,
frozen layers or weights that never change, preprocessing layers never adapted, unscaled inputs, a loss
that explodes or turns NaN.
"""

import collections.abc
import dataclasses
import inspect
import math
import os
import re

import keras
import numpy as np
import tensorflow as tf

from recipes import pipeline
from recipes.seed import set_seed

TASKS = ("classification", "regression")
# Shuffled labels: a 1-nearest-neighbour vote on the raw inputs agrees with the labels no better than
# chance plus this margin. Correct labels of real data sets score far higher (0.98 on the digits).
LABEL_AGREEMENT_MARGIN = 0.1
# Numeric inputs beyond this absolute value want scaling (pixels 0-255, raw counts, prices).
RAW_INPUT_LIMIT = 10.0
# A first-epoch classification loss this many times ln(classes) (the loss of a uniform guess) means the
# activations blew up.
EXPLODED_LOSS_FACTOR = 10.0
# "Still learning": the metric rose by this much over the last third of the epochs.
STILL_RISING = 0.05
_MAX_NEIGHBOUR_ROWS = 2000
_EVALUATION_BATCH = 1024

# The bug checklist, in the order to check it: the cheapest and commonest mistakes first.
CHECKLIST = (
    ("labels", "labels match the inputs (not shuffled, misaligned by a sort or a join, or read from the wrong column)"),
    (
        "loss",
        "the loss fits the label format (integer class ids: sparse_categorical_crossentropy; one-hot rows: "
        "categorical_crossentropy; 0/1 with one sigmoid unit: binary_crossentropy) and the number of output units",
    ),
    ("learning rate", "the learning rate is neither 0 nor so large that the loss explodes (Adam: try 1e-3)"),
    ("trainable weights", "the layers that must learn are trainable (no trainable=False left from transfer learning)"),
    (
        "preprocessing",
        "preprocessing layers (Normalization, TextVectorization, StringLookup) are adapted on training data",
    ),
    ("input scaling", "inputs are scaled (pixels through keras.layers.Rescaling(1 / 255), features normalised)"),
)
_ORDER = [key for key, _ in CHECKLIST] + ["training"]
_SCALING_LAYERS = frozenset(
    {
        "Rescaling",
        "Normalization",
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
        "BackbonePreprocessing",
    }
)
_SPARSE_LOSSES = frozenset({"sparsecategoricalcrossentropy"})
_CATEGORICAL_LOSSES = frozenset({"categoricalcrossentropy", "categoricalfocalcrossentropy", "categoricalhinge"})
_BINARY_LOSSES = frozenset({"binarycrossentropy", "binaryfocalcrossentropy", "hinge", "squaredhinge"})
_REGRESSION_LOSSES = frozenset(
    {
        "mse", "meansquarederror", "mae", "meanabsoluteerror", "huber", "logcosh", "mape",
        "meanabsolutepercentageerror", "msle", "meansquaredlogarithmicerror",
    }
)  # fmt: skip
_CLASSIFICATION_LOSSES = _SPARSE_LOSSES | _CATEGORICAL_LOSSES | _BINARY_LOSSES


@dataclasses.dataclass(frozen=True)
class OverfitReport:
    """What `overfit_check` returns. `str(report)` is its `advice`.

    Attributes:
        verdict: `"PASS"` or `"FAIL"`.
        metric: `"accuracy"` (classification) or `"r2"` (regression: 1 - MSE / variance of the targets).
        reached: Best value of `metric` on the trained rows over the epochs (NaN if no epoch finished).
        target: The value to reach.
        chance: Score of a constant guess on the sample: the share of its largest class for
            classification, 0 for R².
        curve: Dict with one value per epoch: `"loss"` (the training loss Keras logs) and `metric`
            (measured on the same rows in inference mode at the end of each epoch).
        epochs: Epochs run (training stops at the target, at a NaN loss, or after a first epoch that
            changed no weight).
        num_rows: Rows sampled and trained on.
        indices: Their positions in `x` and `y`, sorted.
        classes: The sampled class ids (classification) or `None`.
        label_agreement: Share of sampled rows whose nearest neighbour (raw numeric inputs) has the same
            label, or `None` (regression, text or mixed inputs). Near `chance`, the labels look
            unrelated to the inputs.
        causes: Causes found on this model and data, in checklist order (see `CHECKLIST`).
        advice: One paragraph: the verdict, what was found, what else to check, in order.
        error: The training error (`"ValueError: ..."`) when training failed for a cause named in
            `causes`, else `None`.
    """

    verdict: str
    metric: str
    reached: float
    target: float
    chance: float
    curve: dict
    epochs: int
    num_rows: int
    indices: np.ndarray = dataclasses.field(repr=False)
    classes: list | None
    label_agreement: float | None
    causes: list
    advice: str
    error: str | None = None

    def __str__(self):
        return self.advice

    def plot(self, path):
        """Writes the per-epoch curve (metric, target and training loss) as a PNG file.

        Uses Matplotlib's Agg canvas directly, so it needs no display and leaves pyplot's state alone.

        Args:
            path: File to write, e.g. `"overfit.png"`.

        Returns:
            `path`, as a string.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        figure = Figure(figsize=(6.4, 4.0), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        values = self.curve.get(self.metric, [])
        epochs = range(1, len(values) + 1)
        axes.plot(epochs, values, marker="o", color="tab:blue", label=f"{self.metric} on the trained rows")
        axes.axhline(self.target, linestyle="--", color="tab:green", label=f"target {self.target:g}")
        axes.axhline(self.chance, linestyle=":", color="grey", label=f"chance {self.chance:.2f}")
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(self.metric)
        loss_axes = axes.twinx()
        losses = self.curve.get("loss", [])
        loss_axes.plot(range(1, len(losses) + 1), losses, color="tab:red", alpha=0.6, label="training loss")
        loss_axes.set_ylabel("training loss")
        if losses and all(math.isfinite(v) and v > 0 for v in losses):
            loss_axes.set_yscale("log")
        lines = axes.get_legend_handles_labels()
        loss_lines = loss_axes.get_legend_handles_labels()
        axes.legend(lines[0] + loss_lines[0], lines[1] + loss_lines[1], loc="center right", fontsize="small")
        shown = "nan" if math.isnan(self.reached) else f"{self.reached:.3f}"
        axes.set_title(f"overfit_check: {self.verdict} ({self.metric} {shown}, {self.num_rows} rows)")
        if not values:
            axes.text(0.5, 0.5, "no epoch finished\n" + (self.error or "")[:80], ha="center", transform=axes.transAxes)
        path = os.fspath(path)
        figure.savefig(path, dpi=100)
        return path


def overfit_check(
    model_fn,
    x,
    y,
    *,
    num_classes=10,
    per_class=100,
    target=0.9,
    epochs=50,
    batch_size=32,
    seed=0,
    task="classification",
):
    """Trains a fresh model on a small sample and evaluates it on the same rows: PASS or FAIL.

    Samples `per_class` rows of each of `num_classes` classes (repeatably, from `seed`), builds a model
    with `model_fn`, trains it on the sample and, after every epoch, measures it on the same rows in
    inference mode (dropout and augmentation off). PASS when `target` is reached: the model, its loss
    and the input pipeline can learn. FAIL otherwise, with the causes found and the bug checklist in
    order (`OverfitReport.advice`). A model that memorises shuffled labels also passes (deep networks
    can, Zhang et al., 2017); the label check in `causes` still says so.

    Before training, the check inspects the model: the loss against the label format and the number of
    output units, the learning rate, frozen layers, un-adapted `Normalization` and vocabulary layers, and
    numeric inputs beyond +-10 (raw pixels) with no scaling layer. After training it looks for weights
    that never changed, a first loss far above that of a uniform guess, a NaN loss, one class predicted
    for every row and a metric still rising. When training raises an error and the inspection found a
    cause that explains it (Keras refuses integer labels with `categorical_crossentropy`; an un-adapted
    `TextVectorization` fails with "Table not initialized"), the report is a FAIL naming the cause and
    quoting the error; other errors propagate.

    Training stops early at the target, at a NaN loss, and after a first epoch that changed no weight.
    The global seeds are set from `seed` (`recipes.set_seed`) before `model_fn` is called, so the check
    repeats exactly.

    Example:

    ```python
    import functools
    import recipes
    from models import text, vision
    from recipes.debug import overfit_check

    images, labels = recipes.datasets.load_digits()
    report = overfit_check(
        functools.partial(vision.linear_classifier, (8, 8), 10, learning_rate=1e-2), images, labels
    )
    print(report)  # PASS: accuracy 0.910 >= 0.9 on the rows it trained on (1000 rows of 10 classes), ...

    reviews = recipes.datasets.load_rotten_tomatoes()
    report = overfit_check(
        lambda texts: text.bag_of_words_classifier(texts, 2),  # adapts its vocabulary on the sample
        reviews.text.to_numpy(), reviews.label.to_numpy(), num_classes=2,
    )
    report.plot("overfit.png")
    ```

    Args:
        model_fn: Callable returning a new compiled single-output `keras.Model`. Called with as many of
            `(x_sample, y_sample)` as it has required positional parameters: `model_fn()`,
            `model_fn(x_sample)` (factories that adapt preprocessing on their training inputs, such as
            `models.text.bag_of_words_classifier`), or `model_fn(x_sample, y_sample)`.
        x: Inputs: an array with one row per example, or a dict of such arrays (one per named model
            input, as `models.tabular.to_xy` returns; a `pandas.DataFrame` is read as a dict of columns).
        y: Labels, one per row: integer class ids or one-hot rows for classification, numbers for
            regression.
        num_classes: Int >= 2 or `None`, defaults to 10. Classes sampled (chosen at random when there are
            more); `None` takes all. For regression, the number of quantile bins of `y` the rows are
            drawn from, so the sample spans the range of the targets.
        per_class: Int >= 1, defaults to 100. Rows per class (or bin); a class with fewer gives all it has.
        target: Float in (0, 1], defaults to 0.9. Accuracy to reach for classification; R² for
            regression, i.e. a mean squared error at most `1 - target` of the targets' variance (a loss
            near zero, whatever the units).
        epochs: Int >= 1, defaults to 50. Most epochs to train.
        batch_size: Int >= 1, defaults to 32.
        seed: Non-negative int, defaults to 0. Seeds the sample and the global generators.
        task: `"classification"` (default) or `"regression"`.

    Returns:
        An `OverfitReport`.
    """
    _check_arguments(task, num_classes, per_class, target, epochs, batch_size, seed)
    x, y = _as_arrays(x, y)
    rng = np.random.default_rng(seed)
    class_ids = _class_ids(y) if task == "classification" else None
    classes, indices = _sample(y, class_ids, task, num_classes, per_class, rng)
    x_sample, y_sample = _rows(x, indices), y[indices]
    sample_ids = class_ids[indices] if class_ids is not None else None
    if task == "regression" and float(np.var(y_sample)) == 0.0:
        raise ValueError("`y` takes a single value on the sampled rows, so R² is undefined; pass varied targets")

    set_seed(seed)
    model = _build_model(model_fn, x_sample, y_sample)
    if task == "classification":
        chance = float(np.bincount(sample_ids).max() / len(sample_ids))
        label_agreement = _label_agreement(x_sample, sample_ids, rng)
    else:
        chance, label_agreement = 0.0, None
    findings = _inspect_model(model, x_sample, y_sample, task)
    if label_agreement is not None and label_agreement < chance + LABEL_AGREEMENT_MARGIN:
        findings.append(
            (
                "labels",
                f"the labels look unrelated to the inputs: only {label_agreement:.0%} of the sampled rows share "
                f"the label of their nearest neighbour in raw-input space, chance is {chance:.0%} (shuffled or "
                "misaligned labels?)",
            )
        )
    sample = _describe_sample(task, classes, len(indices), num_classes)
    metric = "accuracy" if task == "classification" else "r2"
    score = _Scorer(model, y_sample, sample_ids, task)
    before = _snapshot(model)
    tracker = _Tracker(x_sample, score, target, before)
    try:
        history = model.fit(
            _batches(x_sample, y_sample, batch_size, seed),
            epochs=epochs,
            shuffle=False,  # the pipeline shuffles
            verbose=0,
            callbacks=[tracker, keras.callbacks.TerminateOnNaN()],
        )
    except Exception as error:  # noqa: BLE001 - re-raised unless a cause found beforehand explains it
        if not any(key in ("loss", "preprocessing") for key, _ in findings):
            raise
        message = _error_text(error)
        findings = _ordered(findings)
        causes = [text for _, text in findings]
        advice = _advice("FAIL", metric, math.nan, target, chance, 0, epochs, sample, findings, message)
        return OverfitReport(
            "FAIL", metric, math.nan, target, chance, {"loss": [], metric: []}, 0, len(indices), indices,
            classes, label_agreement, causes, advice, message,
        )  # fmt: skip

    losses = [float(v) for v in history.history.get("loss", [])]
    values = tracker.values
    reached = max((v for v in values if not math.isnan(v)), default=math.nan)
    verdict = "PASS" if reached >= target else "FAIL"
    findings += _training_findings(model, before, losses, values, tracker, task, sample_ids, findings, target)
    findings = _ordered(findings)
    causes = [text for _, text in findings]
    advice = _advice(verdict, metric, reached, target, chance, len(values), epochs, sample, findings, None)
    return OverfitReport(
        verdict, metric, reached, target, chance, {"loss": losses, metric: values}, len(values), len(indices),
        indices, classes, label_agreement, causes, advice,
    )  # fmt: skip


# -- arguments and sampling ----------------------------------------------------------------------------


def _is_int(value, minimum):
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= minimum


def _check_arguments(task, num_classes, per_class, target, epochs, batch_size, seed):
    if not _is_int(seed, 0):
        raise ValueError(f"`seed` must be a non-negative int. Received: seed={seed!r}")
    if task not in TASKS:
        raise ValueError(f"`task` must be 'classification' or 'regression'. Received: task={task!r}")
    if num_classes is not None and not _is_int(num_classes, 2 if task == "classification" else 1):
        minimum = 2 if task == "classification" else 1
        raise ValueError(f"`num_classes` must be None or an int >= {minimum}. Received: num_classes={num_classes!r}")
    for name, value in (("per_class", per_class), ("epochs", epochs), ("batch_size", batch_size)):
        if not _is_int(value, 1):
            raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1:
        raise ValueError(
            f"`target` must be a number in (0, 1] (accuracy, or R² for regression). Received: target={target!r}"
        )


def _as_arrays(x, y):
    if isinstance(x, collections.abc.Mapping) or hasattr(x, "columns"):
        x = {str(name): _array(x[name]) for name in (x.columns if hasattr(x, "columns") else x)}
        if not x:
            raise ValueError("`x` is an empty dict; expected one array per model input")
        lengths = {f"x[{name!r}]": len(value) for name, value in x.items()}
    else:
        x = _array(x)
        lengths = {"x": len(x) if x.ndim else 0}
    y = np.asarray(y)
    lengths["y"] = len(y) if y.ndim else 0
    if len(set(lengths.values())) != 1 or lengths["y"] == 0:
        raise ValueError(f"`x` and `y` must have the same number of rows, at least one. Received lengths {lengths}")
    return x, y


def _array(values):
    array = np.asarray(values)
    return array.astype(object) if array.dtype.kind == "U" else array  # TensorFlow takes str objects, not <U


def _rows(x, indices):
    return {name: value[indices] for name, value in x.items()} if isinstance(x, dict) else x[indices]


def _class_ids(y):
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)  # one-hot rows
    if y.ndim > 2:
        raise ValueError(f"`y` must hold one label or one one-hot row per example. Received shape {y.shape}")
    flat = y.reshape(len(y))
    if flat.dtype.kind not in "biuf" or (flat.dtype.kind == "f" and not np.all(np.mod(flat, 1) == 0)):
        raise ValueError(
            "classification needs integer class ids or one-hot rows in `y`; for numeric targets pass "
            f"task='regression'. Received dtype {flat.dtype}, e.g. {flat[:3].tolist()}"
        )
    if flat.min() < 0:
        raise ValueError(f"class ids in `y` must be >= 0. Received a minimum of {flat.min()}")
    return flat.astype(np.int64)


def _sample(y, class_ids, task, num_classes, per_class, rng):
    if task == "classification":
        groups = class_ids
        classes = np.unique(groups)
        if num_classes is not None and len(classes) > num_classes:
            classes = np.sort(rng.choice(classes, num_classes, replace=False))
    else:
        values = y.reshape(len(y), -1)[:, 0].astype(np.float64)
        bins = num_classes or 10
        edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
        groups = np.searchsorted(edges, values, side="right")
        classes = np.unique(groups)
    chosen = []
    for group in classes:
        members = np.flatnonzero(groups == group)
        chosen.append(rng.choice(members, min(per_class, len(members)), replace=False))
    indices = np.sort(np.concatenate(chosen))
    return ([int(c) for c in classes] if task == "classification" else None), indices


def _describe_sample(task, classes, num_rows, num_classes):
    if task == "classification":
        return f"{num_rows} rows of {len(classes)} classes"
    return f"{num_rows} rows across {num_classes or 10} quantile bins of the target"


def _build_model(model_fn, x_sample, y_sample):
    if not callable(model_fn):
        raise ValueError(f"`model_fn` must be a callable returning a compiled model. Received: {model_fn!r}")
    arity = _required_positional(model_fn)
    if arity > 2:
        raise ValueError(
            "`model_fn` must take no required argument, the sampled inputs, or the sampled inputs and labels. "
            f"Received a callable with {arity} required positional parameters"
        )
    model = model_fn(*(x_sample, y_sample)[:arity])
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model_fn` must return a keras.Model. Received: {type(model).__name__}")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise ValueError("`model_fn` must return a compiled model (model.compile(optimizer=..., loss=...))")
    if not model.built:
        model(_rows(x_sample, np.arange(min(2, _num_rows(x_sample)))))
    if _has_outputs(model) and len(model.outputs) != 1:
        raise ValueError(f"`model_fn` must return a single-output model. Received {len(model.outputs)} outputs")
    return model


def _required_positional(function):
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 0
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in positional and p.default is inspect.Parameter.empty)


def _num_rows(x):
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def _has_outputs(model):
    try:
        return bool(model.outputs)
    except (AttributeError, ValueError):
        return False


# -- looking at the model before training --------------------------------------------------------------


def _layers(model):
    """Every layer inside `model`, nested models included, depth first."""
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _layers(layer)


def _loss_name(loss):
    """The loss as a lower-case name without underscores (`"sparsecategoricalcrossentropy"`), or `None`."""
    if isinstance(loss, str):
        name = loss
    elif isinstance(loss, keras.losses.Loss):
        fn = getattr(loss, "fn", None)
        name = getattr(fn, "__name__", None) or type(loss).__name__
    elif callable(loss):
        name = getattr(loss, "__name__", type(loss).__name__)
    else:
        return None
    return name.replace("_", "").lower()


def _loss_label(loss):
    if isinstance(loss, str):
        return loss
    return getattr(loss, "__name__", None) or type(loss).__name__


def _output_units(model):
    if not _has_outputs(model):
        return None
    shape = model.outputs[0].shape
    return int(shape[-1]) if len(shape) >= 2 and shape[-1] is not None else 1


def _learning_rate(model):
    try:
        return float(np.asarray(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    except (AttributeError, TypeError, ValueError):
        return None


def _inspect_model(model, x, y, task):
    findings = []
    findings += _loss_findings(model, y, task)
    learning_rate = _learning_rate(model)
    if learning_rate == 0:
        findings.append(
            (
                "learning rate",
                f"the optimizer's learning rate is 0 ({type(model.optimizer).__name__}, learning_rate=0.0): "
                "no weight can change; use e.g. 1e-3 with Adam",
            )
        )
    findings += _frozen_findings(model)
    unadapted = [layer for layer in _layers(model) if _unadapted(layer)]
    for layer in unadapted:
        findings.append(
            (
                "preprocessing",
                f"{type(layer).__name__} layer {layer.name!r} was never adapted ({_unadapted(layer)}): call "
                "layer.adapt(training inputs) before building the model",
            )
        )
    scaling = [layer for layer in _layers(model) if type(layer).__name__ in _SCALING_LAYERS]
    if not scaling or all(layer in unadapted for layer in scaling):
        findings += _scaling_findings(model, x)
    return findings


def _loss_findings(model, y, task):
    name, label = _loss_name(model.loss), _loss_label(model.loss)
    units = _output_units(model)
    if name is None:
        return []
    if task == "regression":
        if name in _CLASSIFICATION_LOSSES:
            text = f"the loss is {label}, a classification loss, for numeric targets: use mean_squared_error"
            return [("loss", text)]
        return []
    sparse = y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)
    found = []
    if name in _SPARSE_LOSSES and not sparse:
        found.append(
            f"the labels are one-hot rows ({y.shape[1]} columns) but the loss is {label}, which expects integer "
            "class ids: pass y.argmax(axis=1), or compile with categorical_crossentropy"
        )
    elif name in _CATEGORICAL_LOSSES and units == 1:
        found.append(
            f"the loss is {label} on a single output unit: it rescales the outputs to sum to 1, so the loss is "
            "always 0 and nothing is learned; use binary_crossentropy with a sigmoid unit"
        )
    elif name in _CATEGORICAL_LOSSES and sparse:
        found.append(
            f"the labels are integer class ids but the loss is {label}, which expects one-hot rows: compile with "
            "sparse_categorical_crossentropy, or pass keras.utils.to_categorical(y, num_classes)"
        )
    elif name in _BINARY_LOSSES and sparse and int(np.max(y)) > 1:
        found.append(
            f"the loss is {label}, for two classes, but the labels go up to {int(np.max(y))}: use "
            "sparse_categorical_crossentropy with one softmax unit per class"
        )
    elif name in _REGRESSION_LOSSES:
        found.append(f"the loss is {label}, a regression loss, for class labels: use sparse_categorical_crossentropy")
    if sparse and units is not None:
        top = int(np.max(y))
        if units > 1 and top >= units:
            found.append(f"the labels go up to {top} but the model has {units} output units (classes 0 to {units - 1})")
        elif units == 1 and name in _SPARSE_LOSSES:
            found.append(f"the loss is {label} on a single output unit: use one softmax unit per class")
    return [("loss", text) for text in found]


def _learnable(layer):
    """Whether `layer` holds weights meant to be trained (not the state of preprocessing layers)."""
    sublayers = getattr(layer, "layers", None)
    if sublayers:
        return any(_learnable(sublayer) for sublayer in sublayers)
    return bool(layer.weights) and not hasattr(layer, "adapt")


def _frozen_findings(model):
    frozen = []

    def visit(container):
        for layer in getattr(container, "layers", []):
            if not _learnable(layer):
                continue
            if not layer.trainable:
                frozen.append(layer.name)  # a frozen nested model is named once, not layer by layer
            elif getattr(layer, "layers", None):
                visit(layer)
            elif not layer.trainable_weights:
                frozen.append(layer.name)

    visit(model)
    names = ", ".join(repr(name) for name in frozen)
    if not model.trainable_weights:
        return [("trainable weights", f"the model has no trainable weights: frozen layers (trainable=False): {names}")]
    if frozen:
        return [
            (
                "trainable weights",
                f"frozen layers (trainable=False) never learn: {names}; unfreeze them unless they are a "
                "deliberately frozen pretrained base",
            )
        ]
    return []


def _unadapted(layer):
    """Why a preprocessing layer looks never adapted, or `""`."""
    if isinstance(layer, keras.layers.Normalization):
        if getattr(layer, "input_mean", None) is not None or getattr(layer, "adapt_mean", None) is None:
            return ""
        mean, variance = keras.ops.convert_to_numpy(layer.adapt_mean), keras.ops.convert_to_numpy(layer.adapt_variance)
        if np.all(mean == 0) and np.all(variance == 1):
            return "mean 0 and variance 1, so it passes its inputs through unchanged"
        return ""
    if hasattr(layer, "adapt") and hasattr(layer, "get_vocabulary"):
        try:
            vocabulary = layer.get_vocabulary()
        except Exception:  # noqa: BLE001 - a layer that cannot list a vocabulary is not judged
            return ""
        special = {"", "[UNK]", -1, None, getattr(layer, "oov_token", None), getattr(layer, "mask_token", None)}
        if all(token in special for token in vocabulary):
            return f"its vocabulary is empty: {vocabulary!r}"
    return ""


def _scaling_findings(model, x):
    arrays = x if isinstance(x, dict) else {_input_name(model): x}
    found = []
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf" or array.size == 0:
            continue
        finite = np.asarray(array, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            continue
        low, high = float(finite.min()), float(finite.max())
        if max(abs(low), abs(high)) > RAW_INPUT_LIMIT:
            found.append(
                (
                    "input scaling",
                    f"input {name!r} ({array.dtype}, values {low:g} to {high:g}) reaches the model unscaled: no "
                    "Rescaling or adapted Normalization layer; add keras.layers.Rescaling(1 / 255) for pixels or an "
                    "adapted keras.layers.Normalization",
                )
            )
    return found


def _input_name(model):
    try:
        return model.inputs[0].name
    except (AttributeError, IndexError, TypeError, ValueError):
        return "x"


def _label_agreement(x, class_ids, rng):
    """Share of rows whose nearest other row (standardised raw numeric inputs) has the same label."""
    arrays = list(x.values()) if isinstance(x, dict) else [x]
    if not arrays or any(array.dtype.kind not in "biuf" for array in arrays):
        return None
    rows = np.arange(len(class_ids))
    if len(rows) > _MAX_NEIGHBOUR_ROWS:
        rows = np.sort(rng.choice(rows, _MAX_NEIGHBOUR_ROWS, replace=False))
    columns = []
    for array in arrays:
        values = array[rows].reshape(len(rows), -1).astype(np.float64)
        values = values - values.mean(axis=0)
        # Tabular columns are scaled one by one; images and sequences as a whole, so that a border pixel
        # lit in a single image does not dominate the distances.
        scale = values.std(axis=0) if array.ndim <= 2 else np.full(values.shape[1], values.std())
        keep = scale > 0
        columns.append(values[:, keep] / scale[keep])
    features = np.concatenate(columns, axis=1)
    if features.shape[1] == 0 or not np.all(np.isfinite(features)):
        return None
    if features.shape[1] > 1024:  # a random projection keeps distances (Johnson-Lindenstrauss)
        features = features @ np.random.default_rng(0).normal(size=(features.shape[1], 256)) / 16.0
    squared = (features**2).sum(axis=1)
    distances = squared[:, None] + squared[None, :] - 2 * features @ features.T
    np.fill_diagonal(distances, np.inf)
    labels = class_ids[rows]
    return float(np.mean(labels[distances.argmin(axis=1)] == labels))


# -- training and what it shows -------------------------------------------------------------------------


def _snapshot(model):
    return {id(v): np.array(keras.ops.convert_to_numpy(v)) for v in model.trainable_weights}


def _changed(model, before):
    return {
        id(v)
        for v in model.trainable_weights
        if id(v) in before and not np.array_equal(before[id(v)], keras.ops.convert_to_numpy(v))
    }


def _batches(x, y, batch_size, seed):
    """A reshuffled, batched `tf.data` pipeline: a third of the per-epoch cost of `fit` on NumPy arrays."""
    dataset, num_rows = pipeline.to_dataset((x, y), "the sample")
    return dataset.shuffle(num_rows, seed=seed, reshuffle_each_iteration=True).batch(batch_size).prefetch(2)


class _Scorer:
    """Accuracy or R² of `model` on the sampled rows, in inference mode."""

    def __init__(self, model, y, class_ids, task):
        self.task, self.class_ids = task, class_ids
        self.y = y.reshape(len(y), -1).astype(np.float64) if task == "regression" else None
        self.from_logits = bool(getattr(model.loss, "from_logits", False))
        self.predicted = None

    def __call__(self, predictions):
        predictions = np.asarray(predictions, dtype=np.float64)
        if self.task == "regression":
            predictions = predictions.reshape(self.y.shape) if predictions.size == self.y.size else predictions
            if predictions.shape != self.y.shape:
                raise ValueError(f"predictions of shape {predictions.shape} do not match targets {self.y.shape}")
            return float(1 - np.mean((self.y - predictions) ** 2) / np.var(self.y))
        if predictions.ndim == 1 or predictions.shape[-1] == 1:
            predicted = (predictions.reshape(len(predictions)) > (0.0 if self.from_logits else 0.5)).astype(np.int64)
        else:
            predicted = predictions.reshape(len(predictions), -1).argmax(axis=1)
        self.predicted = predicted
        return float(np.mean(predicted == self.class_ids))


class _Tracker(keras.callbacks.Callback):
    """Scores the sampled rows after every epoch; stops at the target or when an epoch changed no weight."""

    def __init__(self, x, score, target, before):
        super().__init__()
        self.x = tf.nest.map_structure(tf.convert_to_tensor, x)
        self.num_rows = _num_rows(x)
        self.score, self.target, self.before = score, target, before
        self.values = []
        self.reached_epoch = None
        self.frozen_stop = False

    def on_epoch_end(self, epoch, logs=None):
        parts = []
        for start in range(0, self.num_rows, _EVALUATION_BATCH):
            part = tf.nest.map_structure(lambda t: t[start : start + _EVALUATION_BATCH], self.x)
            parts.append(keras.ops.convert_to_numpy(self.model(part, training=False)))
        value = self.score(np.concatenate(parts))
        self.values.append(value)
        if value >= self.target:
            self.reached_epoch = epoch + 1
            self.model.stop_training = True
        elif epoch == 0 and not _changed(self.model, self.before):  # nothing to train, or nothing trains
            self.frozen_stop = True
            self.model.stop_training = True


def _training_findings(model, before, losses, values, tracker, task, class_ids, found, target):
    findings = []
    keys = {key for key, _ in found}
    changed = _changed(model, before)
    if before and not changed and "learning rate" not in keys:
        findings.append(
            (
                "trainable weights",
                f"no trainable weight changed in {len(values)} epoch(s): the gradients are zero or never "
                "applied (a learning rate of 0, a stop_gradient, or trainable changed after compile)",
            )
        )
    elif before and changed:
        stuck = [
            layer.name
            for layer in _layers(model)
            if layer.trainable_weights
            and not getattr(layer, "layers", None)
            and not any(id(v) in changed for v in layer.trainable_weights)
        ]
        if stuck:
            names = ", ".join(repr(name) for name in stuck)
            findings.append(("trainable weights", f"the weights of {names} never changed: no gradient reaches them"))
    nan_epochs = [i + 1 for i, v in enumerate(losses) if not math.isfinite(v)]
    if nan_epochs:
        findings.append(
            (
                "training",
                f"the loss became {losses[nan_epochs[0] - 1]} in epoch {nan_epochs[0]}: training diverged (lower the "
                "learning rate, scale the inputs)",
            )
        )
    elif task == "classification" and losses:
        units = _output_units(model) or 0
        classes = max(units, 2) if units > 1 else 2
        uniform = math.log(classes)
        if losses[0] > EXPLODED_LOSS_FACTOR * uniform:
            findings.append(
                (
                    "training",
                    f"the first epoch's loss was {losses[0]:,.4g}, far above ln({classes}) = {uniform:.2f} for a "
                    "uniform guess: the activations blew up (unscaled inputs or too high a learning rate)",
                )
            )
    if task == "classification" and tracker.score.predicted is not None and len(np.unique(class_ids)) > 1:
        predicted = np.unique(tracker.score.predicted)
        if len(predicted) == 1:
            findings.append(
                (
                    "training",
                    f"the model predicts class {int(predicted[0])} for all {len(class_ids)} rows (dead or "
                    "saturated units, or a loss that ignores the inputs)",
                )
            )
    if len(values) >= 3 and values[-1] < target:
        start = len(values) - max(1, len(values) // 3) - 1
        if values[-1] - values[start] >= STILL_RISING:
            findings.append(
                (
                    "training",
                    f"the metric was still rising when training ended ({values[start]:.3f} at epoch {start + 1}, "
                    f"{values[-1]:.3f} at epoch {len(values)}): pass more epochs or raise the learning rate",
                )
            )
    return findings


# -- the verdict in words -------------------------------------------------------------------------------


def _ordered(findings):
    """`(key, text)` findings in checklist order; `sorted` is stable, so a key's findings keep their order."""
    return sorted(findings, key=lambda item: _ORDER.index(item[0]))


def _error_text(error):
    """The line of an error message that says what went wrong, without TensorFlow's graph traceback."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).splitlines() if line.strip()]
    if isinstance(error, tf.errors.OpError):
        noise = ("File ", "[[", "Detected at node", "Graph execution error")
        lines = [line for line in lines if not line.startswith(noise)][-1:]
    text = " ".join(lines[:2]) or "(no message)"
    return f"{type(error).__name__}: {text[:300]}"


def _advice(verdict, metric, reached, target, chance, epochs_run, epochs, sample, findings, error):
    causes = [text for _, text in findings]
    shown = "nan" if math.isnan(reached) else f"{reached:.3f}"
    if verdict == "PASS":
        text = (
            f"PASS: {metric} {shown} >= {target:g} on the rows it trained on ({sample}), reached in epoch "
            f"{epochs_run} of at most {epochs}: the model, its loss and the input pipeline can learn. Next: train "
            "on all the training data with validation data and read the curves with recipes.debug.diagnose(history)."
        )
        if causes:
            text += " Still worth a look: " + "; ".join(causes) + "."
        return text
    if error is not None:
        text = f"FAIL: training stopped with {error} ({sample}; target {metric} {target:g})."
    else:
        text = (
            f"FAIL: {metric} {shown} after {epochs_run} epoch(s) on the rows it trained on ({sample}; target "
            f"{target:g}, chance {chance:.2f}): a model that cannot learn its training rows by heart has a bug, "
            "which more data or a bigger model will not fix."
        )
    numbered = [f"({i}) {cause}" for i, cause in enumerate(causes, 1)]
    if numbered:
        text += " Found: " + "; ".join(numbered) + "."
    found = {key for key, _ in findings}
    unchecked = [check for key, check in CHECKLIST if key not in found]
    rest = [f"({i}) {check}" for i, check in enumerate(unchecked, len(causes) + 1)]
    if rest:
        text += (" Otherwise check, in order: " if numbered else " Check, in order: ") + "; ".join(rest) + "."
    return text

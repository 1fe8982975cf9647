"""`overfit_check`: a model that cannot learn a few hundred rows by heart has a bug.

Simplify the problem before tuning anything: sample a few classes and a few rows of each, train on them
and evaluate on the very same rows. Any model worth training gets (almost) all of them right, so a fail
points at a bug, not at too little data or capacity ("overfit a single batch", A. Karpathy, *A Recipe for
Training Neural Networks*, 2019). Where it is cheap, the check looks for the usual bugs itself and names
them: labels unrelated to the inputs, a loss that does not fit the label format, a learning rate of 0,
frozen layers or weights that never change, preprocessing layers never adapted, unscaled inputs, a loss
that explodes or turns NaN.
"""

import dataclasses
import math
import os
import re

import keras
import numpy as np
import tensorflow as tf

from recipes import pipeline
from recipes._common import as_xy, check_int, check_number, check_one_of, num_examples, required_positional, take_rows
from recipes.report import Report
from recipes.seed import set_seed
from recipes.training import virtual_steps_per_epoch

TASKS = ("classification", "regression")
# Shuffled labels: a 1-nearest-neighbour vote on the raw inputs agrees with the labels no better than
# chance plus this margin. Correct labels of real data sets score far higher (0.98 on the digits).
LABEL_AGREEMENT_MARGIN = 0.1
# Numeric inputs beyond this absolute value want scaling (pixels 0-255, raw counts, prices).
RAW_INPUT_LIMIT = 10.0
# A first-checkpoint classification loss this many times ln(classes) (the loss of a uniform guess) means the
# activations blew up.
EXPLODED_LOSS_FACTOR = 10.0
# "Still learning": the metric rose by this much over the last third of the checkpoints.
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
        "mse",
        "meansquarederror",
        "mae",
        "meanabsoluteerror",
        "huber",
        "logcosh",
        "mape",
        "meanabsolutepercentageerror",
        "msle",
        "meansquaredlogarithmicerror",
    }
)
_CLASSIFICATION_LOSSES = _SPARSE_LOSSES | _CATEGORICAL_LOSSES | _BINARY_LOSSES


@dataclasses.dataclass(frozen=True, kw_only=True)
class OverfitReport(Report):
    """What `overfit_check` returns (a `recipes.report.Report`).

    Attributes:
        verdict: `"pass"` (the target score was reached: the model, its loss and the input pipeline can learn)
            or `"fail"` (it was not, or training stopped with an error explained by a cause found).
        summary: The score reached against the target score, on which sample, in one line.
        advice: The causes found, in checklist order, then the rest of the checklist to go through
            (after a pass: the next step, and any cause still worth a look).
        metric: `"accuracy"` (classification) or `"r2"` (regression: 1 - MSE / variance of the targets).
        reached: Best value of `metric` on the trained examples over the checkpoints (NaN if none finished).
        target_score: The value to reach.
        chance: Score of a constant guess on the sample: the share of its largest class for
            classification, 0 for R².
        curve: Dict with one value per checkpoint (virtual epoch): `"loss"` (the training loss Keras
            logs) and `metric` (measured on the same examples in inference mode after each).
        checkpoints: Virtual epochs run (training stops at the target score, at a NaN loss, or after a first
            virtual epoch that changed no weight).
        steps_per_checkpoint: Training steps in each virtual epoch.
        num_examples: Examples sampled and trained on.
        indices: Their positions in the data, sorted.
        classes: The sampled class ids (classification) or `None`.
        label_agreement: Share of sampled examples whose nearest neighbour (raw numeric inputs) has the
            same label, or `None` (regression, text or mixed inputs). Near `chance`, the labels look
            unrelated to the inputs.
        causes: Causes found on this model and data, in checklist order (see `CHECKLIST`).
        error: The training error (`"ValueError: ..."`) when training failed for a cause named in
            `causes`, else `None`.
    """

    metric: str
    reached: float
    target_score: float
    chance: float
    curve: dict
    checkpoints: int
    steps_per_checkpoint: int
    num_examples: int
    indices: np.ndarray = dataclasses.field(repr=False)
    classes: list | None
    label_agreement: float | None
    causes: list
    error: str | None = None

    def markdown_details(self):
        agreement = "" if self.label_agreement is None else f"; label agreement {self.label_agreement:.2f}"
        shown = "nan" if math.isnan(self.reached) else f"{self.reached:.3f}"
        return (
            f"{self.metric} reached {shown} (target {self.target_score:g}, chance {self.chance:.2f}) in "
            f"{self.checkpoints} checkpoint(s) of {self.steps_per_checkpoint} steps on {self.num_examples} "
            f"examples{agreement}."
        )

    def plot(self, path):
        """Writes the curve per checkpoint (metric, target score and training loss) as a PNG file.

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
        checkpoints = range(1, len(values) + 1)
        axes.plot(checkpoints, values, marker="o", color="tab:blue", label=f"{self.metric} on the trained examples")
        axes.axhline(self.target_score, linestyle="--", color="tab:green", label=f"target {self.target_score:g}")
        axes.axhline(self.chance, linestyle=":", color="grey", label=f"chance {self.chance:.2f}")
        axes.set_xlabel("checkpoint (virtual epoch)")
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
        axes.set_title(f"overfit_check: {self.verdict} ({self.metric} {shown}, {self.num_examples} examples)")
        if not values:
            axes.text(
                0.5, 0.5, "no checkpoint finished\n" + (self.error or "")[:80], ha="center", transform=axes.transAxes
            )
        path = os.fspath(path)
        figure.savefig(path, dpi=100)
        return path


def overfit_check(
    model_fn,
    data,
    *,
    num_classes=10,
    per_class=100,
    target_score=0.9,
    total_examples=None,
    num_checkpoints=50,
    batch_size=32,
    seed=0,
    task="classification",
):
    """Trains a fresh model on a small sample and evaluates it on the same examples: pass or fail.

    Samples `per_class` examples of each of `num_classes` classes (repeatably, from `seed`), builds a
    model with `model_fn`, trains it on the sample in `num_checkpoints` virtual epochs and, after each,
    measures it on the same examples in inference mode (dropout and augmentation off). The verdict is
    `"pass"` when `target_score` is reached: the model, its loss and the input pipeline can learn. `"fail"`
    otherwise, with the causes found and the bug checklist in order (`OverfitReport.advice`). A model that
    memorises shuffled labels also passes (deep networks can, Zhang et al., 2017); the label check in
    `causes` still says so.

    Before training, the check inspects the model: the loss against the label format and the number of
    output units, the learning rate, frozen layers, un-adapted `Normalization` and vocabulary layers, and
    numeric inputs beyond +-10 (raw pixels) with no scaling layer. After training it looks for weights
    that never changed, a first loss far above that of a uniform guess, a NaN loss, one class predicted
    for every example and a metric still rising. When training raises an error and the inspection found
    a cause that explains it (Keras refuses integer labels with `categorical_crossentropy`; an un-adapted
    `TextVectorization` fails with "Table not initialized"), the report is a fail naming the cause and
    quoting the error; other errors propagate.

    Training stops early at the target score, at a NaN loss, and after a first virtual epoch that changed no
    weight. The global seeds are set from `seed` (`recipes.set_seed`) before `model_fn` is called, so the
    check repeats exactly.

    Example:

    ```python
    import functools
    import recipes
    from models import text, vision
    from recipes.debug import overfit_check

    images, labels = recipes.datasets.load_digits()
    report = overfit_check(
        functools.partial(vision.linear_classifier, (8, 8), 10, learning_rate=1e-2), (images, labels)
    )
    print(report)  # PASS: accuracy 0.910 >= 0.9 on the examples it trained on (1000 rows of 10 classes), ...

    reviews = recipes.datasets.load_rotten_tomatoes()
    report = overfit_check(
        lambda texts: text.bag_of_words_classifier(texts, 2),  # adapts its vocabulary on the sample
        (reviews.text.to_numpy(), reviews.label.to_numpy()), num_classes=2,
    )
    report.plot("overfit.png")
    ```

    Args:
        model_fn: Callable returning a new compiled single-output `keras.Model`. Called with as many of
            `(x_sample, y_sample)` as it has required positional parameters: `model_fn()`,
            `model_fn(x_sample)` (factories that adapt preprocessing on their training inputs, such as
            `models.text.bag_of_words_classifier`), or `model_fn(x_sample, y_sample)`.
        data: An `(x, y)` tuple. `x`: an array with one row per example, or a dict of such arrays (one
            per named model input, as `models.tabular.to_xy` returns; a `pandas.DataFrame` is read as a
            dict of columns). `y`: labels, one per example: integer class ids or one-hot rows for
            classification, numbers for regression.
        num_classes: Int >= 2 or `None`, defaults to 10. Classes sampled (chosen at random when there are
            more); `None` takes all. For regression, the number of quantile bins of `y` the examples are
            drawn from, so the sample spans the range of the targets.
        per_class: Int >= 1, defaults to 100. Examples per class (or bin); a class with fewer gives all
            it has.
        target_score: Float in (0, 1], defaults to 0.9. Accuracy to reach for classification; R² for
            regression, i.e. a mean squared error at most `1 - target_score` of the targets' variance (a loss
            near zero, whatever the units).
        total_examples: Int or `None`, defaults to `None`: one pass over the sample per checkpoint. Most
            examples to train on (the sample repeated), split into `num_checkpoints` virtual epochs of
            `total_examples // (batch_size * num_checkpoints)` steps.
        num_checkpoints: Int >= 1, defaults to 50. Virtual epochs, each ending with a measurement.
        batch_size: Int >= 1, defaults to 32.
        seed: Int >= 0, defaults to 0. Seeds the sample and the global generators.
        task: `"classification"` (default) or `"regression"`.

    Returns:
        An `OverfitReport`.
    """
    task = _check_arguments(
        task, num_classes, per_class, target_score, total_examples, num_checkpoints, batch_size, seed
    )
    x, y = as_xy(data, "data")
    rng = np.random.default_rng(seed)
    class_ids = _class_ids(y) if task == "classification" else None
    classes, indices = _sample(y, class_ids, task, num_classes, per_class, rng)
    x_sample, y_sample = take_rows(x, indices), y[indices]
    sample_ids = class_ids[indices] if class_ids is not None else None
    if task == "regression" and float(np.var(y_sample)) == 0.0:
        raise ValueError(
            "`data`'s y must vary on the sampled examples for R² to be defined. Received: a single value "
            f"{y_sample.reshape(-1)[0]!r}"
        )
    if total_examples is None:
        steps = -(-len(indices) // batch_size)  # one pass over the sample, the last batch partial
    else:
        steps = virtual_steps_per_epoch(total_examples, batch_size, num_checkpoints)

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
    tracker = _Tracker(x_sample, score, target_score, before)
    common = dict(
        metric=metric,
        target_score=target_score,
        chance=chance,
        steps_per_checkpoint=steps,
        num_examples=len(indices),
        indices=indices,
        classes=classes,
        label_agreement=label_agreement,
    )
    try:
        history = model.fit(
            _batches(x_sample, y_sample, batch_size, seed),
            epochs=num_checkpoints,
            steps_per_epoch=steps,
            shuffle=False,  # the pipeline shuffles
            verbose=0,
            callbacks=[tracker, keras.callbacks.TerminateOnNaN()],
        )
    except Exception as error:  # noqa: BLE001 - re-raised unless a cause found beforehand explains it
        if not any(key in ("loss", "preprocessing") for key, _ in findings):
            raise
        message = _error_text(error)
        findings = _ordered(findings)
        summary = f"training stopped with {message} ({sample}; target {metric} {target_score:g})"
        return OverfitReport(
            verdict="fail",
            summary=summary,
            advice=_advice("fail", findings),
            reached=math.nan,
            curve={"loss": [], metric: []},
            checkpoints=0,
            causes=[text for _, text in findings],
            error=message,
            **common,
        )

    losses = [float(v) for v in history.history.get("loss", [])]
    values = tracker.values
    reached = max((v for v in values if not math.isnan(v)), default=math.nan)
    verdict = "pass" if reached >= target_score else "fail"
    findings += _training_findings(model, before, losses, values, tracker, task, sample_ids, findings, target_score)
    findings = _ordered(findings)
    shown = "nan" if math.isnan(reached) else f"{reached:.3f}"
    if verdict == "pass":
        summary = (
            f"{metric} {shown} >= {target_score:g} on the rows it trained on ({sample}), reached at checkpoint "
            f"{len(values)} of at most {num_checkpoints}: the model, its loss and the input pipeline can learn"
        )
    else:
        summary = (
            f"{metric} {shown} after {len(values)} checkpoint(s) on the rows it trained on ({sample}; target "
            f"{target_score:g}, chance {chance:.2f}): a model that cannot learn its training rows by heart has a bug, "
            "which more data or a bigger model will not fix"
        )
    return OverfitReport(
        verdict=verdict,
        summary=summary,
        advice=_advice(verdict, findings),
        reached=reached,
        curve={"loss": losses, metric: values},
        checkpoints=len(values),
        causes=[text for _, text in findings],
        **common,
    )


# -- arguments and sampling ----------------------------------------------------------------------------


def _check_arguments(task, num_classes, per_class, target_score, total_examples, num_checkpoints, batch_size, seed):
    check_int("seed", seed, 0)
    task = check_one_of("task", task, TASKS)
    if num_classes is not None:
        minimum = 2 if task == "classification" else 1
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < minimum:
            raise ValueError(
                f"`num_classes` must be None or an int >= {minimum}. Received: num_classes={num_classes!r}"
            )
    check_int("per_class", per_class)
    check_int("num_checkpoints", num_checkpoints)
    check_int("batch_size", batch_size)
    if total_examples is not None:
        check_int("total_examples", total_examples)
    if check_number("target_score", target_score, 0, 1) == 0:  # (0, 1]: a target score of 0 is always met
        raise ValueError(f"`target_score` must be a finite number in (0, 1]. Received: target_score={target_score!r}")
    return task


def _class_ids(y):
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)  # one-hot rows
    if y.ndim > 2:
        raise ValueError(
            f"`data`'s y must hold one label or one one-hot row per example. Received: y of shape {y.shape}"
        )
    flat = y.reshape(len(y))
    if flat.dtype.kind not in "biuf" or (flat.dtype.kind == "f" and not np.all(np.mod(flat, 1) == 0)):
        raise ValueError(
            "`data`'s y must hold integer class ids or one-hot rows for classification; for numeric targets pass "
            f"task='regression'. Received: y of dtype {flat.dtype}, e.g. {flat[:3].tolist()}"
        )
    if flat.min() < 0:
        raise ValueError(f"`data`'s y must hold class ids >= 0. Received: a minimum of {flat.min()}")
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
        raise ValueError(f"`model_fn` must be a callable returning a compiled model. Received: model_fn={model_fn!r}")
    arity = required_positional(model_fn)
    if arity > 2:
        raise ValueError(
            "`model_fn` must take no required argument, the sampled inputs, or the sampled inputs and labels. "
            f"Received: model_fn with {arity} required positional parameters"
        )
    model = model_fn(*(x_sample, y_sample)[:arity])
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model_fn` must return a keras.Model. Received: a {type(model).__name__}")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise ValueError(
            "`model_fn` must return a compiled model (model.compile(optimizer=..., loss=...)). Received: a model "
            "never compiled"
        )
    if not model.built:
        model(take_rows(x_sample, np.arange(min(2, num_examples(x_sample)))))
    if _has_outputs(model) and len(model.outputs) != 1:
        raise ValueError(
            f"`model_fn` must return a single-output model. Received: a model with {len(model.outputs)} outputs"
        )
    return model


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
    """A reshuffled, repeated, batched `tf.data` pipeline: a third of the per-epoch cost of `fit` on NumPy arrays."""
    dataset, num_rows = pipeline.to_dataset((x, y), "the sample")
    dataset = dataset.shuffle(num_rows, seed=seed, reshuffle_each_iteration=True).repeat()
    return dataset.batch(batch_size).prefetch(2)


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
    """Scores the sampled rows after every virtual epoch; stops at the target score or when one changed no weight."""

    def __init__(self, x, score, target_score, before):
        super().__init__()
        self.x = tf.nest.map_structure(tf.convert_to_tensor, x)
        self.num_rows = num_examples(x)
        self.score, self.target_score, self.before = score, target_score, before
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
        if value >= self.target_score:
            self.reached_epoch = epoch + 1
            self.model.stop_training = True
        elif epoch == 0 and not _changed(self.model, self.before):  # nothing to train, or nothing trains
            self.frozen_stop = True
            self.model.stop_training = True


def _training_findings(model, before, losses, values, tracker, task, class_ids, found, target_score):
    findings = []
    keys = {key for key, _ in found}
    changed = _changed(model, before)
    if before and not changed and "learning rate" not in keys:
        findings.append(
            (
                "trainable weights",
                f"no trainable weight changed in {len(values)} checkpoint(s): the gradients are zero or never "
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
                f"the loss became {losses[nan_epochs[0] - 1]} at checkpoint {nan_epochs[0]}: training diverged (lower the "
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
                    f"the first checkpoint's loss was {losses[0]:,.4g}, far above ln({classes}) = {uniform:.2f} for a "
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
    if len(values) >= 3 and values[-1] < target_score:
        start = len(values) - max(1, len(values) // 3) - 1
        if values[-1] - values[start] >= STILL_RISING:
            findings.append(
                (
                    "training",
                    f"the metric was still rising when training ended ({values[start]:.3f} at checkpoint {start + 1}, "
                    f"{values[-1]:.3f} at checkpoint {len(values)}): pass a larger total_examples or raise the "
                    "learning rate",
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


def _advice(verdict, findings):
    """The causes found, in checklist order; after a fail the rest of the checklist, after a pass the next step."""
    causes = [text for _, text in findings]
    if verdict == "pass":
        next_step = (
            "train on all the training data with validation data and read the curves with "
            "recipes.debug.diagnose(history)"
        )
        return (next_step, *(f"still worth a look: {cause}" for cause in causes))
    found = {key for key, _ in findings}
    return (*causes, *(f"check that {check}" for key, check in CHECKLIST if key not in found))

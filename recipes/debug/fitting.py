"""`diagnose`: underfitting, overfitting, good, not converged or diverged, read from the learning curves.

The reading is Andrew Ng's bias/variance analysis (*Machine Learning Yearning*, 2018): the distance from
the training score to the score wanted (`target_score`, e.g. human-level accuracy) is the avoidable bias, the
distance from the validation score to the training score is the variance, and the larger one is fixed
first. Before that come the two states in which the scores mean nothing yet: a loss that exploded or
turned NaN (diverged), and a training loss still falling when the run ended (not converged). Every
finding comes with its evidence, numbers quoted, and remedies in the order to try them, each with the
call in this package that applies it.
"""

import dataclasses
import math
import os
import typing

import numpy as np

from recipes._common import check_number
from recipes.callbacks import resolve_mode
from recipes.report import Report

FINDINGS = ("underfitting", "overfitting", "good", "not converged", "diverged")
# The verdict of each finding: a run still learning is worth a warning, not a failure.
VERDICT_OF = {
    "good": "pass",
    "not converged": "warn",
    "underfitting": "fail",
    "overfitting": "fail",
    "diverged": "fail",
}

# Thresholds. Each is a module constant, so that a project can tune them in one place.
# Diverged: the last training loss is above the first and more than this many times the lowest. A loss
# that ends worse than an untrained model's after having been far lower is not noise.
EXPLODE_FACTOR = 2.0
# Diverged too: an epoch's mean training loss this many times the validation loss at its end. Keras
# computes cross-entropy from the logits, so a blow-up often shows as a huge finite loss rather than NaN,
# and inside the first epoch the epoch-level curve never rises; the validation loss, measured after the
# spike, is the reference. Dropout or augmentation make training losses larger, but not a hundredfold.
# Judged for classifiers only (a metric in [0, 1] that grows): their cross-entropy starts near ln(classes),
# while a regression loss on unscaled targets can legitimately fall a thousandfold within its first epoch.
SPIKE_FACTOR = 100.0
# ... and only when that epoch's mean training loss is above ln 2, the cross-entropy of a coin flip: a run
# that learns fast (separable data) also averages far more over its first epoch than the near-zero loss it
# ends it with, but it averages less than a guess would.
SPIKE_FLOOR = math.log(2.0)
# Overfitting: the validation loss ended this fraction above its lowest value ...
VAL_RISE = 0.10
# ... which was reached at least this many epochs before the end (one bad epoch is noise) ...
RISE_EPOCHS = 2
# ... while the training loss kept falling.
# A large gap, between training and validation (variance) or between training and the target score (bias): for
# metrics in [0, 1] that grow (accuracy, AUC) 5 points, the size of a real change of model on most
# benchmarks and beyond the noise of a few thousand validation rows (the standard error of an accuracy
# near 0.9 on 2,000 rows is 0.007); for other metrics (losses, errors) 20% of the larger value.
FRACTION_GAP = 0.05
RELATIVE_GAP = 0.20
# Not converged: the last third of the epochs still brought this share of the training loss's whole drop.
# A curve that has flattened (1/t or exponential decay run long enough) brings a few percent there.
STILL_FALLING = 0.10
# Fewer epochs than this show no trend: not converged.
MIN_EPOCHS = 3
# Without a target score, underfitting is called only when the training loss fell by less than this share from
# its first epoch: the model learned next to nothing. Pass `target_score` for a real bias judgement.
BARELY_LEARNED = 0.20
_NOT_METRICS = ("loss", "learning_rate", "lr")


class Remedy(typing.NamedTuple):
    """One remedy: what to do, and the call in this package (or in Keras) that does it."""

    remedy: str
    call: str


REMEDIES = {
    "overfitting": (
        Remedy(
            "more data",
            "recipes.datasets.load_rotten_tomatoes(full=True) (12,808 reviews, not 4,866), "
            "recipes.datasets.load_fashion_mnist('train') (60,000 images); "
            "recipes.repeatable_split(keys, (0.9, 0.1)) for a larger training share",
        ),
        Remedy(
            "augmentation",
            "models.vision.cnn_classifier(..., augment=models.vision.augmentation(horizontal_flip=True)) where a "
            "mirror image keeps its label (also transfer_classifier); stronger: "
            "models.vision.augmentation(rotation=0.1, zoom=0.2) passed as augment",
        ),
        Remedy(
            "regularization",
            "models.vision.cnn_classifier(..., dropout=0.5), models.text.lstm_classifier(..., dropout=0.6), "
            "models.tabular.classifier(..., dropout=0.3) (also transfer_classifier, transformer_classifier, regressor)",
        ),
        Remedy("early stopping", "recipes.fit(..., early_stopping_patience=3) (restores the best weights)"),
        Remedy(
            "smaller model",
            "models.vision.cnn_classifier(..., filters=(16, 32)), models.tabular.classifier(..., hidden_units=(16,)), "
            "models.text.bag_of_words_classifier(..., max_tokens=5_000), or a linear baseline: "
            "models.vision.linear_classifier(...), models.tabular.linear_classifier(...)",
        ),
    ),
    "underfitting": (
        Remedy(
            "bigger model",
            "models.vision.cnn_classifier(..., filters=(32, 64, 128)) instead of linear_classifier, "
            "models.tabular.classifier(..., hidden_units=(64, 64)), models.text.lstm_classifier(..., units=128) "
            "or models.text.transformer_classifier(...) instead of bag_of_words_classifier",
        ),
        Remedy("longer training", "recipes.fit(..., total_examples=...) with more examples (more passes)"),
        Remedy(
            "less regularization",
            "models.vision.cnn_classifier(..., dropout=0.0, augment=False), "
            "models.tabular.classifier(..., dropout=0.0)",
        ),
        Remedy(
            "better features",
            "models.tabular.classifier(..., date_columns=[...]) (recipes.layers.DateFeatures), "
            "models.text.bag_of_words_classifier(..., ngrams=3, max_tokens=50_000)",
        ),
        Remedy("rule out a bug", "recipes.debug.overfit_check(model_fn, (x, y))"),
    ),
    "not converged": (
        Remedy("more passes", "recipes.fit(..., total_examples=...) with more examples, or model.fit(..., epochs=...)"),
        Remedy(
            "higher learning rate",
            "learning_rate=3e-3 (3x the default) in any factory, e.g. "
            "models.vision.cnn_classifier(..., learning_rate=3e-3)",
        ),
        Remedy(
            "keep the best epoch while training longer",
            "recipes.fit(..., directory=..., early_stopping_patience=3)",
        ),
    ),
    "diverged": (
        Remedy(
            "lower learning rate",
            "learning_rate=1e-4 (10x below the default) in any factory, e.g. "
            "models.text.bag_of_words_classifier(..., learning_rate=1e-4)",
        ),
        Remedy(
            "check input scaling",
            "keras.layers.Rescaling(1 / 255) for pixels, an adapted keras.layers.Normalization(...) for features; "
            "recipes.debug.overfit_check(model_fn, (x, y)) names unscaled inputs",
        ),
        Remedy(
            "gradient clipping",
            "model.compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0), loss=model.loss, metrics=['accuracy'])",
        ),
    ),
    "good": (
        Remedy(
            "test once on held-out data", "model.evaluate(x_test, y_test) on a recipes.repeatable_split(...) test split"
        ),
        Remedy("export and serve", "serving.export_model(model, 'exports/<name>')"),
    ),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Diagnosis(Report):
    """What `diagnose` returns (a `recipes.report.Report`).

    Attributes:
        verdict: `"pass"` (finding `"good"`), `"warn"` (`"not converged"`: the scores are not final yet) or
            `"fail"` (`"underfitting"`, `"overfitting"`, `"diverged"`); see `VERDICT_OF`.
        summary: The finding, then its evidence.
        advice: The remedies in the order to try them, each `"remedy: call"`.
        finding: One of `FINDINGS`: `"underfitting"`, `"overfitting"`, `"good"`, `"not converged"`,
            `"diverged"`.
        evidence: Sentences, numbers quoted, that led to the finding (and what else was seen).
        remedies: `Remedy(remedy, call)` tuples in the order to try them.
        metric: The metric judged (`"accuracy"`, or `"loss"` when nothing else was logged).
        train: Its last training value.
        validation: Its last validation value, or `None` without validation data.
        target_score: The `target_score` passed, or `None`.
        epochs: Number of epochs in the history.
        history: The curves read: metric name to one value per epoch.
    """

    finding: str
    evidence: list
    remedies: list
    metric: str
    train: float
    validation: float | None
    target_score: float | None
    epochs: int
    history: dict

    def markdown_details(self):
        return "\n".join(f"- {sentence}" for sentence in self.evidence)

    def plot(self, path):
        """Writes the training and validation curves of the loss and of the judged metric as one PNG.

        Args:
            path: File to write, e.g. `"curves.png"`.

        Returns:
            `path`, as a string.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        names = ["loss"] + ([self.metric] if self.metric != "loss" else [])
        figure = Figure(figsize=(4.2 * len(names), 3.4), layout="constrained")
        FigureCanvasAgg(figure)
        for i, name in enumerate(names):
            axes = figure.add_subplot(1, len(names), i + 1)
            for key, label in ((name, "training"), (f"val_{name}", "validation")):
                if key in self.history:
                    values = self.history[key]
                    axes.plot(range(1, len(values) + 1), values, marker="o", label=label)
            axes.set_xlabel("epoch")
            axes.set_ylabel(name)
            axes.legend(fontsize="small")
        figure.suptitle(f"diagnose: {self.finding}", fontsize="medium")
        path = os.fspath(path)
        figure.savefig(path, dpi=100)
        return path


def diagnose(history, target_score=None, metric=None):
    """Reads a training run from its curves: underfitting, overfitting, good, not converged or diverged.

    The rules, in order (thresholds are the module constants):

    1. **diverged**: a training or validation loss is NaN or infinite, or the last training loss is above
       the first and more than `EXPLODE_FACTOR` (2) times the lowest, or an epoch's mean training loss
       is more than `SPIKE_FACTOR` (100) times the validation loss at its end and above ln 2 (a blow-up
       within the epoch; judged when the metric is in [0, 1], i.e. for classifiers).
    2. **overfitting**: the validation loss ended `VAL_RISE` (10%) or more above its lowest value, reached
       `RISE_EPOCHS` (2) or more epochs before the end, while the training loss kept falling.
    3. **overfitting**: the validation metric trails the training metric by more than the gap threshold
       (`FRACTION_GAP`, 0.05, for metrics in [0, 1] that grow; otherwise `RELATIVE_GAP`, 20% of the
       larger value), and by more than the training metric trails `target_score` (variance beats bias).
    4. **not converged**: fewer than `MIN_EPOCHS` (3) epochs, or the last third of the epochs brought
       `STILL_FALLING` (10%) or more of the training loss's whole drop, and `target_score` is not met yet.
    5. **underfitting**: the training metric trails `target_score` by more than the gap threshold; without a
       target score, the training loss fell by less than `BARELY_LEARNED` (20%) from its first epoch.
    6. **good**: none of the above.

    Without validation curves, overfitting cannot be seen, and the evidence says so. The finding sets the
    verdict: `"pass"` for good, `"warn"` for not converged, `"fail"` for the others (`VERDICT_OF`).

    Example:

    ```python
    from recipes.debug import diagnose

    history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=12)  # or recipes.fit(...)
    diagnosis = diagnose(history, target_score=0.95)  # e.g. human-level accuracy
    print(diagnosis)
    # FAIL: overfitting: training accuracy 0.983 is at or above the target 0.950; validation accuracy 0.783
    # is 0.200 below training accuracy 0.983 (variance)
    # - more data: recipes.datasets.load_rotten_tomatoes(full=True) (12,808 reviews, not 4,866), ...
    # - augmentation: models.vision.cnn_classifier(..., augment=models.vision.augmentation(...)) or ...
    ```

    Args:
        history: The curves: a Keras `History` (what `model.fit` returns), a `recipes.FitResult`, or a
            dict from metric name to one value per epoch (`"loss"` required; `"val_"` names for
            validation).
        target_score: Optional number: the value of `metric` wanted, e.g. human-level accuracy `0.95`, or a
            mean absolute error of `2.0`. Defaults to `None`.
        metric: Optional name of the metric to judge (without `"val_"`). Defaults to the first metric
            logged besides the loss (one with validation values first), else `"loss"`.

    Returns:
        A `Diagnosis`.
    """
    curves = _curves(history)
    metric = _pick_metric(curves, metric)
    mode = resolve_mode(metric, "auto")
    train_curve, val_curve = curves[metric], curves.get(f"val_{metric}")
    if len(train_curve) == 0:
        raise ValueError(f"`history[{metric!r}]` must hold one value per epoch. Received: an empty list")
    bounded = mode == "max" and all(0 <= v <= 1 for v in _finite(train_curve, val_curve))
    _check_target_score(target_score, metric, bounded)
    loss, val_loss = curves["loss"], curves.get("val_loss")
    epochs = len(loss)
    train = float(train_curve[-1])
    validation = float(val_curve[-1]) if val_curve is not None and len(val_curve) else None

    def result(finding, evidence):
        remedies = list(REMEDIES[finding])
        return Diagnosis(
            verdict=VERDICT_OF[finding],
            summary=f"{finding}: " + "; ".join(evidence),
            advice=[f"{remedy}: {call}" for remedy, call in remedies],
            finding=finding,
            evidence=evidence,
            remedies=remedies,
            metric=metric,
            train=train,
            validation=validation,
            target_score=target_score,
            epochs=epochs,
            history={name: [float(v) for v in values] for name, values in curves.items()},
        )

    diverged = _diverged(loss, val_loss, bounded)
    if diverged:
        return result("diverged", diverged)

    evidence = []
    bias = variance = None
    if target_score is not None:
        bias = _shortfall(train, target_score, mode)
        evidence.append(
            _gap_sentence(
                f"training {metric}", train, "the target", target_score, bias, "avoidable bias", mode, bounded
            )
        )
    if validation is not None:
        variance = _shortfall(validation, train, mode)
        evidence.append(
            _gap_sentence(
                f"validation {metric}", validation, f"training {metric}", train, variance, "variance", mode, bounded
            )
        )
    else:
        evidence.append("no validation curve, so overfitting cannot be seen (pass validation data)")
    big_bias = bias is not None and bias > _tolerance(train, target_score, bounded)
    big_variance = variance is not None and variance > _tolerance(validation, train, bounded)

    rise = _validation_rise(loss, val_loss)
    if rise:
        return result("overfitting", [rise, *evidence])
    if big_variance and (not big_bias or variance >= bias):
        return result("overfitting", evidence)
    target_met = bias is not None and bias <= 0
    if epochs < MIN_EPOCHS and not target_met:
        return result("not converged", [f"only {epochs} epoch(s): too few to see a trend", *evidence])
    falling = _still_falling(loss)
    if falling and not target_met:
        return result("not converged", [falling, *evidence])
    if big_bias:
        return result("underfitting", evidence)
    if target_score is None:
        drop = (loss[0] - loss[-1]) / abs(loss[0]) if loss[0] else 0.0
        if drop < BARELY_LEARNED:
            sentence = (
                f"the training loss fell only {drop:.0%} from its first epoch ({loss[0]:.4g} to {loss[-1]:.4g}): "
                "the model learned next to nothing (pass target_score= to judge the bias)"
            )
            return result("underfitting", [sentence, *evidence])
        evidence.append(
            "no target score given, so the bias is not judged (pass target_score=, e.g. human-level accuracy)"
        )
    return result("good", evidence)


# -- reading the history -------------------------------------------------------------------------------


def _curves(history):
    raw = getattr(history, "history", history)
    if not isinstance(raw, dict):
        raise ValueError(
            "`history` must be a Keras History, a recipes.FitResult or a dict of per-epoch lists. "
            f"Received: history of type {type(history).__name__}"
        )
    curves = {}
    for name, values in raw.items():
        try:
            curves[str(name)] = np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"`history[{name!r}]` must be a list of numbers, one per epoch. Received: {values!r}"
            ) from None
    if "loss" not in curves or len(curves["loss"]) == 0:
        raise ValueError(
            f"`history` must hold a non-empty 'loss' curve. Received: keys {sorted(curves)}"
            + (" with an empty 'loss'" if "loss" in curves else "")
        )
    return curves


def _pick_metric(curves, metric):
    if metric is not None:
        metric = metric.removeprefix("val_")
        if metric not in curves:
            names = sorted(name for name in curves if not name.startswith("val_"))
            raise ValueError(f"`metric` must be one of the history's metrics {names}. Received: metric={metric!r}")
        return metric
    names = [name for name in curves if not name.startswith("val_") and name not in _NOT_METRICS]
    with_validation = [name for name in names if f"val_{name}" in curves]
    return (with_validation or names or ["loss"])[0]


def _finite(*curves):
    return [float(v) for curve in curves if curve is not None for v in curve if math.isfinite(v)]


def _check_target_score(target_score, metric, bounded):
    if target_score is None:
        return
    check_number("target_score", target_score)
    if bounded and not 0 <= target_score <= 1:
        raise ValueError(
            f"`target_score` must be in [0, 1] like {metric!r} (0.95, not 95). Received: target_score={target_score!r}"
        )


# -- the rules -----------------------------------------------------------------------------------------


def _diverged(loss, val_loss, classifier):
    for name, curve in (("training loss", loss), ("validation loss", val_loss)):
        if curve is None:
            continue
        bad = np.flatnonzero(~np.isfinite(curve))
        if bad.size:
            first = int(bad[0])
            before = f" after {curve[first - 1]:.4g} in epoch {first}" if first else ""
            return [f"the {name} is {curve[first]} in epoch {first + 1}{before}: training diverged"]
    if classifier and val_loss is not None and len(val_loss) == len(loss):
        ratios = loss / np.maximum(np.abs(val_loss), 1e-12)
        spike = int(np.argmax(ratios))
        if ratios[spike] > SPIKE_FACTOR and loss[spike] > SPIKE_FLOOR:
            return [
                f"the training loss averaged {loss[spike]:,.4g} over epoch {spike + 1}, {ratios[spike]:,.0f}x the "
                f"validation loss at its end ({val_loss[spike]:.4g}): the loss blew up within the epoch"
            ]
    lowest = int(np.argmin(loss))
    if loss[-1] > loss[0] and loss[-1] > EXPLODE_FACTOR * loss[lowest]:
        return [
            f"the training loss rose to {loss[-1]:.4g} in the last epoch, above its first {loss[0]:.4g} and "
            f"{loss[-1] / loss[lowest]:.1f}x its lowest {loss[lowest]:.4g} (epoch {lowest + 1}): the loss exploded"
        ]
    return []


def _validation_rise(loss, val_loss):
    if val_loss is None or len(val_loss) < MIN_EPOCHS:
        return ""
    best = int(np.argmin(val_loss))
    last = len(val_loss) - 1
    if last - best < RISE_EPOCHS or val_loss[last] < (1 + VAL_RISE) * val_loss[best] or loss[last] >= loss[best]:
        return ""
    return (
        f"the validation loss rose from its lowest {val_loss[best]:.4g} (epoch {best + 1}) to {val_loss[last]:.4g} "
        f"(+{val_loss[last] / val_loss[best] - 1:.0%}) at epoch {last + 1}, while the training loss fell from "
        f"{loss[best]:.4g} to {loss[last]:.4g}"
    )


def _still_falling(loss):
    total = loss[0] - loss[-1]
    start = len(loss) - 1 - max(1, len(loss) // 3)
    recent = loss[start] - loss[-1]
    if total <= 0 or recent / total < STILL_FALLING:
        return ""
    return (
        f"the training loss was still falling: {loss[start]:.4g} to {loss[-1]:.4g} over the last "
        f"{len(loss) - 1 - start} of {len(loss)} epochs, {recent / total:.0%} of its whole drop"
    )


def _shortfall(value, reference, mode):
    """How much worse `value` is than `reference` (negative when better)."""
    return (reference - value) if mode == "max" else (value - reference)


def _tolerance(value, reference, bounded):
    return FRACTION_GAP if bounded else RELATIVE_GAP * max(abs(value), abs(reference))


def _gap_sentence(name, value, reference_name, reference, gap, kind, mode, bounded):
    def show(number):
        return f"{number:.3f}" if bounded else f"{number:.4g}"

    worse, better = ("below", "above") if mode == "max" else ("above", "below")
    if gap <= 0:
        return f"{name} {show(value)} is at or {better} {reference_name} {show(reference)}"
    return f"{name} {show(value)} is {show(gap)} {worse} {reference_name} {show(reference)} ({kind})"

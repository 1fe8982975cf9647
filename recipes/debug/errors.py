"""`error_analysis`: where a classifier goes wrong, as rows a person can go and look at.

A single accuracy hides which classes are mixed up and which rows cost the most. The report gives the
confusion matrix, the most confused pairs of classes (each with the rows to inspect) and the rows with the
largest loss. Confidently wrong rows come first among those: they are where label mistakes hide, and they
are worth checking before changing the model.
"""

import collections.abc
import dataclasses
import os

import numpy as np
import pandas as pd

from recipes._common import as_array, as_xy, check_int, num_examples
from recipes._markdown import markdown_table
from recipes.report import Report

# A row predicted with at least this probability for a wrong class is "confidently wrong": check its label.
CONFIDENTLY_WRONG = 0.9
# Row indices listed per confused pair.
_EXAMPLES_PER_PAIR = 5
_EPSILON = 1e-7


@dataclasses.dataclass(frozen=True, kw_only=True)
class ErrorReport(Report):
    """What `error_analysis` returns (a `recipes.report.Report`).

    Attributes:
        verdict: `"info"`: an analysis that judges nothing.
        summary: The accuracy and the most confused pair, with the rows to look at.
        advice: What to look at next, in order: the next confused pairs, the weakest class, the
            confidently wrong rows (check their labels first), the largest loss.
        accuracy: Share of rows whose most probable class is the label.
        num_examples: Rows analysed.
        class_names: Class names in label order.
        confusion: `pandas.DataFrame` of counts, one row per true class and one column per predicted
            class (both named by `class_names`); it sums to `num_examples`.
        per_class: `pandas.DataFrame` with `precision`, `recall` and `support` per class (its index,
            named `class`).
        most_confused: `pandas.DataFrame` of the off-diagonal pairs with errors, most frequent first:
            `true`, `predicted`, `count`, `rate` (share of the true class's rows) and `rows` (up to 5
            row indices of such errors, largest loss first).
        top_loss: `pandas.DataFrame` of the `top_k` rows with the largest loss (cross-entropy of the
            label), largest first: `row`, `true`, `predicted`, `loss`, `probability_true`,
            `confidence` (probability of the predicted class).
        losses: Array with the loss of every row.
        predicted: Array with the predicted class id of every row.
    """

    accuracy: float
    num_examples: int
    class_names: list
    confusion: pd.DataFrame
    per_class: pd.DataFrame
    most_confused: pd.DataFrame
    top_loss: pd.DataFrame
    losses: np.ndarray = dataclasses.field(repr=False)
    predicted: np.ndarray = dataclasses.field(repr=False)

    def markdown_details(self):
        """The per-class scores, the most confused pairs and the top losses as Markdown tables."""
        per_class = self.per_class.reset_index()
        confused = self.most_confused.assign(rows=self.most_confused["rows"].map(lambda r: ", ".join(map(str, r))))
        parts = [
            "### Per class",
            markdown_table(per_class, digits=3),
            "### Most confused pairs",
            markdown_table(confused, digits=3) if len(confused) else "No errors.",
            "### Largest losses",
            markdown_table(self.top_loss, digits=3),
        ]
        return "\n\n".join(parts)

    def plot(self, path):
        """Writes the confusion matrix as a PNG: colour is the share of each true class, text the counts.

        Args:
            path: File to write, e.g. `"confusion.png"`.

        Returns:
            `path`, as a string.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        counts = self.confusion.to_numpy()
        rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        size = max(4.0, 0.55 * len(self.class_names) + 2.0)
        figure = Figure(figsize=(size + 1.0, size), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        image = axes.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
        figure.colorbar(image, ax=axes, label="share of the true class", shrink=0.8)
        ticks = range(len(self.class_names))
        axes.set_xticks(ticks, self.class_names, rotation=45, ha="right")
        axes.set_yticks(ticks, self.class_names)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        if len(self.class_names) <= 20:
            for i, j in np.ndindex(counts.shape):
                if counts[i, j]:
                    colour = "white" if rates[i, j] > 0.5 else "black"
                    axes.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize="small", color=colour)
        axes.set_title(f"accuracy {self.accuracy:.3f} on {self.num_examples} rows")
        path = os.fspath(path)
        figure.savefig(path, dpi=100)
        return path


def error_analysis(model, data, *, class_names=None, top_k=10, batch_size=256):
    """Confusion matrix, most confused pairs and largest-loss rows of a classifier on labelled data.

    Runs `model.predict(x)` once and compares the most probable class with `y`. The summary gives the
    accuracy and the most confused pair ("'3' is mistaken for '8' in 12% of its rows (7 of 58): look at
    rows ..."); the advice the next pairs, the weakest class by recall and the confidently wrong rows
    (probability at least 0.9 for a wrong class), which are the first place to look for label mistakes.
    The verdict is `"info"`: the analysis judges nothing.

    Example:

    ```python
    import recipes
    from models import vision
    from recipes.debug import error_analysis

    images, labels = recipes.datasets.load_digits()
    model = vision.linear_classifier((8, 8), 10, learning_rate=1e-2)
    model.fit(images[:1200], labels[:1200], epochs=3, verbose=0)
    report = error_analysis(model, (images[1200:], labels[1200:]))
    print(report)  # INFO: accuracy 0.9 on 597 rows (10 classes); most confused: '8' is mistaken for '1' ...
    report.plot("confusion.png")
    ```

    Args:
        model: A classifier `keras.Model` with one output: class probabilities `(batch, classes)` (a
            softmax head such as the factories' `ClassProbabilities`), or `(batch, 1)` for one sigmoid
            unit (two classes).
        data: An `(x, y)` tuple. `x`: inputs the model takes: an array, a dict of arrays (one per named
            input, as `models.tabular.to_xy` returns) or a `pandas.DataFrame` with one column per named
            input. `y`: labels: integer class ids `(rows,)` or one-hot rows `(rows, classes)`.
        class_names: Optional names in label order; defaults to the model's own class names
            (`recipes.layers.class_names_of`), else `"0"`, `"1"`, ...
        top_k: Int >= 1, defaults to 10. Rows in `top_loss` and pairs in `most_confused`.
        batch_size: Int >= 1, defaults to 256. Rows per `predict` batch.

    Returns:
        An `ErrorReport`.
    """
    import keras

    from recipes.layers import class_names_of

    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model of type {type(model).__name__}")
    check_int("top_k", top_k)
    check_int("batch_size", batch_size)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        as_xy(data)  # raises the error that says what `data` must be
    x, y = data
    x = model_inputs(model, x)
    labels = _labels(y)
    rows = num_examples(x)
    if rows != len(labels) or rows == 0:
        raise ValueError(
            "`data`'s x and y must have the same number of rows, at least one. "
            f"Received rows x: {rows}, y: {len(labels)}"
        )
    probabilities = class_probabilities(model.predict(x, batch_size=int(batch_size), verbose=0))
    num_classes = probabilities.shape[1]
    if labels.max() >= num_classes:
        raise ValueError(
            f"`data`'s y must hold class ids below {num_classes}: the model has {num_classes} classes. "
            f"Received: class {int(labels.max())}"
        )
    names = class_names if class_names is not None else class_names_of(model)
    names = [str(n) for n in names] if names is not None else [str(i) for i in range(num_classes)]
    if len(names) != num_classes or len(set(names)) != num_classes:
        raise ValueError(f"`class_names` must hold {num_classes} distinct names. Received: {names!r}")
    return _report(probabilities, labels, names, int(top_k))


def _report(probabilities, labels, names, top_k):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    num_classes = len(names)
    predicted = probabilities.argmax(axis=1)
    losses = -np.log(np.clip(probabilities[np.arange(len(labels)), labels], _EPSILON, 1.0))
    counts = confusion_matrix(labels, predicted, labels=range(num_classes))
    confusion = pd.DataFrame(counts, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))
    accuracy = float(np.mean(predicted == labels))
    precision, recall, _, support = precision_recall_fscore_support(
        labels, predicted, labels=range(num_classes), zero_division=0
    )
    per_class = pd.DataFrame(
        {"precision": precision, "recall": recall, "support": support}, index=pd.Index(names, name="class")
    )

    pairs = []
    for i, j in zip(*np.nonzero(counts)):
        if i == j:
            continue
        rows = np.flatnonzero((labels == i) & (predicted == j))
        rows = rows[np.argsort(-losses[rows], kind="stable")][:_EXAMPLES_PER_PAIR]
        rate = counts[i, j] / counts[i].sum()
        pairs.append((names[i], names[j], int(counts[i, j]), float(rate), [int(r) for r in rows]))
    pairs.sort(key=lambda p: (-p[2], -p[3]))
    most_confused = pd.DataFrame(pairs[:top_k], columns=["true", "predicted", "count", "rate", "rows"])

    order = np.argsort(-losses, kind="stable")[:top_k]
    top_loss = pd.DataFrame(
        {
            "row": order,
            "true": [names[labels[r]] for r in order],
            "predicted": [names[predicted[r]] for r in order],
            "loss": losses[order],
            "probability_true": probabilities[order, labels[order]],
            "confidence": probabilities[order, predicted[order]],
        }
    )
    wrong = predicted != labels
    confidently_wrong = np.flatnonzero(wrong & (probabilities.max(axis=1) >= CONFIDENTLY_WRONG))
    confidently_wrong = confidently_wrong[np.argsort(-losses[confidently_wrong], kind="stable")]
    summary, advice = _summary_and_advice(
        accuracy, len(labels), names, most_confused, per_class, top_loss, confidently_wrong
    )
    return ErrorReport(
        verdict="info",
        summary=summary,
        advice=advice,
        accuracy=accuracy,
        num_examples=len(labels),
        class_names=list(names),
        confusion=confusion,
        per_class=per_class,
        most_confused=most_confused,
        top_loss=top_loss,
        losses=losses,
        predicted=predicted,
    )


def _summary_and_advice(accuracy, num_rows, names, most_confused, per_class, top_loss, confidently_wrong):
    summary = f"accuracy {accuracy:.3g} on {num_rows} rows ({len(names)} classes)"
    if not len(most_confused):
        return summary + "; no errors: nothing to analyse (are these the training rows?)", []
    first = most_confused.iloc[0]
    support = int(per_class.loc[first["true"], "support"])
    summary += (
        f"; most confused: {first['true']!r} is mistaken for {first['predicted']!r} in {first['rate']:.0%} of its "
        f"rows ({first['count']} of {support}): look at rows {_listed(first['rows'])}"
    )
    advice = []
    for _, pair in most_confused.iloc[1:3].iterrows():
        advice.append(
            f"then {pair['true']!r} as {pair['predicted']!r}: {pair['count']} rows ({pair['rate']:.0%}), "
            f"e.g. rows {_listed(pair['rows'])}"
        )
    weakest = per_class[per_class["support"] > 0].sort_values("recall", kind="stable").iloc[0]
    weakest_name = per_class[per_class["support"] > 0]["recall"].idxmin()
    if weakest["recall"] < accuracy:
        advice.append(
            f"weakest class: {weakest_name!r}, recall {weakest['recall']:.2f} over {int(weakest['support'])} rows: "
            "more (or more varied) examples of it, or a class weight, are the usual remedies"
        )
    if len(confidently_wrong):
        advice.append(
            f"{len(confidently_wrong)} rows are confidently wrong (probability >= {CONFIDENTLY_WRONG} for a wrong "
            f"class), e.g. rows {_listed(confidently_wrong[:_EXAMPLES_PER_PAIR])}: check their labels first, a "
            "mislabelled row looks exactly like this"
        )
    worst = top_loss.iloc[0]
    advice.append(
        f"largest loss: row {int(worst['row'])} (true {worst['true']!r}, predicted {worst['predicted']!r} with "
        f"probability {worst['confidence']:.2f}, loss {worst['loss']:.2f}); `top_loss` lists the rest"
    )
    return summary, advice


def _listed(rows):
    return ", ".join(str(int(r)) for r in rows)


def _labels(y):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    y = y.reshape(-1) if y.ndim == 2 else y
    if y.ndim != 1 or y.dtype.kind not in "biuf" or (y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0)):
        raise ValueError(
            "`data`'s y must hold integer class ids (rows,) or one-hot rows (rows, classes). Received: y of shape "
            f"{y.shape} and dtype {y.dtype}"
        )
    if y.size and y.min() < 0:
        raise ValueError(f"`data`'s y must hold class ids >= 0. Received: a minimum of {y.min()}")
    return y.astype(np.int64)


def class_probabilities(outputs):
    """Model outputs as `(rows, classes)` probabilities; one sigmoid unit `p` becomes `[1 - p, p]`."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        outputs = np.concatenate([1.0 - outputs, outputs], axis=1)
    if outputs.ndim != 2 or outputs.shape[1] < 2:
        raise ValueError(
            "the model must output class probabilities (rows, classes) or one sigmoid unit (rows, 1). "
            f"Received: outputs of shape {outputs.shape}"
        )
    return outputs


def model_inputs(model, x):
    """`x` as the model takes it: an array, or a dict of arrays for models with named inputs.

    A `pandas.DataFrame` (or dict) is narrowed to the model's input names, which must all be there;
    arrays of Python strings become object arrays, which TensorFlow takes as strings.
    """
    names = [tensor.name for tensor in model.inputs] if _has_inputs(model) else []
    if isinstance(x, pd.DataFrame) or isinstance(x, collections.abc.Mapping):
        columns = list(x.columns) if isinstance(x, pd.DataFrame) else list(x)
        missing = [name for name in names if name not in columns]
        if missing:
            raise ValueError(f"`x` must hold every input the model takes, {names}. Received: columns {columns}")
        wanted = names or columns
        if not wanted:
            raise ValueError("`x` must hold one array per model input. Received: an empty dict")
        x = {name: as_array(x[name]) for name in wanted}
        lengths = {len(v) if v.ndim else 0 for v in x.values()}
        if len(lengths) != 1:
            raise ValueError(
                f"`x` must have the same number of rows in every input. Received: lengths {sorted(lengths)}"
            )
        return x
    if isinstance(x, (list, tuple)) and len(names) > 1:
        raise ValueError(
            f"`x` must be a dict of arrays keyed by the model's {len(names)} input names {names}. "
            f"Received: a {type(x).__name__}"
        )
    return as_array(x)


def _has_inputs(model):
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False

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

from recipes._markdown import markdown_table

# A row predicted with at least this probability for a wrong class is "confidently wrong": check its label.
CONFIDENTLY_WRONG = 0.9
# Row indices listed per confused pair.
_EXAMPLES_PER_PAIR = 5
_EPSILON = 1e-7


@dataclasses.dataclass(frozen=True)
class ErrorReport:
    """What `error_analysis` returns. `str(report)` is its `advice`.

    Attributes:
        accuracy: Share of rows whose most probable class is the label.
        num_rows: Rows analysed.
        class_names: Class names in label order.
        confusion: `pandas.DataFrame` of counts, one row per true class and one column per predicted
            class (both named by `class_names`); it sums to `num_rows`.
        per_class: `pandas.DataFrame` with `precision`, `recall` and `support` per class.
        most_confused: `pandas.DataFrame` of the off-diagonal pairs with errors, most frequent first:
            `true`, `predicted`, `count`, `rate` (share of the true class's rows) and `rows` (up to 5
            row indices of such errors, largest loss first).
        top_loss: `pandas.DataFrame` of the `top_k` rows with the largest loss (cross-entropy of the
            label), largest first: `row`, `true`, `predicted`, `loss`, `probability_true`,
            `confidence` (probability of the predicted class).
        losses: Array with the loss of every row.
        predicted: Array with the predicted class id of every row.
        advice: The headline and what to look at, in order.
    """

    accuracy: float
    num_rows: int
    class_names: list
    confusion: pd.DataFrame = dataclasses.field(repr=False)
    per_class: pd.DataFrame = dataclasses.field(repr=False)
    most_confused: pd.DataFrame = dataclasses.field(repr=False)
    top_loss: pd.DataFrame = dataclasses.field(repr=False)
    losses: np.ndarray = dataclasses.field(repr=False)
    predicted: np.ndarray = dataclasses.field(repr=False)
    advice: str = ""

    def __str__(self):
        return self.advice

    def to_markdown(self):
        """The advice, then the per-class scores, the most confused pairs and the top losses as Markdown tables."""
        per_class = self.per_class.reset_index().rename(columns={"index": "class"})
        confused = self.most_confused.assign(rows=self.most_confused["rows"].map(lambda r: ", ".join(map(str, r))))
        parts = [
            "## Error analysis",
            self.advice,
            "### Per class",
            markdown_table(per_class, digits=3),
            "### Most confused pairs",
            markdown_table(confused, digits=3) if len(confused) else "No errors.",
            "### Largest losses",
            markdown_table(self.top_loss, digits=3),
        ]
        return "\n\n".join(parts) + "\n"

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
        axes.set_title(f"accuracy {self.accuracy:.3f} on {self.num_rows} rows")
        path = os.fspath(path)
        figure.savefig(path, dpi=100)
        return path


def error_analysis(model, x, y, *, class_names=None, top_k=10, batch_size=256):
    """Confusion matrix, most confused pairs and largest-loss rows of a classifier on labelled data.

    Runs `model.predict(x)` once and compares the most probable class with `y`. The advice starts with
    the accuracy and the most confused pair ("'3' is mistaken for '8' in 12% of its rows (7 of 58): look
    at rows ..."), then the weakest class by recall and the confidently wrong rows (probability at least
    0.9 for a wrong class), which are the first place to look for label mistakes.

    Example:

    ```python
    import recipes
    from models import vision
    from recipes.debug import error_analysis

    images, labels = recipes.datasets.load_digits()
    model = vision.linear_classifier((8, 8), 10, learning_rate=1e-2)
    model.fit(images[:1200], labels[:1200], epochs=3, verbose=0)
    report = error_analysis(model, images[1200:], labels[1200:])
    print(report)  # accuracy 0.9 on 597 rows (10 classes). Most confused: '8' is mistaken for '1' ...
    report.plot("confusion.png")
    ```

    Args:
        model: A classifier `keras.Model` with one output: class probabilities `(batch, classes)` (a
            softmax head such as the factories' `ClassProbabilities`), or `(batch, 1)` for one sigmoid
            unit (two classes).
        x: Inputs the model takes: an array, a dict of arrays (one per named input, as
            `models.tabular.to_xy` returns) or a `pandas.DataFrame` with one column per named input.
        y: Labels: integer class ids `(rows,)` or one-hot rows `(rows, classes)`.
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
    for name, value in (("top_k", top_k), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    x = model_inputs(model, x)
    labels = _labels(y)
    num_rows = _num_rows(x)
    if num_rows != len(labels) or num_rows == 0:
        raise ValueError(
            f"`x` and `y` must have the same number of rows, at least one. Received {num_rows} and {len(labels)}"
        )
    probabilities = class_probabilities(model.predict(x, batch_size=int(batch_size), verbose=0))
    num_classes = probabilities.shape[1]
    if labels.max() >= num_classes:
        raise ValueError(
            f"`y` holds class {int(labels.max())} but the model has {num_classes} classes (0 to {num_classes - 1})"
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
    per_class = pd.DataFrame({"precision": precision, "recall": recall, "support": support}, index=names)

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
    advice = _advice(accuracy, len(labels), names, most_confused, per_class, top_loss, confidently_wrong)
    return ErrorReport(
        accuracy, len(labels), list(names), confusion, per_class, most_confused, top_loss, losses, predicted, advice
    )


def _advice(accuracy, num_rows, names, most_confused, per_class, top_loss, confidently_wrong):
    lines = [f"accuracy {accuracy:.3g} on {num_rows} rows ({len(names)} classes)."]
    if not len(most_confused):
        lines[0] += " No errors: nothing to analyse (are these the training rows?)."
        return " ".join(lines)
    first = most_confused.iloc[0]
    support = int(per_class.loc[first["true"], "support"])
    lines[0] += (
        f" Most confused: {first['true']!r} is mistaken for {first['predicted']!r} in {first['rate']:.0%} of its rows "
        f"({first['count']} of {support}): look at rows {_listed(first['rows'])}."
    )
    for _, pair in most_confused.iloc[1:3].iterrows():
        lines.append(
            f"- then {pair['true']!r} as {pair['predicted']!r}: {pair['count']} rows ({pair['rate']:.0%}), "
            f"e.g. rows {_listed(pair['rows'])}"
        )
    weakest = per_class[per_class["support"] > 0].sort_values("recall", kind="stable").iloc[0]
    weakest_name = per_class[per_class["support"] > 0]["recall"].idxmin()
    if weakest["recall"] < accuracy:
        lines.append(
            f"- weakest class: {weakest_name!r}, recall {weakest['recall']:.2f} over {int(weakest['support'])} rows: "
            "more (or more varied) examples of it, or a class weight, are the usual remedies"
        )
    if len(confidently_wrong):
        lines.append(
            f"- {len(confidently_wrong)} rows are confidently wrong (probability >= {CONFIDENTLY_WRONG} for a wrong "
            f"class), e.g. rows {_listed(confidently_wrong[:_EXAMPLES_PER_PAIR])}: check their labels first, a "
            "mislabelled row looks exactly like this"
        )
    worst = top_loss.iloc[0]
    lines.append(
        f"- largest loss: row {int(worst['row'])} (true {worst['true']!r}, predicted {worst['predicted']!r} with "
        f"probability {worst['confidence']:.2f}, loss {worst['loss']:.2f}); `top_loss` lists the rest"
    )
    return "\n".join(lines)


def _listed(rows):
    return ", ".join(str(int(r)) for r in rows)


def _labels(y):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    y = y.reshape(-1) if y.ndim == 2 else y
    if y.ndim != 1 or y.dtype.kind not in "biuf" or (y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0)):
        raise ValueError(
            f"`y` must hold integer class ids (rows,) or one-hot rows (rows, classes). Received shape {y.shape} "
            f"and dtype {y.dtype}"
        )
    if y.size and y.min() < 0:
        raise ValueError(f"class ids in `y` must be >= 0. Received a minimum of {y.min()}")
    return y.astype(np.int64)


def class_probabilities(outputs):
    """Model outputs as `(rows, classes)` probabilities; one sigmoid unit `p` becomes `[1 - p, p]`."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        outputs = np.concatenate([1.0 - outputs, outputs], axis=1)
    if outputs.ndim != 2 or outputs.shape[1] < 2:
        raise ValueError(
            "the model must output class probabilities (rows, classes) or one sigmoid unit (rows, 1). "
            f"Received outputs of shape {outputs.shape}"
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
            raise ValueError(f"the model needs inputs {missing}; `x` has {columns}")
        wanted = names or columns
        if not wanted:
            raise ValueError("`x` is an empty dict; expected one array per model input")
        x = {name: _array(x[name]) for name in wanted}
        lengths = {len(v) if v.ndim else 0 for v in x.values()}
        if len(lengths) != 1:
            raise ValueError(f"every input in `x` must have the same number of rows. Received lengths {sorted(lengths)}")
        return x
    if isinstance(x, (list, tuple)) and len(names) > 1:
        raise ValueError(f"the model has {len(names)} inputs {names}: pass `x` as a dict of arrays keyed by those names")
    return _array(x)


def _array(values):
    array = np.asarray(values)
    return array.astype(object) if array.dtype.kind == "U" else array


def _has_inputs(model):
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False


def _num_rows(x):
    first = next(iter(x.values())) if isinstance(x, dict) else x
    return len(first) if np.ndim(first) else 0

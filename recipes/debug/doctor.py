"""`doctor`: every debugging check on one model and its data, written up as one report, verdicts first.

The checks are this package's, run in the order the seed's debugging chapter gives (is it a bug, the
data or the model?): can the model learn a small sample by heart (`overfit_check`), does it behave in
training and inference mode (`mode_check`), has the data shifted between training, test and serving
(`shift_report`), what do the learning curves of a real training run say (`diagnose`), and where does it go
wrong and why (`error_analysis`, `explain`). The report is Markdown with PNG figures next to it, and the
same as HTML (converted by the `markdown` package) to open in a browser.
"""

import dataclasses
import html
import os
import re
import time
import traceback

import numpy as np

from recipes.debug.overfit import _as_arrays, _num_rows, _required_positional, _rows

VERDICT_OK = ("PASS", "good", "no shift", "done")


@dataclasses.dataclass(frozen=True)
class Check:
    """One section of the report.

    Attributes:
        name: The check, e.g. `"overfit_check"`.
        verdict: Its verdict (`"PASS"`, `"FAIL"`, `"good"`, `"overfitting"`, `"shift"`, ...), `"done"` for
            analyses without one (error analysis, explanations), or `"ERROR"` when the check itself
            raised (the message is in `summary`).
        summary: Its text: the report's `str`, or the error.
        figures: PNG files written for it, relative to the report's folder.
        result: The check's own return value (`OverfitReport`, `Diagnosis`, ...), or `None`.
        seconds: Time it took.
    """

    name: str
    verdict: str
    summary: str
    figures: list
    result: object = dataclasses.field(repr=False, default=None)
    seconds: float = 0.0

    @property
    def ok(self):
        return self.verdict in VERDICT_OK


@dataclasses.dataclass(frozen=True)
class DoctorReport:
    """What `doctor` returns. `str(report)` lists the verdicts.

    Attributes:
        verdict: `"healthy"` when every check passed, else `"problems found"`.
        checks: The `Check`s in report order.
        markdown_path: The Markdown report.
        html_path: The HTML report.
    """

    verdict: str
    checks: list
    markdown_path: str
    html_path: str

    def __str__(self):
        lines = [f"{self.verdict}: {sum(c.ok for c in self.checks)} of {len(self.checks)} checks passed"]
        for check in self.checks:
            first = check.summary.strip().splitlines()[0] if check.summary.strip() else ""
            lines.append(f"  [{'ok' if check.ok else '!!'}] {check.name}: {_shorten(first, 150)}")
        lines.append(f"report: {self.html_path}")
        return "\n".join(lines)


def doctor(
    model_fn,
    train,
    validation,
    *,
    test=None,
    serving=None,
    output_dir="doctor",
    kind=None,
    class_names=None,
    target=None,
    batch_size=32,
    total_examples=None,
    num_checkpoints=5,
    overfit_per_class=50,
    explain_examples=3,
    seed=0,
    verbose=0,
):
    """Runs the debugging checks on a model factory and its data and writes a Markdown and HTML report.

    1. `overfit_check(model_fn, *train)`: a fresh model must learn a small sample of the training data.
    2. A real training run: a fresh model trained on `train` with `recipes.fit` (virtual epochs,
       validation after each), then `diagnose` on its curves (with `target` if given).
    3. `mode_check` on the trained model and a batch of validation inputs.
    4. `shift_report(train inputs, test inputs)` (validation inputs without `test`), and the training
       inputs against `serving` inputs when given: requests logged in production, say.
    5. `error_analysis` of the trained model on the test (else validation) data: confusion matrix, most
       confused pairs, top-loss examples (classifiers only).
    6. `explain` on the first `explain_examples` top-loss examples.

    A check that raises is reported as `ERROR` with its message, and the others still run.

    Example:

    ```python
    import recipes
    from models import vision
    from recipes.debug import doctor

    images, labels = recipes.datasets.load_digits()
    train, val, test = recipes.repeatable_split(range(len(labels)), (0.6, 0.2, 0.2))
    report = doctor(
        lambda: vision.cnn_classifier((8, 8), 10),
        (images[train], labels[train]), (images[val], labels[val]), test=(images[test], labels[test]),
        output_dir="doctor/digits", total_examples=5000,
    )
    print(report)  # problems found: 5 of 6 checks passed ... report: doctor/digits/report.html
    ```

    Args:
        model_fn: Callable returning a new compiled single-output `keras.Model`, called as
            `overfit_check` calls it: with none, the inputs, or the inputs and labels it trains on.
        train: `(x, y)`: inputs (an array or a dict of arrays per named input) and labels.
        validation: `(x, y)` in the same form.
        test: Optional `(x, y)`, defaults to `None`: held-out data for the shift check and error
            analysis (the validation data is used without it).
        serving: Optional inputs seen in serving, defaults to `None`: compared with the training inputs.
        output_dir: Folder for `report.md`, `report.html` and the figures, defaults to `"doctor"`.
        kind: `"text"`, `"image"`, `"audio"` or `"tabular"`, passed to `shift_report` and `explain`;
            defaults to `None` (inferred by them).
        class_names: Optional class names for the confusion matrix, defaults to `None`.
        target: Optional score wanted (e.g. human-level accuracy), passed to `diagnose`. Defaults to `None`.
        batch_size: Int, defaults to 32.
        total_examples: Int, examples shown in the training run. Defaults to `None`: 10 passes over `train`.
        num_checkpoints: Int, virtual epochs of the training run (points on its curves). Defaults to 5.
        overfit_per_class: Int, rows per class sampled by `overfit_check`. Defaults to 50.
        explain_examples: Int >= 0, examples explained. Defaults to 3.
        seed: Int, defaults to 0.
        verbose: Int, defaults to 0. 1 prints each check's verdict as it ends; 2 also the training run's
            epochs.

    Returns:
        A `DoctorReport`.
    """
    import recipes
    from recipes.debug import diagnose, mode_check, overfit_check

    x_train, y_train = _pair(train, "train")
    x_val, y_val = _pair(validation, "validation")
    held_out = _pair(test, "test") if test is not None else (x_val, y_val)
    held_out_name = "test" if test is not None else "validation"
    if not callable(model_fn):
        raise ValueError(f"`model_fn` must be a callable returning a compiled model. Received: {model_fn!r}")
    for name, value in (("batch_size", batch_size), ("num_checkpoints", num_checkpoints)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Received: {value!r}")
    if not isinstance(explain_examples, int) or explain_examples < 0:
        raise ValueError(f"`explain_examples` must be an int >= 0. Received: {explain_examples!r}")
    total_examples = total_examples or 10 * _num_rows(x_train)
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    classifier = _is_classification(y_train)
    checks = []

    def run(name, body):
        start = time.perf_counter()
        try:
            verdict, summary, figures, result = body()
        except Exception as error:  # the report says what failed; the other checks still run
            verdict, summary, figures, result = "ERROR", _error_text(error), [], None
        checks.append(Check(name, verdict, summary, figures, result, time.perf_counter() - start))
        if verbose:
            print(f"recipes.debug.doctor: {name}: {verdict} ({checks[-1].seconds:.1f} s)", flush=True)
        return result

    def overfit():
        report = overfit_check(
            model_fn, x_train, y_train, per_class=overfit_per_class, seed=seed,
            num_classes=min(10, len(np.unique(y_train))) if classifier else 10,
            task="classification" if classifier else "regression",
        )  # fmt: skip
        return report.verdict, str(report), [_figure(report.plot, output_dir, "overfit.png")], report

    run("overfit_check", overfit)

    trained = {}

    def training():
        recipes.set_seed(seed)
        model = _call_model_fn(model_fn, x_train, y_train)
        result = recipes.fit(
            model, (x_train, y_train), validation_data=(x_val, y_val), batch_size=batch_size,
            total_examples=total_examples, num_checkpoints=num_checkpoints, verbose=2 if verbose > 1 else 0,
        )  # fmt: skip
        trained["model"] = model
        diagnosis = diagnose(result.history, target=target)
        figure = _figure(lambda path: _plot_curves(result.history, diagnosis.metric, path), output_dir, "curves.png")
        return diagnosis.verdict, str(diagnosis), [figure], diagnosis

    run("diagnose", training)

    def modes():
        model = _trained(trained)
        report = mode_check(model, _rows(x_val, slice(0, 64)))
        return report.verdict, str(report), [], report

    run("mode_check", modes)

    def shift(current, label, filename):
        def body():
            from recipes.debug import shift_report

            report = shift_report(_as_frame(x_train), _as_frame(current), kind=kind, seed=seed)
            return report.verdict, f"training vs {label}: {report}", [_figure(report.plot, output_dir, filename)], report

        return body

    run(f"shift_report (train vs {held_out_name})", shift(held_out[0], held_out_name, "shift.png"))
    if serving is not None:
        run("shift_report (train vs serving)", shift(serving, "serving", "shift_serving.png"))

    def errors():
        from recipes.debug import error_analysis

        if not classifier:
            raise ValueError("error analysis needs class labels; the labels are numbers (regression)")
        report = error_analysis(_trained(trained), *held_out, class_names=class_names)
        trained["errors"] = report
        return "done", str(report), [_figure(report.plot, output_dir, "confusion.png")], report

    run(f"error_analysis ({held_out_name})", errors)

    if explain_examples:

        def explanations():
            from recipes.debug import explain

            report = trained.get("errors")
            rows = _top_loss_rows(report, explain_examples, _num_rows(held_out[0]))
            explanation = explain(_trained(trained), _rows(held_out[0], rows), kind=kind)
            return "done", str(explanation), [_figure(explanation.plot, output_dir, "explain.png")], explanation

        run("explain (top-loss examples)" if classifier else "explain", explanations)

    verdict = "healthy" if all(check.ok for check in checks) else "problems found"
    markdown_text = _markdown(verdict, checks)
    markdown_path = os.path.join(output_dir, "report.md")
    with open(markdown_path, "w", encoding="utf-8") as f:
        f.write(markdown_text)
    html_path = os.path.join(output_dir, "report.html")
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(_html(markdown_text))
    return DoctorReport(verdict, checks, markdown_path, html_path)


def _pair(data, name):
    """`(x, y)` as arrays, or a dict of arrays per named input, as `overfit_check` reads them."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"`{name}` must be an (x, y) pair. Received: {type(data).__name__}")
    try:
        return _as_arrays(*data)
    except ValueError as error:
        raise ValueError(f"`{name}`: {error}") from None


def _as_frame(x):
    """Dicts of columns (tabular models' inputs) become a DataFrame, which `shift_report` reads per column."""
    if isinstance(x, dict):
        import pandas as pd

        return pd.DataFrame({k: np.asarray(v).reshape(len(v), -1)[:, 0] if np.ndim(v) > 1 else v for k, v in x.items()})
    return x


def _is_classification(y):
    y = np.asarray(y)
    return y.dtype.kind in "iub" or (y.ndim == 2 and y.shape[1] > 1)


def _call_model_fn(model_fn, x, y):
    return model_fn(*(x, y)[: _required_positional(model_fn)])


def _trained(trained):
    if "model" not in trained:
        raise ValueError("the training run failed (see the diagnose section), so there is no trained model to check")
    return trained["model"]


def _top_loss_rows(report, count, num_rows):
    """The rows the model got most wrong (`ErrorReport.top_loss`), else the first rows (regression)."""
    if report is not None and len(report.top_loss):
        return report.top_loss["row"].to_numpy()[:count].astype(int)
    return np.arange(min(count, num_rows))


def _figure(plot, output_dir, filename):
    plot(os.path.join(output_dir, filename))
    return filename


def _plot_curves(history, metric, path):
    """Training and validation curves of the loss and of the judged metric, one PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = ["loss"] + ([metric] if metric != "loss" and metric in history else [])
    figure = Figure(figsize=(4.2 * len(names), 3.4), layout="constrained")
    FigureCanvasAgg(figure)
    for i, name in enumerate(names):
        axes = figure.add_subplot(1, len(names), i + 1)
        for key, label in ((name, "training"), (f"val_{name}", "validation")):
            if key in history:
                values = history[key]
                axes.plot(range(1, len(values) + 1), values, marker="o", label=label)
        axes.set_xlabel("virtual epoch")
        axes.set_ylabel(name)
        axes.legend(fontsize="small")
    figure.savefig(os.fspath(path), dpi=100)
    return os.fspath(path)


def _error_text(error):
    where = traceback.extract_tb(error.__traceback__)[-1]
    return f"{type(error).__name__}: {error} (at {os.path.basename(where.filename)}:{where.lineno})"


def _shorten(text, width):
    return text if len(text) <= width else text[: width - 3] + "..."


def _section_body(check):
    to_markdown = getattr(check.result, "to_markdown", None)
    if callable(to_markdown):  # its headings go below the section's own, from level 3 down
        text = to_markdown()
        levels = [len(m) for m in re.findall(r"^(#+) ", text, flags=re.M)]
        shift = 3 - min(levels) if levels else 0
        return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + shift) + " ", text, flags=re.M)
    return "```text\n" + check.summary.strip() + "\n```"


def _markdown(verdict, checks):
    lines = [
        "# recipes doctor report",
        "",
        f"**{verdict}**: {sum(c.ok for c in checks)} of {len(checks)} checks passed.",
        "",
        "| check | verdict | in one line |",
        "|---|---|---|",
    ]
    for check in checks:
        first = check.summary.strip().splitlines()[0] if check.summary.strip() else ""
        mark = "ok" if check.ok else "**look here**"
        lines.append(f"| {check.name} | {check.verdict} ({mark}) | {_shorten(first, 200).replace('|', '/')} |")
    for check in checks:
        lines += ["", f"## {check.name}: {check.verdict}", "", _section_body(check), ""]
        lines += [f"![{check.name}]({figure})" for figure in check.figures]
        lines.append(f"\n<sub>{check.seconds:.1f} s</sub>")
    return "\n".join(lines) + "\n"


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 0.25rem 0.5rem; vertical-align: top; }
pre { background: #f6f8fa; padding: 0.75rem; overflow-x: auto; white-space: pre-wrap; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def _html(markdown_text):
    try:
        import markdown
    except ImportError as error:  # a dependency of tensorboard, so normally present
        raise ImportError("the HTML report needs the `markdown` package: pip install markdown") from error
    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code"])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape('recipes doctor report')}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )

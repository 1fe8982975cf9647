"""`doctor`: a list of checks on one model and its data, written up as one report, verdicts first.

The doctor knows no check by name: it runs each check of the list (`recipes.debug.checks.default_checks`,
or your own) on a `Case`, reads the `recipes.report.Report` each returns through that protocol, draws each
report's figure, and writes the whole as Markdown with PNG figures next to it and the same as HTML
(converted by the `markdown` package) to open in a browser. A check that raises is reported with the
verdict "error" and its message, and the others still run.
"""

import dataclasses
import html
import os
import re
import time
import traceback

from recipes._common import as_xy, check_int, check_one_of, num_examples
from recipes.report import Report


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One section of the doctor's report.

    Attributes:
        name: The check's name, e.g. `"overfit_check"`.
        report: The `Report` it returned; verdict `"error"` when the check itself raised (the message in
            its summary).
        figures: PNG files written for it, relative to the report's folder.
        seconds: Time it took.
    """

    name: str
    report: Report
    figures: list
    seconds: float

    @property
    def verdict(self):
        return self.report.verdict

    @property
    def ok(self):
        return self.report.ok


@dataclasses.dataclass(frozen=True, kw_only=True)
class DoctorReport(Report):
    """What `doctor` returns (a `recipes.report.Report`).

    Attributes:
        verdict: `"fail"` when a check is not ok (`"fail"` or `"error"`), else `"warn"` when one warns,
            else `"pass"`.
        summary: How many checks are ok, and which to look at.
        advice: For each check that failed, warned or raised, its first piece of advice; then where the
            full report is.
        checks: The `CheckResult`s in report order.
        directory: The folder of the report and its figures.
        markdown_path: The Markdown report.
        html_path: The HTML report.
    """

    checks: list
    directory: str
    markdown_path: str
    html_path: str

    def to_markdown(self):
        """The whole report: a title, the verdict, the table of checks, one section per check, the advice."""
        return "# recipes doctor report\n\n" + super().to_markdown()

    def markdown_details(self):
        lines = ["| check | verdict | in one line |", "|---|---|---|"]
        for check in self.checks:
            mark = "ok" if check.ok else "**look here**"
            summary = _shorten(check.report.summary.strip(), 200).replace("|", "/")
            lines.append(f"| {check.name} | {check.verdict} ({mark}) | {summary} |")
        for check in self.checks:
            lines += ["", f"## {check.name}: {check.verdict}", "", _section_body(check.report)]
            lines += [f"![{check.name}]({figure})" for figure in check.figures]
            lines.append(f"\n<sub>{check.seconds:.1f} s</sub>")
        return "\n".join(lines)


def doctor(
    model_fn,
    train_data,
    validation_data,
    *,
    test_data=None,
    serving_data=None,
    checks=None,
    directory="doctor",
    modality=None,
    class_names=None,
    split_column=None,
    target_score=None,
    batch_size=32,
    total_examples=None,
    num_checkpoints=5,
    seed=0,
    verbose="auto",
):
    """Runs a list of checks on a model factory and its data and writes a Markdown and HTML report.

    The default checks (`default_checks()`), in the order of the debugging chapter (is it a bug, the data
    or the model?):

    1. `overfit_check(model_fn, train_data)`: a fresh model must learn a small sample of the training data.
    2. A real training run: a fresh model trained on `train_data` with `recipes.fit` (virtual epochs,
       validation after each), then `diagnose` on its curves (with `target_score` if given).
    3. `mode_check` on the trained model and a batch of validation inputs.
    4. `shift_report` of the training data against the test data (the validation data without
       `test_data`), in three rows: input shift (the features and a domain classifier; `split_column`, the
       column the data was split by, reported apart as expected to differ), label shift (the class
       frequencies, or a regression target) and concept shift (the same inputs, other labels); and the
       input shift against `serving_data` when given: requests logged in production, say.
    5. `error_analysis` of the trained model on the test (else validation) data: confusion matrix, most
       confused pairs, top-loss examples (classifiers only).
    6. `explain` on the top-loss examples.

    Each check returns a `recipes.report.Report`; a check that raises becomes a report with the verdict
    `"error"` and its message, and the others still run. The report's verdict is `"fail"` when a check
    is not ok, else `"warn"` when one warns, else `"pass"`.

    Example:

    ```python
    import recipes
    from models import vision
    from recipes.debug import doctor

    images, labels = recipes.datasets.load_digits()
    train, val, test = recipes.repeatable_split(range(len(labels)), (0.6, 0.2, 0.2))
    report = doctor(
        lambda: vision.cnn_classifier((8, 8), 10),
        (images[train], labels[train]), (images[val], labels[val]), test_data=(images[test], labels[test]),
        directory="doctor/digits", total_examples=5000,
    )
    print(report)  # WARN: 8 of 8 checks ok; look at: diagnose ... - read the whole report: doctor/digits/report.html
    ```

    Args:
        model_fn: Callable returning a new compiled single-output `keras.Model`, called as
            `overfit_check` calls it: with none, the inputs, or the inputs and labels it trains on.
        train_data: `(x, y)`: inputs (an array or a dict of arrays per named input) and labels.
        validation_data: `(x, y)` in the same form.
        test_data: Optional `(x, y)`, defaults to `None`: held-out data for the shift check and error
            analysis (the validation data is used without it).
        serving_data: Optional inputs seen in serving, defaults to `None`: compared with the training inputs.
        checks: Optional list of checks (callables taking a `recipes.debug.Case` and returning a `Report`
            or `None`; see `recipes.debug.checks`), defaults to `None`: `default_checks()`.
        directory: Folder for `report.md`, `report.html` and the figures, defaults to `"doctor"`.
        modality: `"text"`, `"image"`, `"audio"` or `"table"`, passed to `shift_report` and `explain`;
            defaults to `None` (inferred by them).
        class_names: Optional class names for the confusion matrix and the label shift, defaults to `None`.
        split_column: Optional column of a table's inputs the data was split by (a date, a group, a key: a
            `recipes.tasks.Task`'s `split_plan.column`), defaults to `None`. It differs between the sides
            by design, so the shift check reports it apart, keeps it out of its verdict and its domain
            classifier, and compares a date by its day of year and day of week instead.
        target_score: Optional score wanted (e.g. human-level accuracy), passed to `diagnose`. Defaults to `None`.
        batch_size: Int >= 1, defaults to 32.
        total_examples: Int, examples shown in the training run. Defaults to `None`: 10 passes over
            `train_data`.
        num_checkpoints: Int >= 1, virtual epochs of the training run (points on its curves). Defaults to 5.
        seed: Int >= 0, defaults to 0.
        verbose: `"auto"` (default, as 1), 0 (silent), 1 (a line per check as it ends) or 2 (also the
            training run's virtual epochs).

    Returns:
        A `DoctorReport`.
    """
    from recipes.debug.checks import Case, default_checks
    from recipes.debug.shift import MODALITIES

    case = Case(
        model_fn=model_fn,
        train_data=as_xy(train_data, "train_data"),
        validation_data=as_xy(validation_data, "validation_data"),
        test_data=as_xy(test_data, "test_data") if test_data is not None else None,
        serving_data=serving_data,
        modality=check_one_of("modality", modality, MODALITIES) if modality is not None else None,
        class_names=class_names,
        split_column=split_column,
        target_score=target_score,
        batch_size=check_int("batch_size", batch_size),
        num_checkpoints=check_int("num_checkpoints", num_checkpoints),
        seed=check_int("seed", seed, 0),
    )
    if split_column is not None and not isinstance(split_column, str):
        raise ValueError(
            f"`split_column` must be a column name (a string) or None. Received: split_column={split_column!r}"
        )
    if not callable(model_fn):
        raise ValueError(f"`model_fn` must be a callable returning a compiled model. Received: model_fn={model_fn!r}")
    verbose = check_one_of("verbose", verbose, ("auto", 0, 1, 2))
    case.verbose = 1 if verbose == "auto" else verbose
    if total_examples is None:
        total_examples = 10 * num_examples(case.train_data[0])
    case.total_examples = check_int("total_examples", total_examples)
    checks = default_checks() if checks is None else list(checks)
    for check in checks:
        if not callable(check):
            raise ValueError(f"`checks` must hold callables taking a Case. Received: {check!r}")
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)

    results = []
    for check in checks:
        result = _run(check, case, directory)
        if result is None:
            continue
        results.append(result)
        case.reports[result.name] = result.report
        if case.verbose:
            print(f"recipes.debug.doctor: {result.name}: {result.verdict} ({result.seconds:.1f} s)", flush=True)

    markdown_path = os.path.join(directory, "report.md")
    html_path = os.path.join(directory, "report.html")
    report = DoctorReport(
        **_verdict(results, html_path),
        checks=results,
        directory=directory,
        markdown_path=markdown_path,
        html_path=html_path,
    )
    markdown_text = report.to_markdown()
    with open(markdown_path, "w", encoding="utf-8") as f:
        f.write(markdown_text)
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(_html(markdown_text))
    return report


def _run(check, case, directory):
    """The check's `CheckResult` with its figure drawn, one whose report says "error" if it raised, or
    `None` when the check does not apply."""
    name = getattr(check, "name", None) or getattr(check, "__name__", type(check).__name__)
    start = time.perf_counter()
    figures = []
    try:
        report = check(case)
        if report is None:
            return None
        if not isinstance(report, Report):
            raise ValueError(
                f"a check must return a recipes.report.Report or None. Received: a {type(report).__name__}"
            )
        filename = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") + ".png"
        if report.plot(os.path.join(directory, filename)) is not None:
            figures.append(filename)
    except Exception as error:  # noqa: BLE001 - the report says what failed; the other checks still run
        report = Report("error", _error_text(error), ["fix what raised, then run the doctor again"])
    return CheckResult(name, report, figures, time.perf_counter() - start)


def _verdict(results, html_path):
    """The verdict, summary and advice of the whole: fail if any check is not ok, else warn if one warns."""
    verdicts = [result.verdict for result in results]
    verdict = "fail" if any(not r.ok for r in results) else "warn" if "warn" in verdicts else "pass"
    look = [r.name for r in results if r.verdict in ("fail", "error", "warn")]
    summary = f"{sum(r.ok for r in results)} of {len(results)} checks ok"
    if look:
        summary += "; look at: " + ", ".join(look)
    advice = [
        f"{r.name}: {r.report.advice[0] if r.report.advice else r.report.summary}"
        for r in results
        if r.verdict in ("fail", "error", "warn")
    ]
    advice.append(f"read the whole report: {html_path}")
    return dict(verdict=verdict, summary=summary, advice=advice)


def _error_text(error):
    where = traceback.extract_tb(error.__traceback__)[-1]
    return f"{type(error).__name__}: {error} (at {os.path.basename(where.filename)}:{where.lineno})"


def _shorten(text, width):
    return text if len(text) <= width else text[: width - 3] + "..."


def _section_body(report):
    """The check's Markdown, its headings moved below the section's own (level 3 and down)."""
    text = report.to_markdown()
    levels = [len(m) for m in re.findall(r"^(#+) ", text, flags=re.M)]
    shift = 3 - min(levels) if levels else 0
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + shift) + " ", text, flags=re.M)


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
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape('recipes doctor report')}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )

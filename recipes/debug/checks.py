"""The checks `doctor` runs by default, and what a check is.

A check is a callable that takes the `Case` (the model factory, the data, the settings, and what the
checks before it left: the trained `model`, their `reports`) and returns a `recipes.report.Report`, or
`None` when it does not apply to this case (no serving data, no example to explain). Its `name` attribute
(else its `__name__`) titles its section of the report. A check of your own is a function:

```python
from recipes.debug import default_checks, doctor
from recipes.report import Report


def enough_data(case):
    x, _ = case.train_data
    rows = len(x)
    return Report("pass" if rows >= 1000 else "warn", f"{rows} training rows", [] if rows >= 1000 else
                  ["collect more data, or augment it: recipes.augment.augment_dataset(...)"])


report = doctor(model_fn, train_data, validation_data, checks=[enough_data, *default_checks()])
```
"""

import dataclasses

import numpy as np

from recipes._common import check_int, required_positional, take_rows


@dataclasses.dataclass
class Case:
    """What the checks of one `doctor` run read, and what they leave for the checks after them.

    Attributes:
        model_fn: The model factory, called as `overfit_check` calls it.
        train_data: `(x, y)` arrays (`x` an array or a dict of arrays per named input).
        validation_data: `(x, y)` in the same form.
        test_data: `(x, y)` or `None`.
        serving_data: Inputs seen in serving, or `None`.
        modality: `"text"`, `"image"`, `"audio"`, `"table"` or `None` (the checks infer it).
        class_names: Class names, or `None`.
        split_column: The column of a table's inputs the data was split by (a task's
            `split_plan.column`), or `None`: the shift checks report it apart as expected to differ.
        target_score: The score wanted (for `diagnose`), or `None`.
        batch_size: Int, for the training run.
        total_examples: Int, examples shown in the training run.
        num_checkpoints: Int, virtual epochs of the training run.
        seed: Int.
        verbose: 0, 1 or 2.
        model: The model the training run trained, for the checks after it; `None` before.
        reports: Check name to the `Report` of each check run so far.
        shift_reports: The `ShiftReport`s computed so far, by the side compared (`"held-out"`, `"serving"`),
            so that the input, label and concept rows of one comparison share one report.
    """

    model_fn: object
    train_data: tuple
    validation_data: tuple
    test_data: tuple | None = None
    serving_data: object = None
    modality: str | None = None
    class_names: list | None = None
    split_column: str | None = None
    target_score: float | None = None
    batch_size: int = 32
    total_examples: int | None = None
    num_checkpoints: int = 5
    seed: int = 0
    verbose: int = 0
    model: object = None
    reports: dict = dataclasses.field(default_factory=dict)
    shift_reports: dict = dataclasses.field(default_factory=dict)

    @property
    def held_out_data(self):
        """The test data, else the validation data."""
        return self.test_data if self.test_data is not None else self.validation_data

    @property
    def held_out_name(self):
        return "test" if self.test_data is not None else "validation"

    @property
    def is_classification(self):
        """Whether the labels are class ids or one-hot rows (not numbers to regress)."""
        y = np.asarray(self.train_data[1])
        return y.dtype.kind in "iub" or (y.ndim == 2 and y.shape[1] > 1)

    def trained_model(self):
        """The model the training run trained, or a `ValueError` saying there is none."""
        if self.model is None:
            raise ValueError(
                "the training run failed (see the diagnose section), so there is no trained model to check"
            )
        return self.model


class OverfitCheck:
    """`overfit_check` on the training data: can a fresh model learn a small sample by heart?"""

    name = "overfit_check"

    def __init__(self, per_class=50):
        self.per_class = check_int("per_class", per_class)

    def __call__(self, case):
        from recipes.debug import overfit_check

        classifier = case.is_classification
        return overfit_check(
            case.model_fn,
            case.train_data,
            per_class=self.per_class,
            seed=case.seed,
            num_classes=min(10, len(np.unique(case.train_data[1]))) if classifier else 10,
            task="classification" if classifier else "regression",
        )


class TrainingRun:
    """A real training run with `recipes.fit` (virtual epochs, validation after each), read by `diagnose`.

    Leaves the trained model in `case.model` for the checks after it.
    """

    name = "diagnose"

    def __call__(self, case):
        import recipes
        from recipes.debug import diagnose

        recipes.set_seed(case.seed)
        model = case.model_fn(*case.train_data[: required_positional(case.model_fn)])
        result = recipes.fit(
            model,
            case.train_data,
            validation_data=case.validation_data,
            batch_size=case.batch_size,
            total_examples=case.total_examples,
            num_checkpoints=case.num_checkpoints,
            verbose=2 if case.verbose > 1 else 0,
        )
        case.model = model
        return diagnose(result.history, target_score=case.target_score)


class ModeCheck:
    """`mode_check` on the trained model and up to 64 validation inputs."""

    name = "mode_check"

    def __call__(self, case):
        from recipes.debug import mode_check

        return mode_check(case.trained_model(), take_rows(case.validation_data[0], slice(0, 64)))


class ShiftCheck:
    """One part of `shift_report` of the training data against the held-out data (test, else validation),
    or against the serving inputs (no report without them).

    The parts: `"inputs"` (the features and the domain classifier, the split column reported apart),
    `"labels"` (label shift: the class frequencies or the target) and `"concept"` (concept shift: do the same
    inputs get other labels?). Serving data has no labels: its label and concept parts do not apply. The
    parts of one comparison share one report, computed by the first of them to run.
    """

    PARTS = ("inputs", "labels", "concept")

    def __init__(self, against="held-out", part="inputs"):
        if against not in ("held-out", "serving"):
            raise ValueError(f"`against` must be 'held-out' or 'serving'. Received: against={against!r}")
        if part not in self.PARTS:
            raise ValueError(f"`part` must be one of {self.PARTS}. Received: part={part!r}")
        self.against, self.part = against, part
        self.name = f"{dict(inputs='input', labels='label', concept='concept')[part]} shift (train vs {against})"

    def __call__(self, case):
        if self.against == "serving" and (case.serving_data is None or self.part != "inputs"):
            return None
        which = "serving" if self.against == "serving" else case.held_out_name
        if self.against not in case.shift_reports:
            case.shift_reports[self.against] = self._report(case)
        report = case.shift_reports[self.against]
        if self.part == "inputs":
            part = report.input_report()
        else:
            part = report.label_shift if self.part == "labels" else report.concept_shift
        return None if part is None else dataclasses.replace(part, summary=f"training vs {which}: {part.summary}")

    def _report(self, case):
        from recipes.debug import shift_report

        reference = _as_frame(case.train_data[0])
        if self.against == "serving":
            current = _as_frame(case.serving_data)
        else:
            current = _as_frame(case.held_out_data[0])
            reference, current = (reference, case.train_data[1]), (current, case.held_out_data[1])
        frame = reference[0] if isinstance(reference, tuple) else reference
        columns = getattr(frame, "columns", ())
        # a split column that is not among the inputs (the movie of a review, the speaker of a clip) is kept out already
        split_column = case.split_column if case.split_column in columns else None
        return shift_report(
            reference,
            current,
            modality=case.modality,
            seed=case.seed,
            split_column=split_column,
            class_names=case.class_names if case.is_classification else None,
        )


class ErrorCheck:
    """`error_analysis` of the trained model on the held-out data (classifiers only: a regression is an error)."""

    name = "error_analysis (held-out)"

    def __call__(self, case):
        from recipes.debug import error_analysis

        if not case.is_classification:
            raise ValueError("error analysis needs class labels; the labels are numbers (regression)")
        return error_analysis(case.trained_model(), case.held_out_data, class_names=case.class_names)


class ExplainCheck:
    """`explain` on the held-out examples the model got most wrong (the error analysis's top losses, else
    the first examples)."""

    name = "explain (top-loss examples)"

    def __init__(self, num_examples=3):
        self.num_examples = check_int("num_examples", num_examples, 0)

    def __call__(self, case):
        from recipes.debug import ErrorReport, explain

        if not self.num_examples:
            return None
        x = case.held_out_data[0]
        errors = next((r for r in case.reports.values() if isinstance(r, ErrorReport) and len(r.top_loss)), None)
        if errors is not None:
            rows = errors.top_loss["row"].to_numpy()[: self.num_examples].astype(int)
        else:
            rows = np.arange(min(self.num_examples, len(case.held_out_data[1])))
        return explain(case.trained_model(), take_rows(x, rows), modality=case.modality)


def default_checks(*, overfit_per_class=50, explain_examples=3):
    """The checks in the order of the debugging chapter (is it a bug, the data or the model?).

    Args:
        overfit_per_class: Int >= 1, defaults to 50. Examples per class `overfit_check` samples.
        explain_examples: Int >= 0, defaults to 3. Top-loss examples explained (0: no explanation).

    Returns:
        A list of checks: `overfit_check`, a training run read by `diagnose`, `mode_check`, `shift_report`'s
        input, label and concept shift of the training data against the held-out data and its input shift
        against the serving inputs, `error_analysis` and `explain`.
    """
    return [
        OverfitCheck(per_class=overfit_per_class),
        TrainingRun(),
        ModeCheck(),
        ShiftCheck("held-out", "inputs"),
        ShiftCheck("held-out", "labels"),
        ShiftCheck("held-out", "concept"),
        ShiftCheck("serving", "inputs"),
        ErrorCheck(),
        ExplainCheck(num_examples=explain_examples),
    ]


def _as_frame(x):
    """Dicts of columns (table models' inputs) become a DataFrame, which `shift_report` reads per column."""
    if isinstance(x, dict):
        import pandas as pd

        return pd.DataFrame({k: np.asarray(v).reshape(len(v), -1)[:, 0] if np.ndim(v) > 1 else v for k, v in x.items()})
    return x

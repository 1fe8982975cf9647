"""The result protocol: what every checking recipe returns, so that one piece of code can read any of them.

A check (`overfit_check`, `diagnose`, `mode_check`, `shift_report`, `error_analysis`, `explain`,
`augmentation_check`, `augmentation_effect`, `cost_report`, `doctor`, ...) returns a `Report`:

- `verdict`: one word of `VERDICTS`: `"pass"`, `"warn"`, `"fail"`, `"error"` (the check itself could not
  run) or `"info"` (an analysis that judges nothing, e.g. explanations);
- `ok`: `False` for `"fail"` and `"error"`, so a CI job can gate on it (the command line's exit code is 1);
- `summary`: one line saying what was found (`"overfitting: validation loss rises after epoch 3"`);
- `advice`: what to do, each item naming the package call that does it; empty when there is nothing to do;
- `to_markdown()`, `to_dict()` (JSON-ready) and `plot(path)`, which writes the check's figure as a PNG and
  returns `path`, or writes nothing and returns `None` for a check without one.

A subclass is a frozen keyword-only dataclass (`@dataclasses.dataclass(frozen=True, kw_only=True)`) that
sets `verdict`, `summary` and `advice`, adds its own fields, and overrides `markdown_details` and `plot`
where it has more to show; `to_dict` converts its fields to JSON types (numpy scalars and arrays, pandas
frames, named tuples, nested reports), leaving out those declared with `repr=False` (models, raw inputs).

Example:

```python
from recipes.debug import diagnose

report = diagnose({"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.9, 1.4]})
report.verdict, report.ok     # a word of VERDICTS, and whether it is neither "fail" nor "error"
print(report.summary)
print(report.to_markdown())
json.dumps(report.to_dict())
```
"""

import dataclasses
import math

import numpy as np

VERDICTS = ("pass", "warn", "fail", "error", "info")
NOT_OK = ("fail", "error")


@dataclasses.dataclass(frozen=True)
class Report:
    """Base of every checking recipe's result (see the module docstring).

    Attributes:
        verdict: One of `VERDICTS`.
        summary: One line saying what was found.
        advice: What to do, each item naming the package call that does it.
    """

    verdict: str
    summary: str
    advice: tuple = ()

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"`verdict` must be one of {VERDICTS}. Received: verdict={self.verdict!r}")
        if isinstance(self.advice, str):
            raise ValueError(f"`advice` must be a list of strings, not one string. Received: advice={self.advice!r}")
        object.__setattr__(self, "advice", tuple(self.advice))

    @property
    def ok(self):
        """`False` when the verdict is `"fail"` or `"error"`."""
        return self.verdict not in NOT_OK

    def __str__(self):
        lines = [f"{self.verdict.upper()}: {self.summary}"]
        lines += [f"- {item}" for item in self.advice]
        return "\n".join(lines)

    def to_markdown(self):
        """The report as Markdown: the verdict and summary, the details of the subclass, then the advice."""
        parts = [f"**{self.verdict.upper()}**: {self.summary}"]
        details = self.markdown_details()
        if details:
            parts.append(details)
        if self.advice:
            parts.append("What to do:\n\n" + "\n".join(f"- {item}" for item in self.advice))
        return "\n\n".join(parts) + "\n"

    def markdown_details(self):
        """The subclass's own Markdown between the summary and the advice; none by default."""
        return ""

    def plot(self, path):
        """Writes the report's figure to `path` as a PNG and returns `path`; `None` (nothing written) without one."""
        return None

    def to_dict(self):
        """`ok` and every field not declared with `repr=False`, as JSON types (`json.dumps` takes the result)."""
        fields = {field.name: to_json(getattr(self, field.name)) for field in dataclasses.fields(self) if field.repr}
        return {"verdict": self.verdict, "ok": self.ok, **fields}


def to_json(value):
    """`value` with numpy, pandas, dataclass and tuple values turned into JSON types; NaN and infinities become `None`.

    A named tuple becomes a dict; a pandas DataFrame a list of row dicts, its index first as a column when it
    names the rows (not the default 0, 1, ...)."""
    if isinstance(value, Report):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_json(getattr(value, field.name)) for field in dataclasses.fields(value) if field.repr}
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return to_json(value._asdict())
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a pandas DataFrame
        if type(value.index).__name__ != "RangeIndex" or value.index.name is not None:
            value = value.reset_index()
        return [to_json(row) for row in value.to_dict(orient="records")]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(item) for item in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        return to_json(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)

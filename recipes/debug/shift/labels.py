"""Label shift (prior shift): have the class frequencies, or a regression target's distribution, moved?

Classes: the chi-square test of homogeneity on the class counts of both sides, with two effect sizes, Cramér's
V (sqrt(chi2 / n), 0 to 1) and the total variation distance (half the summed absolute change of the class
shares: the share of examples that would have to change class for the two mixes to match). Numbers: the
two-sample Kolmogorov-Smirnov test. Either is a shift when significant after Holm's correction with the
report's other tests *and* its PSI is at least `MIN_PSI` (0.1), the rule every feature follows.
"""

import dataclasses
import os

import numpy as np
import pandas as pd

from recipes._markdown import markdown_table
from recipes.debug.shift.actions import LABEL_ACTIONS, TARGET_ACTIONS
from recipes.debug.shift.features import Feature
from recipes.debug.shift.inputs import describe
from recipes.debug.shift.statistics import MIN_PSI, compare
from recipes.report import Report

PROBLEMS = ("classification", "regression")
# The classes named as "moved most": those whose share changed at least this part of the largest change.
_NAMED_SHARE = 0.5
_MAX_NAMED = 3


def as_labels(y, name):
    """`y` as a 1-D array: class ids or names (one-hot rows become ids), or numbers; a `ValueError` otherwise."""
    values = y.to_numpy() if isinstance(y, (pd.Series, pd.Index)) else np.asarray(y)
    if isinstance(y, pd.DataFrame):
        raise ValueError(f"`{name}`'s labels must be one array or Series, not a DataFrame. Received: {describe(y)}")
    one_hot = values.ndim == 2 and values.shape[1] > 1 and values.dtype.kind in "iufb"
    if one_hot and np.isin(values, (0, 1)).all() and (values.sum(axis=1) == 1).all():
        values = values.argmax(axis=1)  # one-hot rows: the class ids
    elif values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(
            f"`{name}`'s labels must be 1-D (class ids, class names or numbers) or one-hot rows. Received: "
            f"{describe(values)}"
        )
    if values.dtype.kind in "OUS":
        bad = next((v for v in values if not isinstance(v, (str, bytes))), None)
        if bad is not None:
            raise ValueError(f"`{name}`'s labels must be all numbers or all strings, none missing. Received: {bad!r}")
        values = values.astype(str)
    elif values.dtype.kind not in "iubf":
        raise ValueError(f"`{name}`'s labels must be class ids, class names or numbers. Received: {describe(values)}")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise ValueError(
            f"`{name}`'s labels must not be missing. Received: {int((~np.isfinite(values)).sum())} NaN "
            "or infinite values"
        )
    return values


def problem_of(y_ref, y_cur):
    """`"classification"` for integer, bool or string labels, `"regression"` for floats; the same on both sides."""
    kinds = ["regression" if y.dtype.kind == "f" else "classification" for y in (y_ref, y_cur)]
    strings = [y.dtype.kind == "U" for y in (y_ref, y_cur)]
    if kinds[0] != kinds[1] or strings[0] != strings[1]:
        raise ValueError(
            "The labels of `reference_data` and `current_data` must be of one kind: class ids, class names or numbers "
            f"on both sides. Received: {y_ref.dtype} and {y_cur.dtype} labels (e.g. {y_ref[0]!r} and {y_cur[0]!r})"
        )
    return kinds[0]


def class_names_of(y_ref, y_cur, class_names):
    """Display name of every class on either side, in class order: `class_names[id]` for integer ids."""
    classes = np.unique(np.concatenate([y_ref, y_cur]))
    if class_names is None:
        return {c: str(c) for c in classes.tolist()}
    if classes.dtype.kind not in "iub":
        raise ValueError(
            "`class_names` names integer class ids; these labels are already names. Received: "
            f"labels such as {classes[0]!r} and class_names={list(class_names)[:5]!r}"
        )
    class_names = [str(n) for n in class_names]
    outside = [int(c) for c in classes if not 0 <= c < len(class_names)]
    if outside:
        raise ValueError(
            f"`class_names` must name every class id: {len(class_names)} names, but the labels hold the "
            f"ids {outside}. Received: class_names={class_names!r}"
        )
    return {c: class_names[c] for c in classes.tolist()}


@dataclasses.dataclass(frozen=True, kw_only=True)
class LabelShift(Report):
    """Whether the labels moved between the two sides: part of a `ShiftReport` (a `recipes.report.Report`).

    Attributes:
        verdict: `"fail"` for a label shift, else `"pass"`.
        summary: The test, the effect size and the classes that moved most (or the target's change).
        advice: What to do: reweight by the class-prior ratio, recalibrate, or relabel.
        problem: `"classification"` or `"regression"`.
        test: `"chi-square"` (classes) or `"KS"` (numbers).
        statistic: The test statistic.
        p_value: Its p-value; `p_holm` adjusted with the report's other tests.
        psi: Population stability index of the class shares (or of the target over reference deciles).
        cramers_v: Cramér's V of the class counts (classification; `None` for numbers).
        total_variation: Half the summed absolute change of the class shares (classification), in [0, 1].
        distance: Numbers: the Wasserstein distance in reference standard deviations; classes: Jensen-Shannon.
        change: What moved, in words.
        finding: `"shift"` or `"no shift"`.
        classes: Classification: `pandas.DataFrame`, one row per class, largest change first: `class`,
            `name`, `reference_count`, `current_count`, `reference_share`, `current_share`, `change` (current
            minus reference share) and `ratio` (current / reference share, each smoothed by +0.5 example);
            `None` for numbers.
        moved: Names of the classes that moved most, largest first.
        class_weight: The ratio per class, keyed as the labels are (class id, or name), for Keras's
            `model.fit(class_weight=...)`; empty for numbers.
    """

    problem: str
    test: str
    statistic: float
    p_value: float
    p_holm: float
    psi: float
    cramers_v: float | None
    total_variation: float | None
    distance: float
    change: str
    finding: str
    classes: pd.DataFrame | None
    moved: list
    class_weight: dict
    _values: tuple = dataclasses.field(repr=False, default=())

    def correct_probabilities(self, probabilities):
        """Predicted class probabilities moved to the current class mix: times the ratio, renormalised per row.

        The prior-shift correction (Saerens, Latinne and Decaestecker, 2002): with each class's inputs
        unchanged, p_current(y | x) is proportional to p_reference(y | x) * p_current(y) / p_reference(y).

        Args:
            probabilities: Array `(N, num_classes)` of a model's probabilities, columns in class-id order.

        Returns:
            The corrected array, each row summing to 1.
        """
        if self.problem != "classification":
            raise ValueError("`correct_probabilities` applies to class probabilities; these labels are numbers")
        probabilities = np.asarray(probabilities, dtype=float)
        keys = list(self.class_weight)
        if any(not isinstance(k, int) for k in keys):
            raise ValueError(
                "`correct_probabilities` needs integer class ids as labels (the probabilities' column "
                f"order); the labels were names: {keys[:5]}"
            )
        width = max(keys) + 1
        if probabilities.ndim != 2 or probabilities.shape[1] < width:
            raise ValueError(
                f"`probabilities` must be an array (N, num_classes) with at least {width} columns. "
                f"Received: {describe(probabilities)}"
            )
        ratio = np.ones(probabilities.shape[1])
        for key, weight in self.class_weight.items():
            ratio[key] = weight
        corrected = probabilities * ratio
        return corrected / np.maximum(corrected.sum(axis=1, keepdims=True), 1e-12)

    def markdown_details(self):
        effect = ""
        if self.cramers_v is not None:
            effect = f", Cramér's V {self.cramers_v:.3f}, total variation {self.total_variation:.3f}"
        line = (
            f"{self.test} statistic {self.statistic:.3f}, p={self.p_value:.2g} (Holm {self.p_holm:.2g}), "
            f"PSI {self.psi:.3f}{effect}: {self.finding}."
        )
        if self.classes is None:
            return line + f" {self.change}."
        table = self.classes.copy()
        for column in ("reference_share", "current_share"):
            table[column] = table[column].map(lambda v: f"{v:.1%}")
        table["change"] = table["change"].map(lambda v: f"{v * 100:+.1f} pts")
        table["ratio"] = table["ratio"].map(lambda v: f"{v:.3g}")
        return "\n\n".join([line, markdown_table(table.drop(columns="class"))])

    def plot(self, path):
        """Writes the class shares (or the target's histograms) of both sides as a PNG; returns `path`."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6.4, 3.2), layout="constrained")
        FigureCanvasAgg(figure)
        draw(figure.add_subplot(1, 1, 1), self)
        figure.suptitle(f"{self.verdict.upper()}: {self.summary}"[:80], fontsize="small")
        path = os.fspath(path)
        figure.savefig(path, dpi=100)
        return path


def draw(axes, label_shift):
    """Reference and current class shares as bars (the target's histograms for numbers) on `axes`."""
    if label_shift.classes is not None:
        shares = label_shift.classes.head(12)
        positions = np.arange(len(shares))
        axes.bar(positions - 0.2, shares.reference_share, 0.4, label="reference", color="tab:blue")
        axes.bar(positions + 0.2, shares.current_share, 0.4, label="current", color="tab:orange")
        axes.set_xticks(positions, [str(n)[:12] for n in shares.name], rotation=45, fontsize="small")
        axes.set_ylabel("share of examples", fontsize="small")
    else:
        reference, current = label_shift._values
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins=30)
        axes.hist(reference, bins=edges, density=True, alpha=0.5, label="reference", color="tab:blue")
        axes.hist(current, bins=edges, density=True, alpha=0.5, label="current", color="tab:orange")
    axes.set_title(f"labels: {label_shift.finding} (PSI {label_shift.psi:.2f})", fontsize="small")
    axes.legend(fontsize="x-small")


def compare_labels(y_ref, y_cur, problem, names):
    """The label test before Holm's correction: a dict of `LabelShift`'s fields (no verdict, p_holm or finding yet)."""
    if problem == "regression":
        row = compare(Feature("labels", "numeric", y_ref.astype(float), y_cur.astype(float), "target"))
        return dict(
            problem=problem,
            test=row["test"],
            statistic=row["statistic"],
            p_value=row["p_value"],
            psi=row["psi"],
            cramers_v=None,
            total_variation=None,
            distance=row["distance"],
            change=f"target {row['change']}",
            classes=None,
            moved=[],
            class_weight={},
            _values=(y_ref.astype(float), y_cur.astype(float)),
        )
    named_ref = np.array([names[c] for c in y_ref.tolist()], dtype=object)
    named_cur = np.array([names[c] for c in y_cur.tolist()], dtype=object)
    row = compare(Feature("labels", "categorical", named_ref, named_cur, "target"))
    keys = list(names)
    ref_counts = np.array([np.sum(y_ref == k) for k in keys], dtype=float)
    cur_counts = np.array([np.sum(y_cur == k) for k in keys], dtype=float)
    ref_share, cur_share = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    smoothed = ((cur_counts + 0.5) / (cur_counts.sum() + 0.5 * len(keys))) / (
        (ref_counts + 0.5) / (ref_counts.sum() + 0.5 * len(keys))
    )
    n = ref_counts.sum() + cur_counts.sum()
    cramers_v = float(np.sqrt(row["statistic"] / n)) if len(keys) > 1 else 0.0
    classes = pd.DataFrame(
        {
            "class": [k if isinstance(k, str) else int(k) for k in keys],
            "name": [names[k] for k in keys],
            "reference_count": ref_counts.astype(int),
            "current_count": cur_counts.astype(int),
            "reference_share": ref_share,
            "current_share": cur_share,
            "change": cur_share - ref_share,
            "ratio": smoothed,
        }
    )
    classes = classes.iloc[np.argsort(-np.abs(classes.change.to_numpy()), kind="stable")].reset_index(drop=True)
    return dict(
        problem=problem,
        test=row["test"],
        statistic=row["statistic"],
        p_value=row["p_value"],
        psi=row["psi"],
        cramers_v=cramers_v,
        total_variation=float(0.5 * np.abs(cur_share - ref_share).sum()),
        distance=row["distance"],
        change=_moved_words(classes),
        classes=classes,
        moved=_moved(classes),
        class_weight={(k if isinstance(k, str) else int(k)): float(w) for k, w in zip(keys, smoothed)},
    )


def _moved(classes):
    """The classes whose share changed at least half as much as the largest change (at most `_MAX_NAMED`)."""
    change = np.abs(classes.change.to_numpy())  # sorted, largest first
    if not len(change) or change[0] == 0:
        return []
    return classes.name.tolist()[: min(int(np.sum(change >= _NAMED_SHARE * change[0])), _MAX_NAMED)]


def _moved_words(classes):
    rows = classes.set_index("name").loc[_moved(classes) or classes.name.tolist()[:1]]
    return ", ".join(f"'{name}' {row.reference_share:.1%} -> {row.current_share:.1%}" for name, row in rows.iterrows())


def label_shift(fields, p_holm, alpha):
    """The `LabelShift` of `compare_labels`'s fields, once the Holm-adjusted p-value is known."""
    shifted = p_holm < alpha and fields["psi"] >= MIN_PSI
    effect = (
        f"Cramér's V {fields['cramers_v']:.2f}, total variation {fields['total_variation']:.2f}"
        if fields["cramers_v"] is not None
        else f"Wasserstein {fields['distance']:.2f} sd"
    )
    test = f"{fields['test']} p={fields['p_value']:.2g}, PSI {fields['psi']:.2f}, {effect}"
    if shifted:
        what = "the class frequencies moved" if fields["problem"] == "classification" else "the target moved"
        summary = f"label shift: {fields['change']} ({test})"
        actions = LABEL_ACTIONS if fields["problem"] == "classification" else TARGET_ACTIONS
        advice = [f"{what} ({fields['change']}): {actions[0]}", *actions[1:]]
    elif fields["classes"] is not None:
        top = fields["classes"].iloc[0]
        largest = f"'{top['name']}' {top.reference_share:.1%} -> {top.current_share:.1%}"
        summary = f"no label shift: the class frequencies match (largest change {largest}; {test})"
        advice = []
    else:
        summary = f"no label shift: {fields['change']} ({test})"
        advice = []
    return LabelShift(
        verdict="fail" if shifted else "pass",
        summary=summary,
        advice=advice,
        p_holm=p_holm,
        finding="shift" if shifted else "no shift",
        **fields,
    )

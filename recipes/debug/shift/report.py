"""`ShiftReport`: what `shift_report` returns."""

import dataclasses
import os

import numpy as np
import pandas as pd

from recipes._markdown import markdown_table
from recipes.debug.shift.actions import DOMAIN_ACTION
from recipes.debug.shift.concept import ConceptShift
from recipes.debug.shift.labels import LabelShift
from recipes.debug.shift.labels import draw as draw_labels
from recipes.debug.shift.statistics import MIN_PSI
from recipes.report import Report, to_json


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShiftReport(Report):
    """What `shift_report` returns (a `recipes.report.Report`).

    Attributes:
        verdict: `"fail"` when the data shifted (a feature, the domain classifier, the labels or the
            concept), `"pass"` when it did not.
        summary: What shifted first. Without labels: how many features shifted, under which thresholds, and
            what the domain classifier saw; with labels, the label and concept findings, then `inputs: ` and
            that.
        advice: What to do about the label shift and the concept shift found, then one item per shifted
            feature (what moved, the test, what to do), then the domain classifier's when it tells the sides
            apart.
        modality: `"table"`, `"text"`, `"image"` or `"audio"`.
        features: `pandas.DataFrame`, one row per feature, shifted ones first: `feature`, `type` (`"numeric"`
            or `"categorical"`), `test` (`"KS"` or `"chi-square"`), `statistic`, `p_value`, `p_holm` (Holm
            adjusted over all tests, the domain classifier's included), `psi`, `distance` (numbers: the
            Wasserstein distance in reference standard deviations; categories: the Jensen-Shannon distance,
            base 2, in [0, 1]), `change` (what moved, in words), `finding` (`"shift"` or `"no shift"`) and
            `action`.
        domain_auc: ROC AUC of the domain classifier (current vs reference) on held-out folds, averaged
            over the folds; 0.5 is chance.
        domain_p_value: p-value of that AUC against 0.5: each fold's one-sided Mann-Whitney U test,
            Bonferroni over the folds.
        domain_finding: `"shift"` or `"no shift"`.
        domain_features: `(feature, weight)` pairs the domain classifier leans on most, largest first
            (a positive weight: higher in the current data). Empty when the classifier exposes none.
        examples: `pandas.DataFrame` of random examples, `side` (`"reference"` or `"current"`) and `index`
            (position in the input) first, then the row (table), the `text`, or the features of the
            example and the `example` itself (images and audio; left out of `to_dict`).
        new_tokens: Text: the most frequent tokens of the current data never seen in the reference, with
            their counts; else empty.
        alpha: Family-wise error rate used.
        num_reference: Examples in the reference data.
        num_current: Examples in the current data.
        split_column: The column the two sides were split by, or `None`.
        column_types: Table: the type each column was compared as (`"number"`, `"category"`, `"text"`,
            `"date"` or `"date (FORMAT)"`), as `shift_report`'s `column_types` gave it or as guessed; `{}` else.
        expected: `pandas.DataFrame` like `features`, of the split column's features (its finding "expected
            to differ"): reported apart, out of the verdict, Holm's correction and the domain classifier.
        label_shift: A `LabelShift` report (class frequencies, or a regression target) when both sides
            came with labels, else `None`.
        concept_shift: A `ConceptShift` report (do the same inputs get other labels?) when both sides came
            with labels, else `None`.
    """

    modality: str
    features: pd.DataFrame
    domain_auc: float
    domain_p_value: float
    domain_finding: str
    domain_features: list
    examples: pd.DataFrame
    new_tokens: list
    alpha: float
    num_reference: int
    num_current: int
    split_column: str | None = None
    column_types: dict = dataclasses.field(default_factory=dict)
    expected: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    label_shift: LabelShift | None = None
    concept_shift: ConceptShift | None = None
    _values: dict = dataclasses.field(repr=False, default_factory=dict)

    @property
    def shifted(self):
        """Names of the shifted features, largest PSI first."""
        return self.features.loc[self.features.finding == "shift", "feature"].tolist()

    @property
    def inputs_shifted(self):
        """Whether a feature or the domain classifier says the inputs shifted."""
        return bool(self.shifted) or self.domain_finding == "shift"

    def input_report(self):
        """This report narrowed to the inputs: the verdict, summary and advice of the features and the domain
        classifier alone, without `label_shift` and `concept_shift`."""
        sizes = dict(num_reference=self.num_reference, num_current=self.num_current)
        return dataclasses.replace(
            self,
            verdict="fail" if self.inputs_shifted else "pass",
            summary=summary(
                self.features,
                self.domain_auc,
                self.domain_p_value,
                self.domain_finding,
                self.alpha,
                self.modality,
                expected=self.expected,
                **sizes,
            ),
            advice=advice(self.features, self.domain_finding, self.domain_features),
            label_shift=None,
            concept_shift=None,
        )

    def to_dict(self):
        """As `Report.to_dict`, without the raw images and waveforms of `examples`."""
        data = super().to_dict()
        data["examples"] = to_json(self.examples.drop(columns=["example"], errors="ignore"))
        return data

    def markdown_details(self):
        """The feature table, the domain classifier, new tokens, the unshifted features and the examples."""
        table = self.features.copy()
        for column in ("statistic", "psi", "distance"):
            table[column] = table[column].map(lambda v: f"{v:.3f}")
        for column in ("p_value", "p_holm"):
            table[column] = table[column].map(lambda v: f"{v:.2g}")
        leans = ", ".join(f"`{name}` ({weight:+.2f})" for name, weight in self.domain_features[:5]) or "n/a"
        parts = [
            "### Features",
            markdown_table(table),
            "### Domain classifier",
            f"AUC {self.domain_auc:.3f}, p={self.domain_p_value:.2g}: {self.domain_finding}. Leans on: {leans}.",
        ]
        if self.new_tokens:
            parts.append("New tokens: " + ", ".join(f"`{t}` ({c})" for t, c in self.new_tokens))
        steady = self.features.loc[self.features.finding != "shift", "feature"].tolist()
        if steady:
            parts.append("No shift in: " + ", ".join(steady) + ".")
        if len(self.expected):
            expected = self.expected[["feature", "test", "statistic", "psi", "change"]].copy()
            expected["statistic"] = expected["statistic"].map(lambda v: f"{v:.3f}")
            expected["psi"] = expected["psi"].map(lambda v: f"{v:.3f}")
            parts += [
                f"### Expected to differ: the split column '{self.split_column}'",
                "Reported apart: out of the verdict and the domain classifier.",
                markdown_table(expected),
            ]
        for title, part in (("Labels", self.label_shift), ("Concept", self.concept_shift)):
            if part is not None:
                parts += [f"### {title}", f"**{part.verdict.upper()}**: {part.summary}", part.markdown_details()]
        examples = self.examples.drop(columns=["example"], errors="ignore")
        parts += ["### Random examples", markdown_table(examples)]
        return "\n\n".join(p for p in parts if p)

    def plot(self, path, max_features=4):
        """Writes one PNG: reference vs current histograms of the most shifted features.

        The class shares (or the target) of both sides first when labels were given, then the features,
        shifted first, then the largest PSI. For images, a row of the sampled images of each
        side follows. Uses Matplotlib's Agg canvas directly, so it needs no display and leaves pyplot alone.

        Args:
            path: File to write, e.g. `"shift.png"`.
            max_features: Int >= 1, defaults to 4. Features drawn.

        Returns:
            `path`, as a string.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        names = self.features.feature.tolist()[:max_features]
        panels = len(names) + (self.label_shift is not None)
        thumbnails = self.modality == "image" and "example" in self.examples
        figure = Figure(figsize=(3.2 * max(panels, 1), 3.0 * (2 if thumbnails else 1)), layout="constrained")
        FigureCanvasAgg(figure)
        rows = 2 if thumbnails else 1
        if self.label_shift is not None:
            draw_labels(figure.add_subplot(rows, panels, 1), self.label_shift)
        for i, name in enumerate(names):
            axes = figure.add_subplot(rows, max(panels, 1), i + 1 + (self.label_shift is not None))
            row = self.features.set_index("feature").loc[name]
            reference, current = self._values[name]
            if row.type == "numeric":
                both = np.concatenate([reference, current])
                edges = np.histogram_bin_edges(both[np.isfinite(both)], bins=30) if both.size else 10
                axes.hist(reference, bins=edges, density=True, alpha=0.5, label="reference", color="tab:blue")
                axes.hist(current, bins=edges, density=True, alpha=0.5, label="current", color="tab:orange")
            else:
                ref_share = pd.Series(reference).value_counts(normalize=True)
                cur_share = pd.Series(current).value_counts(normalize=True)
                shares = pd.DataFrame({"reference": ref_share, "current": cur_share}).fillna(0.0)
                shares = shares.loc[shares.max(axis=1).sort_values(ascending=False).index[:10]]
                positions = np.arange(len(shares))
                axes.bar(positions - 0.2, shares.reference, 0.4, label="reference", color="tab:blue")
                axes.bar(positions + 0.2, shares.current, 0.4, label="current", color="tab:orange")
                axes.set_xticks(positions, [str(c)[:12] for c in shares.index], rotation=45, fontsize="small")
            axes.set_title(f"{name}: {row.finding} (PSI {row.psi:.2f})", fontsize="small")
            axes.legend(fontsize="x-small")
        if thumbnails:
            examples = list(self.examples[["side", "example"]].itertuples(index=False))
            for i, (side, image) in enumerate(examples):
                axes = figure.add_subplot(rows, len(examples), len(examples) + i + 1)
                image = np.asarray(image, dtype=np.float64)
                axes.imshow(
                    image if image.ndim == 2 or image.shape[-1] in (3, 4) else image[..., 0],
                    cmap="gray",
                    vmin=0,
                    vmax=255 if image.max() > 1.0 else 1.0,
                )
                axes.set_title(side, fontsize="x-small")
                axes.axis("off")
        figure.suptitle(f"{self.verdict.upper()}: {self.summary}"[:110], fontsize="small")
        path = os.fspath(path)
        figure.savefig(path, dpi=100)
        return path


def summary(
    features, domain_auc, domain_p_value, domain_finding, alpha, modality, num_reference, num_current, expected=None
):
    """The inputs' one line: how many features shifted, what the domain classifier saw, what was expected to differ."""
    tests = f"Holm-corrected alpha {alpha:g}, PSI >= {MIN_PSI:g}"
    domain = f"domain classifier AUC {domain_auc:.3f} (p={domain_p_value:.2g})"
    sizes = f"{num_reference} reference vs {num_current} current {modality} examples"
    if expected is not None and len(expected):
        changes = "; ".join(f"{row.feature}: {row.change}" for row in expected.itertuples())
        sizes += f"; expected to differ, the split column: {changes}"
    shifted = int((features.finding == "shift").sum())
    if not shifted and domain_finding == "no shift":
        largest = features.iloc[features.psi.argmax()] if len(features) else None
        most = f"; largest PSI {largest.psi:.3f} ('{largest.feature}')" if largest is not None else ""
        return f"no shift: no feature differs ({tests}{most}) and the {domain} cannot tell the sides apart ({sizes})"
    tell = "tells the sides apart" if domain_finding == "shift" else "cannot tell the sides apart"
    return f"{shifted} of {len(features)} features shifted ({tests}); the {domain} {tell} ({sizes})"


def combined(input_summary, input_advice, inputs_shifted, label_shift, concept_shift):
    """The verdict, summary and advice of the whole report: what shifted first, then the rest."""
    if label_shift is None:
        return dict(verdict="fail" if inputs_shifted else "pass", summary=input_summary, advice=input_advice)
    parts = [(label_shift.verdict == "fail", label_shift.summary, label_shift.advice)]
    if concept_shift is not None:
        parts.append((concept_shift.verdict in ("fail", "warn"), concept_shift.summary, concept_shift.advice))
    parts.append((inputs_shifted, f"inputs: {input_summary}", input_advice))
    found = [part for part in parts if part[0]] + [part for part in parts if not part[0]]
    return dict(
        verdict="fail" if any(part[0] for part in parts) else "pass",
        summary="; ".join(text for _, text, _ in found),
        advice=[item for shifted, _, items in found if shifted for item in items],
    )


def advice(features, domain_finding, domain_features):
    """What to do about each shifted feature, then about the sides the domain classifier tells apart."""
    items = [
        f"{row.feature}: {row.change} ({row.test} p={row.p_value:.2g}, PSI {row.psi:.2f}); do: {row.action}"
        for row in features[features.finding == "shift"].itertuples()
    ]
    if domain_finding == "shift":
        leans = ", ".join(name for name, _ in domain_features[:5])
        items.append(f"domain classifier (leans on: {leans}): {DOMAIN_ACTION}")
    return items

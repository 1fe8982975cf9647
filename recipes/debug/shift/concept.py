"""Concept shift: the same inputs mapped to other labels on the current side.

A small model learns the labels from half of the reference rows, on the features the report already computed
(`domain_classifier.Design`: the standardised features, with TF-IDF words for text, an 8x8 thumbnail for
images, band energies for audio): scikit-learn's `LogisticRegression` for classes, `Ridge` for numbers. It then
scores the other half of the reference rows (held out) and the current rows, one loss per row: the
cross-entropy (probabilities clipped at 0.001) for classes, the absolute error for numbers.

Had only the inputs or the class mix moved, a current row would score like a held-out reference row of the
same class. So the test compares the two within each class (within each reference decile of the target for
numbers), weighted by the current rows' classes: a stratified two-sample z-test, one-sided, on the mean loss
(label shift alone changes the weights, not the per-class losses, and is not mistaken for a concept shift).
A concept shift is called when that test is significant after Holm's correction with the report's other
tests, the rise is large: at least `MIN_SKILL_LOST` (10%) of the model's skill (how far its held-out reference
loss is below the loss of predicting the reference class frequencies, or mean, alone) is lost on the current
rows; and the inputs did not shift: when they did, a worse score may come from them, and the finding is
"unclear". (A relative rise of the loss would not do: a weak model's probabilities stay near the class
frequencies, so its loss hardly moves even when every current label is flipped.)

Where the labels are classes, the most telling pairs are shown: current rows whose nearest reference row (on
the same standardised features) carries another label, the nearest first, among those closer than the
median distance between a reference row and its own nearest reference row.
"""

import dataclasses
import os

import numpy as np
import pandas as pd

from recipes._markdown import markdown_table
from recipes.debug.shift.actions import CONCEPT_ACTIONS
from recipes.debug.shift.domain_classifier import subsample
from recipes.report import Report, to_json

# The current rows must lose at least this share of the model's skill (baseline loss - reference loss),
# besides the rise being significant.
MIN_SKILL_LOST = 0.1
# Fewer held-out reference or current rows than this test nothing.
MIN_ROWS = 10
_MIN_PROBABILITY = 1e-3  # cross-entropy of a row at most -ln(0.001) = 6.9: a few confident misses cannot dominate
_TARGET_BINS = 10


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConceptShift(Report):
    """Whether the same inputs now get other labels: part of a `ShiftReport` (a `recipes.report.Report`).

    Attributes:
        verdict: `"fail"` for a concept shift, `"warn"` when the model scores worse on the current rows but
            the inputs shifted too ("unclear"), `"info"` when it could not be tested, else `"pass"`.
        summary: The model's loss on held-out reference rows and on current rows, the test, the classes
            that got worse most.
        advice: What to do (relabel, retrain on recent labelled data), and where the telling pairs are.
        model: The model that learned the reference labels, in words.
        metric: `"cross-entropy"` or `"absolute error"`: the per-row loss.
        reference_loss: Mean loss on held-out reference rows, each class weighted to its share of the
            current rows.
        current_loss: Mean loss on the current rows (those of classes with held-out reference rows).
        reference_accuracy, current_accuracy: The same for accuracy (classes; `None` for numbers).
        baseline_loss: Mean loss of predicting the reference class frequencies (the reference mean for
            numbers) on the held-out reference rows, weighted alike: what a model that learned nothing scores.
        skill_lost: `(current_loss - reference_loss) / (baseline_loss - reference_loss)`: the share of what
            the model learned from the reference that does not hold on the current rows (1: none of it).
        statistic: The stratified z statistic.
        p_value: Its one-sided p-value; `p_holm` adjusted with the report's other tests.
        finding: `"shift"`, `"no shift"`, `"unclear"` (worse, but the inputs shifted) or `"not tested"`.
        classes: `pandas.DataFrame`, one row per class (per target decile for numbers), the largest loss
            increase first: `name`, `reference_rows`, `current_rows`, `reference_loss`, `current_loss` (and
            the accuracies for classes).
        worse: Names of the classes whose rows got worse most.
        pairs: `pandas.DataFrame` of near-identical inputs with different labels across the sides, the
            nearest first: `reference_row` and `current_row` (positions in the inputs), `distance`,
            `reference_label`, `current_label`, `reference_example`, `current_example` (the row as a dict,
            the text, or the image or waveform, which `to_dict` leaves out). Empty for numbers.
        num_fit: Reference rows the model learned from; `num_held_out` the reference rows it was tested on;
            `num_current` the current rows tested.
    """

    model: str
    metric: str
    reference_loss: float
    current_loss: float
    reference_accuracy: float | None
    current_accuracy: float | None
    baseline_loss: float
    skill_lost: float
    statistic: float
    p_value: float
    p_holm: float
    finding: str
    classes: pd.DataFrame
    worse: list
    pairs: pd.DataFrame
    num_fit: int
    num_held_out: int
    num_current: int

    def to_dict(self):
        """As `Report.to_dict`, without images and waveforms among the pairs' examples."""
        data = super().to_dict()
        arrays = [
            c
            for c in ("reference_example", "current_example")
            if c in self.pairs and any(isinstance(v, np.ndarray) for v in self.pairs[c])
        ]
        data["pairs"] = to_json(self.pairs.drop(columns=arrays))
        return data

    def markdown_details(self):
        if self.finding == "not tested":
            return ""
        accuracy = (
            f"; accuracy {self.reference_accuracy:.1%} -> {self.current_accuracy:.1%}"
            if self.reference_accuracy is not None
            else ""
        )
        parts = [
            f"Model: {self.model}, trained on {self.num_fit} reference rows; tested on {self.num_held_out} held-out "
            f"reference rows and {self.num_current} current rows. Mean {self.metric} {self.reference_loss:.3f} -> "
            f"{self.current_loss:.3f}{accuracy}; the class frequencies alone: {self.baseline_loss:.3f}, so "
            f"{self.skill_lost:.0%} of the model's skill is lost; stratified z={self.statistic:.2f}, "
            f"p={self.p_value:.2g} (Holm {self.p_holm:.2g}): {self.finding}.",
        ]
        table = self.classes.head(10).copy()
        for column in [c for c in table.columns if c.endswith("_loss")]:
            table[column] = table[column].map(lambda v: f"{v:.3f}")
        for column in [c for c in table.columns if c.endswith("_accuracy")]:
            table[column] = table[column].map(lambda v: f"{v:.1%}")
        parts.append(markdown_table(table))
        if len(self.pairs):
            pairs = self.pairs.copy()
            for column in ("reference_example", "current_example"):
                pairs[column] = pairs[column].map(_shown)
            pairs["distance"] = pairs["distance"].map(lambda v: f"{v:.3f}")
            parts += ["Near-identical inputs with different labels:", markdown_table(pairs)]
        return "\n\n".join(parts)

    def plot(self, path):
        """Writes the held-out reference and current loss per class (the worst 12) as a PNG; returns `path`.

        `None` (nothing written) when the test did not run."""
        if self.finding == "not tested":
            return None
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6.4, 3.2), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot(1, 1, 1)
        rows = self.classes.head(12)
        positions = np.arange(len(rows))
        axes.bar(positions - 0.2, rows.reference_loss, 0.4, label="held-out reference", color="tab:blue")
        axes.bar(positions + 0.2, rows.current_loss, 0.4, label="current", color="tab:orange")
        axes.set_xticks(positions, [str(n)[:12] for n in rows.name], rotation=45, fontsize="small")
        axes.set_ylabel(f"mean {self.metric}", fontsize="small")
        axes.set_title(f"concept: {self.finding} (p={self.p_value:.2g})", fontsize="small")
        axes.legend(fontsize="x-small")
        figure.suptitle(f"{self.verdict.upper()}: {self.summary}"[:80], fontsize="small")
        path = os.fspath(path)
        figure.savefig(path, dpi=100)
        return path


def _shown(value):
    if isinstance(value, dict):
        return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items())
    if isinstance(value, np.ndarray):
        return f"array {value.shape}"
    return str(value)[:200].replace("\n", " ")


def compare_concept(design, y_ref, y_cur, problem, names, seed, num_examples, example):
    """The concept test before Holm's correction: a dict of `ConceptShift`'s fields (no verdict, p_holm or
    finding yet), or `None` when there are too few rows to test.

    Args:
        design: The `Design` of both sides.
        y_ref, y_cur: The labels (class ids or names, or numbers).
        problem: `"classification"` or `"regression"`.
        names: Class to display name (classification).
        seed: Int: the halves of the reference and the subsamples.
        num_examples: Pairs shown at most.
        example: `example(side, position)`: the raw example to show.
    """
    from threadpoolctl import threadpool_limits

    # One thread (threadpoolctl comes with scikit-learn): on a busy machine the solver's OpenMP and BLAS threads
    # wait on each other, and the same fit took 12 times longer with two threads than with one.
    with threadpool_limits(1):
        return _compare_concept(design, y_ref, y_cur, problem, names, seed, num_examples, example)


def _compare_concept(design, y_ref, y_cur, problem, names, seed, num_examples, example):
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng([seed, 1])
    order = rng.permutation(len(y_ref))
    fit, held_out = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2 :])
    fit, held_out = fit[subsample(rng, len(fit))], held_out[subsample(rng, len(held_out))]
    current = subsample(rng, len(y_cur))
    if len(held_out) < MIN_ROWS or len(current) < MIN_ROWS:
        return None
    scaler = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
    scaler.fit(design.dense_reference[fit])
    x_fit, x_held, x_cur = (
        design.rows(side, rows, scaler.transform)
        for side, rows in (("reference", fit), ("reference", held_out), ("current", current))
    )
    if problem == "classification":
        from sklearn.linear_model import LogisticRegression

        if len(np.unique(y_ref[fit])) < 2:
            return None
        model = LogisticRegression(max_iter=300).fit(x_fit, y_ref[fit])
        losses, right = [], []
        for x, y in ((x_held, y_ref[held_out]), (x_cur, y_cur[current])):
            probabilities = model.predict_proba(x)
            column = {c: i for i, c in enumerate(model.classes_.tolist())}
            index = np.array([column.get(v, -1) for v in y.tolist()])
            p_true = np.where(index >= 0, probabilities[np.arange(len(y)), np.maximum(index, 0)], 0.0)
            losses.append(-np.log(np.clip(p_true, _MIN_PROBABILITY, 1.0)))
            right.append((model.classes_[probabilities.argmax(axis=1)] == y).astype(float))
        prior = pd.Series(y_ref[fit]).value_counts(normalize=True)
        baseline = -np.log(np.clip(prior.reindex(y_ref[held_out]).fillna(0.0).to_numpy(), _MIN_PROBABILITY, 1.0))
        strata = (y_ref[held_out], y_cur[current])
        described = "scikit-learn LogisticRegression (L2, C=1)"
    else:
        from sklearn.linear_model import Ridge

        model = Ridge(alpha=1.0).fit(x_fit, y_ref[fit])
        losses = [np.abs(model.predict(x) - y) for x, y in ((x_held, y_ref[held_out]), (x_cur, y_cur[current]))]
        baseline = np.abs(y_ref[held_out] - y_ref[fit].mean())
        right = None
        edges = np.unique(np.quantile(y_ref[fit], np.linspace(0, 1, _TARGET_BINS + 1)[1:-1]))
        bins = [np.searchsorted(edges, y, side="right") for y in (y_ref[held_out], y_cur[current])]
        bounds = (
            [f"<= {edges[0]:.4g}"] + [f"{a:.4g}..{b:.4g}" for a, b in zip(edges, edges[1:])] + [f"> {edges[-1]:.4g}"]
            if len(edges)
            else ["all"]
        )
        names = dict(enumerate(bounds))
        strata = tuple(bins)
        described = "scikit-learn Ridge (alpha=1)"
    test = _stratified_test(losses, baseline, right, strata, names)
    if test is None:
        return None
    pairs = None
    if problem == "classification":
        pairs = _pairs(design, scaler, y_ref, y_cur, names, rng, num_examples, example)
    return dict(
        model=f"{described} on the report's {len(design.names)} input features (standardised)",
        metric="cross-entropy" if problem == "classification" else "absolute error",
        num_fit=len(fit),
        num_held_out=len(held_out),
        num_current=len(current),
        pairs=pairs
        if pairs is not None
        else pd.DataFrame(
            columns=[
                "reference_row",
                "current_row",
                "distance",
                "reference_label",
                "current_label",
                "reference_example",
                "current_example",
            ]
        ),
        **test,
    )


def _stratified_test(losses, baseline, right, strata, names):
    """Current vs held-out reference mean loss within each stratum, weighted by the current rows: a z-test."""
    held_loss, cur_loss = losses
    held_stratum, cur_stratum = strata
    rows, difference, variance = [], 0.0, 0.0
    kept = [s for s in np.unique(cur_stratum).tolist() if np.any(held_stratum == s)]
    total = sum(int(np.sum(cur_stratum == s)) for s in kept)
    if not total:
        return None
    reference_loss = current_loss = baseline_loss = 0.0
    reference_right = current_right = 0.0
    for s in kept:
        held, cur = held_stratum == s, cur_stratum == s
        n_held, n_cur = int(held.sum()), int(cur.sum())
        weight = n_cur / total
        pooled = np.concatenate([held_loss[held], cur_loss[cur]])
        spread = pooled.var(ddof=1) if len(pooled) > 1 else 0.0
        difference += weight * (cur_loss[cur].mean() - held_loss[held].mean())
        variance += weight**2 * spread * (1 / n_cur + 1 / n_held)
        reference_loss += weight * held_loss[held].mean()
        baseline_loss += weight * baseline[held].mean()
        current_loss += weight * cur_loss[cur].mean()
        row = dict(
            name=names.get(s, str(s)),
            reference_rows=n_held,
            current_rows=n_cur,
            reference_loss=float(held_loss[held].mean()),
            current_loss=float(cur_loss[cur].mean()),
        )
        if right is not None:
            reference_right += weight * right[0][held].mean()
            current_right += weight * right[1][cur].mean()
            row.update(reference_accuracy=float(right[0][held].mean()), current_accuracy=float(right[1][cur].mean()))
        rows.append(row)
    from scipy import stats

    if variance > 0:
        statistic = difference / np.sqrt(variance)
    else:
        statistic = np.inf if difference > 0 else 0.0
    classes = pd.DataFrame(rows)
    rise = (classes.current_loss - classes.reference_loss).to_numpy()
    classes = classes.iloc[np.argsort(-rise, kind="stable")].reset_index(drop=True)
    worse = [row.name for row in classes.itertuples() if row.current_loss > row.reference_loss][:3]
    return dict(
        reference_loss=float(reference_loss),
        current_loss=float(current_loss),
        reference_accuracy=float(reference_right) if right is not None else None,
        current_accuracy=float(current_right) if right is not None else None,
        baseline_loss=float(baseline_loss),
        skill_lost=float((current_loss - reference_loss) / (baseline_loss - reference_loss))
        if baseline_loss > reference_loss
        else np.nan,
        statistic=float(statistic),
        p_value=float(stats.norm.sf(statistic)),
        classes=classes,
        worse=worse,
    )


def _pairs(design, scaler, y_ref, y_cur, names, rng, num_examples, example):
    """Current rows whose nearest reference row is near-identical and labelled otherwise, the nearest first."""
    if not num_examples:
        return None
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import normalize

    reference, current = subsample(rng, len(y_ref)), subsample(rng, len(y_cur))
    x_ref = design.rows("reference", reference, scaler.transform)
    x_cur = design.rows("current", current, scaler.transform)
    if design.sparse_reference is not None:  # texts: the cosine distance, as Euclidean on unit rows
        x_ref, x_cur = normalize(x_ref), normalize(x_cur)
    index = NearestNeighbors(n_neighbors=2).fit(x_ref)
    typical = float(np.median(index.kneighbors(x_ref)[0][:, 1]))  # each reference row's nearest other row
    distance, nearest = index.kneighbors(x_cur, n_neighbors=1)
    distance, nearest = distance[:, 0], reference[nearest[:, 0]]
    differ = (y_ref[nearest] != y_cur[current]) & (distance <= typical)
    order = np.flatnonzero(differ)[np.argsort(distance[differ], kind="stable")][:num_examples]
    return pd.DataFrame(
        {
            "reference_row": nearest[order].astype(int),
            "current_row": current[order].astype(int),
            "distance": distance[order],
            "reference_label": [names[y_ref[i].item()] for i in nearest[order]],
            "current_label": [names[y_cur[i].item()] for i in current[order]],
            "reference_example": [example("reference", int(i)) for i in nearest[order]],
            "current_example": [example("current", int(i)) for i in current[order]],
        }
    )


def concept_shift(fields, p_holm, alpha, inputs_shifted):
    """The `ConceptShift` of `compare_concept`'s fields (or of too few rows), once the Holm-adjusted p is known."""
    if fields is None:
        return None
    if not fields["skill_lost"] == fields["skill_lost"]:  # NaN: the model learned nothing to lose
        return not_tested(
            f"the model learned nothing from the reference inputs ({fields['metric']} {fields['reference_loss']:.3f} "
            f"on held-out reference rows, {fields['baseline_loss']:.3f} for the class frequencies alone)"
        )
    worse = fields["skill_lost"] >= MIN_SKILL_LOST and p_holm < alpha
    finding = ("unclear" if inputs_shifted else "shift") if worse else "no shift"
    accuracy = (
        f"; accuracy {fields['reference_accuracy']:.1%} -> {fields['current_accuracy']:.1%}"
        if fields["reference_accuracy"] is not None
        else ""
    )
    scores = (
        f"{fields['metric']} {fields['reference_loss']:.3f} on held-out reference rows -> "
        f"{fields['current_loss']:.3f} on current rows, {fields['skill_lost']:.0%} of its skill lost{accuracy}; "
        f"z={fields['statistic']:.1f}, p={fields['p_value']:.2g}"
    )
    worst = ", ".join(f"'{name}'" for name in fields["worse"])
    if finding == "shift":
        pairs = f"; {len(fields['pairs'])} near-identical pairs with different labels" if len(fields["pairs"]) else ""
        summary = f"concept shift: the same inputs get other labels ({scores}; worst: {worst}{pairs})"
        advice = [f"the labels of {worst} rows no longer follow the reference's rule: {CONCEPT_ACTIONS[0]}"]
        advice += list(CONCEPT_ACTIONS[1:]) if len(fields["pairs"]) else []
        verdict = "fail"
    elif finding == "unclear":
        summary = (
            f"the reference model scores worse on the current rows ({scores}), but the inputs shifted "
            "too, so a concept shift cannot be told apart from the input shift"
        )
        advice = ["deal with the input shift first (see its advice), then compare the labels again"]
        verdict = "warn"
    else:
        summary = f"no concept shift: the reference model scores alike on both sides ({scores})"
        advice, verdict = [], "pass"
    return ConceptShift(verdict=verdict, summary=summary, advice=advice, p_holm=p_holm, finding=finding, **fields)


def not_tested(reason):
    """A `ConceptShift` saying why the test did not run."""
    return ConceptShift(
        verdict="info",
        summary=f"concept shift not tested: {reason}",
        model="-",
        metric="-",
        reference_loss=np.nan,
        current_loss=np.nan,
        reference_accuracy=None,
        current_accuracy=None,
        baseline_loss=np.nan,
        skill_lost=np.nan,
        statistic=np.nan,
        p_value=np.nan,
        p_holm=np.nan,
        finding="not tested",
        classes=pd.DataFrame(),
        worse=[],
        pairs=pd.DataFrame(),
        num_fit=0,
        num_held_out=0,
        num_current=0,
    )

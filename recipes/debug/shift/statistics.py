"""The test of each feature (Kolmogorov-Smirnov or chi-square), its effect size (PSI, a distance), the change
in words, and Holm's correction over all the tests."""

import numpy as np
import pandas as pd

from recipes.debug.shift.actions import ACTIONS

# Effect size: a population stability index of 0.1 is the usual line for "a moderate shift, investigate"
# (below it, "no significant change"; above 0.25, "a major shift"). PSI over `PSI_BINS` reference deciles
# for numbers, over the categories for categories.
MIN_PSI = 0.1
PSI_BINS = 10
# Categories seen fewer than this many times on both sides together are pooled, as the chi-square test
# is unreliable for tiny expected counts.
MIN_CATEGORY_COUNT = 5


def psi(reference_counts, current_counts):
    """Population stability index of two histograms over the same bins."""
    # +0.5 per bin (Jeffreys smoothing) keeps empty bins finite
    p = (reference_counts + 0.5) / (reference_counts.sum() + 0.5 * len(reference_counts))
    q = (current_counts + 0.5) / (current_counts.sum() + 0.5 * len(current_counts))
    return float(np.sum((q - p) * np.log(q / p)))


def compare(feature):
    """One row of the features table: the test, its statistic and p-value, the PSI, a distance, the change."""
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    row = dict(feature=feature.name, type=feature.type, action=ACTIONS.get(feature.family, "-"))
    if feature.type == "numeric":
        ref = feature.reference[np.isfinite(feature.reference)]
        cur = feature.current[np.isfinite(feature.current)]
        if len(ref) < 2 or len(cur) < 2:
            return dict(
                row,
                test="KS",
                statistic=0.0,
                p_value=1.0,
                psi=0.0,
                distance=0.0,
                change=f"too few values to compare ({len(ref)} vs {len(cur)})",
            )
        result = stats.ks_2samp(ref, cur)
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
        index = psi(
            np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1),
            np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1),
        )
        scale = ref.std() or 1.0
        distance = stats.wasserstein_distance(ref, cur) / scale
        return dict(
            row,
            test="KS",
            statistic=float(result.statistic),
            p_value=float(result.pvalue),
            psi=index,
            distance=float(distance),
            change=_numeric_change(feature, ref, cur),
        )
    ref = pd.Series(feature.reference).astype(str)
    cur = pd.Series(feature.current).astype(str)
    counts = pd.DataFrame({"reference": ref.value_counts(), "current": cur.value_counts()}).fillna(0)
    rare = counts.sum(axis=1) < MIN_CATEGORY_COUNT
    if rare.any():
        counts = pd.concat([counts[~rare], counts[rare].sum().to_frame("(rare)").T])
    counts = counts[counts.sum(axis=1) > 0]
    change = _categorical_change(feature, ref, cur)
    if len(counts) < 2:
        return dict(row, test="chi-square", statistic=0.0, p_value=1.0, psi=0.0, distance=0.0, change=change)
    result = stats.chi2_contingency(counts.to_numpy().T)
    index = psi(counts.reference.to_numpy(), counts.current.to_numpy())
    distance = jensenshannon(counts.reference.to_numpy(), counts.current.to_numpy(), base=2)
    return dict(
        row,
        test="chi-square",
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        psi=index,
        distance=float(distance),
        change=change,
    )


def _numeric_change(feature, ref, cur):
    if feature.family == "date":
        day = lambda d: (pd.Timestamp("1970-01-01") + pd.Timedelta(days=float(d))).strftime("%Y-%m-%d")  # noqa: E731
        return f"dates {day(ref.min())}..{day(ref.max())} -> {day(cur.min())}..{day(cur.max())}"
    a, b = float(np.mean(ref)), float(np.mean(cur))
    words = {
        "brightness": ("darker", "brighter"),
        "contrast": ("flatter", "more contrast"),
        "loudness": ("quieter", "louder"),
        "text length": ("shorter", "longer"),
    }.get(feature.family)
    relative = f" ({(b - a) / a:+.0%})" if a > 0 and b >= 0 else ""  # a percentage of a negative (dBFS) misleads
    direction = f", {words[b > a]}" if words and b != a else ""
    return f"mean {a:.4g} -> {b:.4g}{relative}{direction}"


def _categorical_change(feature, ref, cur):
    shares = pd.DataFrame({"r": ref.value_counts(normalize=True), "c": cur.value_counts(normalize=True)}).fillna(0)
    if feature.family == "missing":
        return f"missing {shares.r.get('True', 0.0):.1%} -> {shares.c.get('True', 0.0):.1%}"
    top = (shares.c - shares.r).abs().idxmax()
    text = f"'{top}' {shares.r[top]:.0%} -> {shares.c[top]:.0%}"
    new = [c for c in shares.index[(shares.r == 0) & (shares.c > 0)]][:5]
    return text + (f"; new: {', '.join(repr(c) for c in new)}" if new else "")


def holm(p_values):
    """Holm's step-down adjusted p-values (family-wise error control, valid under any dependence)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    result = np.empty_like(p)
    result[order] = np.minimum(adjusted, 1.0)
    return result.tolist()

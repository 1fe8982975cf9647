"""`shift_report`: has the data moved between training, test and serving? Per feature, and as a whole.

A model is only as good as the match between the data it was trained on and the data it sees. The report
compares a reference sample (training data) with a current one (test or serving data) feature by feature,
with the test that fits each type: the two-sample Kolmogorov-Smirnov test for numbers and dates (parsed
and compared as days), the chi-square test of homogeneity for categories. Images, texts and audio clips
are first turned into a few features a person can read: brightness and contrast; length in tokens and
out-of-vocabulary rate; loudness, duration, zero-crossing rate and spectral centroid. A domain classifier
(Lipton et al., *Detecting and Correcting for Label Shift*, 2018; Rabanser et al., *Failing Loudly*, 2019)
then tries to tell the two sides apart: a cross-validated ROC AUC near 0.5 means it cannot.

A feature is called shifted only when it is significant after Holm's correction over all the tests
(family-wise error rate `alpha`) *and* large: a population stability index (PSI) of at least `MIN_PSI`.
Huge samples make trivial differences significant; the effect size keeps them out. Each shifted feature
comes with what to do about it.
"""

import dataclasses
import os
import re

import numpy as np
import pandas as pd

from recipes._markdown import markdown_table

KINDS = ("tabular", "text", "image", "audio")

# Thresholds. Each is a module constant, so that a project can tune them in one place.
# Effect size: a population stability index of 0.1 is the usual line for "a moderate shift, investigate"
# (below it, "no significant change"; above 0.25, "a major shift"). PSI over `PSI_BINS` reference deciles
# for numbers, over the categories for categories.
MIN_PSI = 0.1
PSI_BINS = 10
# Domain classifier: a cross-validated AUC of at least this, and significant, means the sides differ
# enough to act on. 0.5 is chance; 0.6 is a classifier right on 60% of (current, reference) pairs.
MIN_DOMAIN_AUC = 0.6
# A string column is a date column when this share of its values parse as dates ...
DATE_SHARE = 0.95
# ... a text column when its values have this many tokens on average, else a categorical column, whose
# `MAX_CATEGORIES` most frequent values on each side are kept (the rest pooled as "(other)").
TEXT_MIN_TOKENS = 3.0
MAX_CATEGORIES = 50
# Categories seen fewer than this many times on both sides together are pooled, as the chi-square test
# is unreliable for tiny expected counts.
MIN_CATEGORY_COUNT = 5
MIN_EXAMPLES = 10
_CLASSIFIER_ROWS = 5000  # per side: the domain classifier needs no more to see a shift worth acting on
_TOKEN = re.compile(r"[\w']+")
_NUM_BANDS = 16

# What to do, per family of feature. `{change}` is what moved, in words.
ACTIONS = {
    "numeric": "check the pipeline for a unit, scaling or default-value change in this column; if the change is "
    "real, retrain on recent data (and re-adapt its Normalization layer)",
    "date": "the current data covers another period: retrain on recent data, and let the model see seasonal "
    "parts of the date (recipes.layers.DateFeatures) rather than the absolute date",
    "categorical": "check the pipeline for renamed or new categories; re-adapt the StringLookup vocabulary and "
    "retrain on data with the current mix",
    "missing": "check the pipeline that fills this column (a join, a source or a default that changed); train with "
    "missing values if they are here to stay",
    "text length": "check truncation and concatenation in the pipeline; if real, retrain with such texts and make "
    "sure the sequence length covers them",
    "out-of-vocabulary": "the current texts use words the model never saw: re-adapt TextVectorization on recent "
    "text and retrain",
    "brightness": "check exposure, the camera and the pixel scaling (0-255 vs 0-1) in the serving pipeline; "
    "augment with keras.layers.RandomBrightness or retrain on such images",
    "contrast": "check exposure and the pixel scaling in the serving pipeline; augment with "
    "keras.layers.RandomContrast or retrain on such images",
    "colour": "check the channel order (RGB vs BGR) and white balance; augment colour or retrain on such images",
    "loudness": "normalise loudness (peak or RMS) in preprocessing, or augment the gain in training",
    "duration": "check the sample rate, resampling and clip length in the pipeline; if real, retrain with such "
    "clips",
    "voice": "the voices, microphones or noise differ: add recordings like the current ones to training and "
    "retrain; augment with noise",
}
_DOMAIN_ACTION = (
    "the sides are easy to tell apart: retrain on data that includes the current distribution, or weight the "
    "training rows by the classifier's odds p/(1-p) that they look current (importance weighting)"
)


@dataclasses.dataclass(frozen=True)
class ShiftReport:
    """What `shift_report` returns. `str(report)` gives the verdict first, then what to do.

    Attributes:
        verdict: `"shift"` (a feature or the domain classifier says so) or `"no shift"`.
        kind: `"tabular"`, `"text"`, `"image"` or `"audio"`.
        features: `pandas.DataFrame`, one row per feature, shifted ones first: `feature`, `type` (`"numeric"`
            or `"categorical"`), `test` (`"KS"` or `"chi-square"`), `statistic`, `p_value`, `p_holm` (Holm
            adjusted over all tests, the domain classifier's included), `psi`, `distance` (numbers: the
            Wasserstein distance in reference standard deviations; categories: the Jensen-Shannon distance,
            base 2, in [0, 1]), `change` (what moved, in words), `verdict` and `action`.
        domain_auc: ROC AUC of the domain classifier (current vs reference) on held-out folds, averaged
            over the folds; 0.5 is chance.
        domain_p_value: p-value of that AUC against 0.5: each fold's one-sided Mann-Whitney U test,
            Bonferroni over the folds.
        domain_verdict: `"shift"` or `"no shift"`.
        domain_features: `(feature, weight)` pairs the domain classifier leans on most, largest first
            (a positive weight: higher in the current data). Empty when the classifier exposes none.
        samples: `pandas.DataFrame` of random examples, `side` (`"reference"` or `"current"`) and `index`
            (position in the input) first, then the row (tabular), the `text`, or the features of the
            example and the `example` itself (images and audio).
        new_tokens: Text: the most frequent tokens of the current data never seen in the reference, with
            their counts; else empty.
        alpha: Family-wise error rate used.
        num_reference: Examples in the reference data.
        num_current: Examples in the current data.
    """

    verdict: str
    kind: str
    features: pd.DataFrame = dataclasses.field(repr=False)
    domain_auc: float
    domain_p_value: float
    domain_verdict: str
    domain_features: list
    samples: pd.DataFrame = dataclasses.field(repr=False)
    new_tokens: list
    alpha: float
    num_reference: int
    num_current: int
    _values: dict = dataclasses.field(repr=False, default_factory=dict)

    @property
    def shifted(self):
        """Names of the shifted features, largest PSI first."""
        return self.features.loc[self.features.verdict == "shift", "feature"].tolist()

    def _headline(self):
        tests = f"Holm-corrected alpha {self.alpha:g}, PSI >= {MIN_PSI:g}"
        domain = f"domain classifier AUC {self.domain_auc:.3f} (p={self.domain_p_value:.2g})"
        sizes = f"{self.num_reference} reference vs {self.num_current} current {self.kind} examples"
        if self.verdict == "no shift":
            largest = self.features.iloc[self.features.psi.argmax()] if len(self.features) else None
            most = f"; largest PSI {largest.psi:.3f} ('{largest.feature}')" if largest is not None else ""
            return (
                f"no shift: no feature differs ({tests}{most}) and the {domain} cannot tell the sides apart "
                f"({sizes})."
            )
        counted = f"{len(self.shifted)} of {len(self.features)} features shifted ({tests})"
        tell = "tells the sides apart" if self.domain_verdict == "shift" else "cannot tell the sides apart"
        return f"SHIFT: {counted}; the {domain} {tell} ({sizes})."

    def __str__(self):
        lines = [self._headline()]
        for row in self.features[self.features.verdict == "shift"].itertuples():
            lines.append(
                f"  - {row.feature}: {row.change} ({row.test} p={row.p_value:.2g}, PSI {row.psi:.2f}). "
                f"Do: {row.action}."
            )
        if self.domain_verdict == "shift":
            leans = ", ".join(name for name, _ in self.domain_features[:5])
            lines.append(f"  - domain classifier (leans on: {leans}). Do: {_DOMAIN_ACTION}.")
        if self.new_tokens:
            lines.append("  new tokens: " + ", ".join(f"{token!r} ({count})" for token, count in self.new_tokens))
        steady = self.features.loc[self.features.verdict != "shift", "feature"].tolist()
        if steady:
            lines.append("  no shift in: " + ", ".join(steady))
        return "\n".join(lines)

    def to_markdown(self):
        """The report as Markdown: the verdict, the feature table, the domain classifier and the samples.

        Returns:
            A string.
        """
        table = self.features.copy()
        for column in ("statistic", "psi", "distance"):
            table[column] = table[column].map(lambda v: f"{v:.3f}")
        for column in ("p_value", "p_holm"):
            table[column] = table[column].map(lambda v: f"{v:.2g}")
        leans = ", ".join(f"`{name}` ({weight:+.2f})" for name, weight in self.domain_features[:5]) or "n/a"
        parts = [
            "# Data shift report",
            "",
            self._headline(),
            "",
            "## Features",
            "",
            markdown_table(table),
            "",
            "## Domain classifier",
            "",
            f"AUC {self.domain_auc:.3f}, p={self.domain_p_value:.2g}: {self.domain_verdict}. Leans on: {leans}.",
        ]
        if self.domain_verdict == "shift":
            parts += ["", f"Do: {_DOMAIN_ACTION}."]
        if self.new_tokens:
            parts += ["", "New tokens: " + ", ".join(f"`{t}` ({c})" for t, c in self.new_tokens)]
        samples = self.samples.drop(columns=["example"], errors="ignore")
        parts += ["", "## Random samples", "", markdown_table(samples), ""]
        return "\n".join(parts)

    def plot(self, path, max_features=4):
        """Writes one PNG: reference vs current histograms of the most shifted features.

        The features shifted first, then the largest PSI. For images, a row of the sampled images of each
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
        thumbnails = self.kind == "image" and "example" in self.samples
        figure = Figure(figsize=(3.2 * max(len(names), 1), 3.0 * (2 if thumbnails else 1)), layout="constrained")
        FigureCanvasAgg(figure)
        rows = 2 if thumbnails else 1
        for i, name in enumerate(names):
            axes = figure.add_subplot(rows, max(len(names), 1), i + 1)
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
            axes.set_title(f"{name}: {row.verdict} (PSI {row.psi:.2f})", fontsize="small")
            axes.legend(fontsize="x-small")
        if thumbnails:
            examples = self.samples[["side", "example"]].itertuples(index=False)
            examples = list(examples)
            for i, (side, image) in enumerate(examples):
                axes = figure.add_subplot(rows, len(examples), len(examples) + i + 1)
                image = np.asarray(image, dtype=np.float64)
                axes.imshow(image if image.ndim == 2 or image.shape[-1] in (3, 4) else image[..., 0], cmap="gray",
                            vmin=0, vmax=255 if image.max() > 1.0 else 1.0)  # fmt: skip
                axes.set_title(side, fontsize="x-small")
                axes.axis("off")
        figure.suptitle(self._headline()[:110], fontsize="small")
        path = os.fspath(path)
        figure.savefig(path, dpi=100)
        return path


def shift_report(
    reference,
    current,
    *,
    kind=None,
    alpha=0.01,
    seed=0,
    columns=None,
    sample_rate=None,
    classifier=None,
    num_samples=3,
    cv=2,
):
    """Compares reference data (training) with current data (test or serving): shift or no shift.

    Each feature gets the test that fits its type: Kolmogorov-Smirnov (`scipy.stats.ks_2samp`) for
    numbers and dates, chi-square (`scipy.stats.chi2_contingency`) for categories and for the share of
    missing values. Holm's correction over all the tests keeps the chance of any false alarm at `alpha`;
    a feature is then called shifted only if its PSI is at least `MIN_PSI` (0.1) too, so that huge samples
    do not flag trivial moves. The features of each kind:

    - tabular (`pandas.DataFrame`): every column; number columns as they are, string columns as dates
      when they parse (compared in days), as texts when their values average `TEXT_MIN_TOKENS` (3)
      tokens or more (then as below), else as categories; plus the share of missing values of any
      column that has some.
    - text (strings): length in tokens and out-of-vocabulary rate (the share of a text's tokens missing
      from the vocabulary of a random half of the reference; the other half is compared with the current
      texts, so that both sides are measured alike), and the current data's top new tokens.
    - image (`(N, H, W)` or `(N, H, W, C)`, uint8 or float): brightness (mean pixel value) and contrast
      (standard deviation of the pixel values) per image, and each channel's mean for colour images.
      The values are not rescaled, so 0-255 against 0-1 pixels shows as a shift.
    - audio (`(N, samples)` or a list of 1-D waveforms, with `sample_rate`): per clip, loudness (RMS of
      the sounding part, dBFS), duration and sounding duration (seconds), zero-crossing rate and spectral
      centroid (Hz) of the sounding part.

    The domain classifier (a scikit-learn logistic regression on the standardised features, TF-IDF words
    for text, an 8x8 thumbnail for images, 16 log-spaced band energies for audio) tries to tell current
    from reference examples; its AUC on each held-out fold is tested against 0.5 with the Mann-Whitney U
    test (`scipy.stats.mannwhitneyu`), Bonferroni over the folds, and joins the Holm family; an AUC of at
    least `MIN_DOMAIN_AUC` (0.6) and significant is a shift, even when no single feature moved (a shift in
    how features go together).

    Example:

    ```python
    import recipes
    from recipes.debug import shift_report

    weather = recipes.datasets.load_seattle_weather()
    train, serving = weather.iloc[::2], weather.iloc[1::2].copy()
    print(shift_report(train, serving))  # no shift: no feature differs (...) and the domain classifier ...
    serving["wind"] = serving["wind"] * 3.6  # a pipeline that now sends km/h, not m/s
    report = shift_report(train, serving)
    print(report)
    # SHIFT: 1 of 6 features shifted (Holm-corrected alpha 0.01, PSI >= 0.1); the domain classifier AUC ...
    #   - wind: mean 3.267 -> 11.57 (+254%) (KS p=5.9e-276, PSI 4.30). Do: check the pipeline for a unit, ...
    report.plot("shift.png")
    ```

    Args:
        reference: The data the model was trained on: a `pandas.DataFrame`, a sequence of strings, an
            image array, or waveforms (see above).
        current: The data to compare, of the same kind (and columns, channels, sample rate).
        kind: One of `KINDS` or `None` (default): inferred from `reference`, a `DataFrame` being
            tabular, strings text, a 3-D or 4-D array images, waveforms audio when `sample_rate` is given.
        alpha: Float in (0, 1), defaults to 0.01. Family-wise false-alarm rate over all the tests.
        seed: Non-negative int, defaults to 0. Seeds the vocabulary halves, the cross-validation folds
            and the samples.
        columns: Optional list of column names to compare (tabular). Defaults to all of `reference`'s.
        sample_rate: Int, sampling rate of the waveforms in Hz; required for audio.
        classifier: Optional scikit-learn classifier with `predict_proba` for the domain classifier,
            e.g. `sklearn.ensemble.HistGradientBoostingClassifier()` for interactions. Defaults to a
            `LogisticRegression`.
        num_samples: Int >= 0, defaults to 3. Random examples shown per side.
        cv: Int >= 2, defaults to 2. Cross-validation folds of the domain classifier: each fold's held-out
            AUC is tested on its own, so fewer, larger folds test with more power.

    Returns:
        A `ShiftReport`.
    """
    kind = _check_arguments(reference, current, kind, alpha, seed, sample_rate, num_samples, cv)
    rng = np.random.default_rng(seed)
    new_tokens = []
    if kind == "tabular":
        reference, current, features, extra = _tabular_features(reference, current, columns, rng)
    elif kind == "text":
        reference, current = _strings(reference, "reference"), _strings(current, "current")
        features, new_tokens = _text_features(reference, current, "", rng)
        extra = _tfidf(reference, current)
    elif kind == "image":
        reference, current = _images(reference, "reference"), _images(current, "current")
        if reference.shape[-1] != current.shape[-1]:
            raise ValueError(
                f"`reference` and `current` images must have the same number of channels. Received: "
                f"{reference.shape[-1]} and {current.shape[-1]} (shapes {reference.shape} and {current.shape})"
            )
        features = _pair(_image_features(reference), _image_features(current))
        extra = (_thumbnails(reference), _thumbnails(current))
    else:
        reference, current = _waveforms(reference, "reference"), _waveforms(current, "current")
        (ref_features, ref_bands), (cur_features, cur_bands) = (
            _audio_features(clips, sample_rate) for clips in (reference, current)
        )
        features = _pair(ref_features, cur_features)
        extra = (ref_bands, cur_bands)

    rows = [_test(feature) for feature in features]
    auc, domain_p, leans = _domain_classifier(features, extra, classifier, cv, seed)
    p_holm = _holm([row["p_value"] for row in rows] + [domain_p])
    for row, adjusted in zip(rows, p_holm):
        row["p_holm"] = adjusted
        row["verdict"] = "shift" if adjusted < alpha and row["psi"] >= MIN_PSI else "no shift"
        if row["verdict"] == "no shift":
            row["action"] = "-"
    domain_verdict = "shift" if p_holm[-1] < alpha and auc >= MIN_DOMAIN_AUC else "no shift"
    table = pd.DataFrame(
        rows,
        columns=["feature", "type", "test", "statistic", "p_value", "p_holm", "psi", "distance", "change",
                 "verdict", "action"],
    )  # fmt: skip
    table["_order"] = table.verdict != "shift"
    table = table.sort_values(["_order", "psi"], ascending=[True, False], kind="stable")
    table = table.drop(columns="_order").reset_index(drop=True)
    verdict = "shift" if (table.verdict == "shift").any() or domain_verdict == "shift" else "no shift"
    samples = _samples(kind, reference, current, features, num_samples, rng)
    return ShiftReport(
        verdict=verdict,
        kind=kind,
        features=table,
        domain_auc=auc,
        domain_p_value=domain_p,
        domain_verdict=domain_verdict,
        domain_features=leans,
        samples=samples,
        new_tokens=new_tokens,
        alpha=alpha,
        num_reference=len(reference),
        num_current=len(current),
        _values={f.name: (f.reference, f.current) for f in features},
    )


@dataclasses.dataclass(frozen=True)
class _Feature:
    name: str
    type: str  # "numeric" or "categorical"
    reference: np.ndarray
    current: np.ndarray
    family: str  # a key of ACTIONS
    classify: bool = True  # given to the domain classifier


def _pair(reference, current):
    """`_Feature`s from two lists of `(name, type, values, family)`, one per side, of the same features."""
    return [
        _Feature(name, kind, values, other[2], family) for (name, kind, values, family), other in zip(reference, current)
    ]


# -- arguments ---------------------------------------------------------------------------------------------


def _check_arguments(reference, current, kind, alpha, seed, sample_rate, num_samples, cv):
    if kind is not None and kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS} or None. Received: kind={kind!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be a float in (0, 1). Received: alpha={alpha!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int. Received: seed={seed!r}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"`num_samples` must be an int >= 0. Received: num_samples={num_samples!r}")
    if isinstance(cv, bool) or not isinstance(cv, int) or cv < 2:
        raise ValueError(f"`cv` must be an int >= 2. Received: cv={cv!r}")
    if sample_rate is not None and (
        isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0
    ):
        raise ValueError(f"`sample_rate` must be a positive int (Hz). Received: sample_rate={sample_rate!r}")
    inferred = [_infer_kind(data, name, sample_rate) if kind is None else kind
                for data, name in ((reference, "reference"), (current, "current"))]  # fmt: skip
    if inferred[0] != inferred[1]:
        raise ValueError(
            f"`reference` and `current` must be of the same kind. Received: reference looks like {inferred[0]} "
            f"data ({_describe(reference)}), current like {inferred[1]} data ({_describe(current)})"
        )
    kind = inferred[0]
    if kind == "audio" and sample_rate is None:
        raise ValueError("`sample_rate` is required for audio, e.g. sample_rate=16000. Received: sample_rate=None")
    for data, name in ((reference, "reference"), (current, "current")):
        if len(data) < MIN_EXAMPLES:
            raise ValueError(
                f"`{name}` must hold at least {MIN_EXAMPLES} examples to test anything. Received: {len(data)}"
            )
    return kind


def _describe(data):
    if isinstance(data, pd.DataFrame):
        return f"a DataFrame of shape {data.shape}"
    if isinstance(data, np.ndarray):
        return f"an array of shape {data.shape} and dtype {data.dtype}"
    return f"a {type(data).__name__} of {len(data)} items" if hasattr(data, "__len__") else repr(data)[:80]


def _infer_kind(data, name, sample_rate):
    if isinstance(data, pd.DataFrame):
        return "tabular"
    if data is None or isinstance(data, (str, bytes)) or not hasattr(data, "__len__") or len(data) == 0:
        raise ValueError(
            f"`{name}` must be a DataFrame, a sequence of strings, an image array or waveforms. "
            f"Received: {name}={repr(data)[:80]}"
        )
    if isinstance(data, pd.Series):
        data = data.to_numpy()
    first = data[0]
    if isinstance(first, str):
        return "text"
    if isinstance(data, np.ndarray) and data.dtype.kind in "iufb":
        if data.ndim in (3, 4):
            return "image"
        if data.ndim == 2 and sample_rate is not None:
            return "audio"
    elif sample_rate is not None and isinstance(first, (np.ndarray, list)) and np.ndim(first) == 1:
        return "audio"
    raise ValueError(
        f"Cannot tell what kind of data `{name}` is ({_describe(data)}). Expected a pandas DataFrame (tabular), "
        "a sequence of strings (text), an array (N, H, W) or (N, H, W, C) (images), or waveforms (N, samples) "
        f"or a list of 1-D arrays with `sample_rate` (audio); or pass kind= one of {KINDS}"
    )


def _strings(data, name):
    values = list(data.to_numpy() if isinstance(data, pd.Series) else data)
    bad = next((v for v in values if not isinstance(v, str)), None)
    if bad is not None or any(not isinstance(v, str) for v in values):
        raise ValueError(f"`{name}` must hold only strings for text. Received an item {bad!r}")
    return np.asarray(values, dtype=object)


def _images(data, name):
    data = np.asarray(data)
    if data.ndim not in (3, 4) or data.dtype.kind not in "iuf" or (data.ndim == 4 and data.shape[-1] > 4):
        raise ValueError(
            f"`{name}` images must be a numeric array (N, H, W) or (N, H, W, C) with C <= 4. "
            f"Received: {_describe(data)}"
        )
    return data if data.ndim == 4 else data[..., None]


def _waveforms(data, name):
    if isinstance(data, np.ndarray) and data.ndim == 2:
        clips = list(data)
    else:
        clips = [np.asarray(clip) for clip in data]
    for i, clip in enumerate(clips):
        if clip.ndim != 1 or clip.size == 0 or clip.dtype.kind not in "iuf":
            raise ValueError(
                f"`{name}` waveforms must be non-empty 1-D numeric arrays. Received: item {i} of shape "
                f"{clip.shape} and dtype {clip.dtype}"
            )
    return clips


# -- features ------------------------------------------------------------------------------------------------


def _tokens(text):
    """Lower-cased word tokens, as Keras's TextVectorization standardises by default (punctuation stripped)."""
    return _TOKEN.findall(text.lower())


def _text_features(reference, current, prefix, rng):
    """Length, out-of-vocabulary rate, and the top new tokens.

    The OOV rate of a reference text against the reference vocabulary would be 0 by construction, so the
    vocabulary comes from a random half of the reference and the other half is compared with the current
    texts. Measuring each reference half against the other instead (cross-fitting) keeps all the texts but
    ties every rate to the same split, and the KS test then raised too many false alarms on random splits.
    """
    ref_tokens = [_tokens(t) for t in reference]
    cur_tokens = [_tokens(t) for t in current]
    in_vocabulary = rng.permutation(len(reference)) < len(reference) // 2
    vocabulary = set().union(*(tokens for tokens, v in zip(ref_tokens, in_vocabulary) if v))

    def oov(tokens):
        return sum(t not in vocabulary for t in tokens) / len(tokens) if tokens else np.nan

    # NaN for the half that built the vocabulary: the test drops it, the domain classifier imputes it
    ref_oov = np.array([np.nan if v else oov(t) for t, v in zip(ref_tokens, in_vocabulary)])
    cur_oov = np.array([oov(t) for t in cur_tokens])
    features = [
        _Feature(f"{prefix}length (tokens)", "numeric", np.array([len(t) for t in ref_tokens], float),
                 np.array([len(t) for t in cur_tokens], float), "text length"),
        # the domain classifier would tell the vocabulary half by its missing rate: it gets the words instead
        _Feature(f"{prefix}out-of-vocabulary rate", "numeric", ref_oov, cur_oov, "out-of-vocabulary", False),
    ]  # fmt: skip
    vocabulary = set().union(*ref_tokens)
    new = pd.Series([t for tokens in cur_tokens for t in tokens if t not in vocabulary], dtype=object)
    new_tokens = [(str(t), int(c)) for t, c in new.value_counts().head(10).items()]
    return features, new_tokens


def _tfidf(reference, current):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(token_pattern=_TOKEN.pattern, min_df=2, max_features=20_000, sublinear_tf=True)
    matrix = vectorizer.fit_transform(np.concatenate([reference, current]))
    return matrix, [f"word '{w}'" for w in vectorizer.get_feature_names_out()]


def _is_date(values):
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    strings = values.dropna()
    if not len(strings) or not all(isinstance(v, str) for v in strings.head(100)):
        return False
    if pd.to_numeric(strings.head(100), errors="coerce").notna().mean() > 0.5:
        return False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format": then most values do not parse, as wanted
        parsed = pd.to_datetime(strings, errors="coerce")
    return parsed.notna().mean() >= DATE_SHARE


def _days(values):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values, errors="coerce")
    return ((parsed - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)


def _tabular_features(reference, current, columns, rng):
    if not isinstance(current, pd.DataFrame):
        raise ValueError(f"`current` must be a DataFrame like `reference`. Received: {_describe(current)}")
    columns = list(reference.columns) if columns is None else list(columns)
    for frame, name in ((reference, "reference"), (current, "current")):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"`{name}` lacks the columns {missing}; it has {list(frame.columns)}. Pass columns=[...] to "
                "compare a subset"
            )
    if not columns:
        raise ValueError("`columns` must name at least one column. Received: columns=[]")
    reference, current = reference[columns].reset_index(drop=True), current[columns].reset_index(drop=True)
    features, extra_ref, extra_cur, names = [], [], [], []
    for column in columns:
        ref, cur = reference[column], current[column]
        if ref.isna().any() or cur.isna().any():
            features.append(_Feature(f"{column}: missing", "categorical", ref.isna().to_numpy(),
                                     cur.isna().to_numpy(), "missing"))  # fmt: skip
        if pd.api.types.is_bool_dtype(ref):
            features.append(_Feature(column, "categorical", ref.astype(str).to_numpy(), cur.astype(str).to_numpy(),
                                     "categorical"))  # fmt: skip
        elif pd.api.types.is_numeric_dtype(ref):
            if not pd.api.types.is_numeric_dtype(cur):
                raise ValueError(
                    f"Column {column!r} is numeric in `reference` but {cur.dtype} in `current` "
                    f"(e.g. {cur.dropna().iloc[0]!r} if any): check the pipeline that writes it"
                )
            features.append(_Feature(column, "numeric", ref.to_numpy(float), cur.to_numpy(float), "numeric"))
        elif _is_date(ref):
            features.append(_Feature(column, "numeric", _days(ref), _days(cur), "date"))
        else:
            ref_text, cur_text = ref.fillna("").astype(str), cur.fillna("").astype(str)
            if ref_text.map(lambda t: len(_tokens(t))).mean() >= TEXT_MIN_TOKENS:
                text, _ = _text_features(ref_text.to_numpy(), cur_text.to_numpy(), f"{column}: ", rng)
                features.extend(text)
            else:
                # the most frequent values of each side keep their names, so that new categories are named
                kept = set(ref.value_counts().index[:MAX_CATEGORIES]) | set(cur.value_counts().index[:MAX_CATEGORIES])
                pooled = [s.where(s.isin(kept) | s.isna(), "(other)").fillna("(missing)").astype(str).to_numpy()
                          for s in (ref, cur)]  # fmt: skip
                features.append(_Feature(column, "categorical", *pooled, "categorical"))
    return reference, current, features, None


def _image_features(images):
    flat = images.reshape(len(images), -1, images.shape[-1]).astype(np.float64)
    features = [
        ("brightness", "numeric", flat.mean(axis=(1, 2)), "brightness"),
        ("contrast", "numeric", flat.std(axis=(1, 2)), "contrast"),
    ]
    if images.shape[-1] > 1:
        names = ("red", "green", "blue", "alpha") if images.shape[-1] in (3, 4) else None
        for c in range(images.shape[-1]):
            name = f"{names[c]} mean" if names else f"channel {c} mean"
            features.append((name, "numeric", flat[:, :, c].mean(axis=1), "colour"))
    return features


def _thumbnails(images, size=8):
    """Each image average-pooled to at most `size` x `size` (channels averaged): coarse content for the classifier."""
    gray = images.astype(np.float64).mean(axis=-1)
    rows = np.array_split(np.arange(gray.shape[1]), min(size, gray.shape[1]))
    cols = np.array_split(np.arange(gray.shape[2]), min(size, gray.shape[2]))
    pooled = np.array([[gray[:, r][:, :, c].mean(axis=(1, 2)) for c in cols] for r in rows])  # (rows, cols, N)
    pooled = pooled.transpose(2, 0, 1).reshape(len(images), -1)
    return pooled, [f"thumbnail row {r} col {c}" for r in range(len(rows)) for c in range(len(cols))]


def _audio_features(clips, sample_rate):
    """Per clip: loudness, durations, zero-crossing rate, spectral centroid; and log band energies.

    Computed with NumPy on the sounding part of the clip (first to last sample above 5% of its peak, as
    `recipes.datasets.load_spoken_digits` trims), so that padding with silence does not change them.
    """
    loudness, duration, sounding, crossings, centroid, bands = [], [], [], [], [], []
    edges = np.geomspace(50.0, sample_rate / 2, _NUM_BANDS + 1)
    for clip in clips:
        clip = clip.astype(np.float64)
        loud = np.flatnonzero(np.abs(clip) > 0.05 * np.abs(clip).max()) if np.abs(clip).max() > 0 else []
        part = clip[loud[0] : loud[-1] + 1] if len(loud) else clip
        duration.append(len(clip) / sample_rate)
        sounding.append(len(part) / sample_rate if len(loud) else 0.0)
        loudness.append(20 * np.log10(np.sqrt(np.mean(part**2)) + 1e-10))
        crossings.append(np.mean(np.abs(np.diff(np.signbit(part).astype(np.int8)))) if len(part) > 1 else 0.0)
        power = np.abs(np.fft.rfft(part)) ** 2
        frequencies = np.fft.rfftfreq(len(part), 1.0 / sample_rate)
        total = power.sum()
        centroid.append(float((frequencies * power).sum() / total) if total > 0 else 0.0)
        band = np.array([power[(frequencies >= lo) & (frequencies < hi)].sum() for lo, hi in zip(edges, edges[1:])])
        bands.append(np.log10(band / max(total, 1e-20) + 1e-10))
    features = [
        ("loudness (dBFS)", "numeric", np.array(loudness), "loudness"),
        ("duration (s)", "numeric", np.array(duration), "duration"),
        ("sounding duration (s)", "numeric", np.array(sounding), "duration"),
        ("zero-crossing rate", "numeric", np.array(crossings), "voice"),
        ("spectral centroid (Hz)", "numeric", np.array(centroid), "voice"),
    ]
    names = [f"band {lo:.0f}-{hi:.0f} Hz" for lo, hi in zip(edges, edges[1:])]
    return features, (np.array(bands), names)


# -- tests ---------------------------------------------------------------------------------------------------


def _psi(reference_counts, current_counts):
    # +0.5 per bin (Jeffreys smoothing) keeps empty bins finite
    p = (reference_counts + 0.5) / (reference_counts.sum() + 0.5 * len(reference_counts))
    q = (current_counts + 0.5) / (current_counts.sum() + 0.5 * len(current_counts))
    return float(np.sum((q - p) * np.log(q / p)))


def _test(feature):
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    row = dict(feature=feature.name, type=feature.type, action=ACTIONS[feature.family])
    if feature.type == "numeric":
        ref = feature.reference[np.isfinite(feature.reference)]
        cur = feature.current[np.isfinite(feature.current)]
        if len(ref) < 2 or len(cur) < 2:
            return dict(row, test="KS", statistic=0.0, p_value=1.0, psi=0.0, distance=0.0,
                        change=f"too few values to compare ({len(ref)} vs {len(cur)})")  # fmt: skip
        result = stats.ks_2samp(ref, cur)
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
        psi = _psi(np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1),
                   np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1))  # fmt: skip
        scale = ref.std() or 1.0
        distance = stats.wasserstein_distance(ref, cur) / scale
        return dict(row, test="KS", statistic=float(result.statistic), p_value=float(result.pvalue), psi=psi,
                    distance=float(distance), change=_numeric_change(feature, ref, cur))  # fmt: skip
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
    psi = _psi(counts.reference.to_numpy(), counts.current.to_numpy())
    distance = jensenshannon(counts.reference.to_numpy(), counts.current.to_numpy(), base=2)
    return dict(row, test="chi-square", statistic=float(result.statistic), p_value=float(result.pvalue), psi=psi,
                distance=float(distance), change=change)  # fmt: skip


def _numeric_change(feature, ref, cur):
    if feature.family == "date":
        day = lambda d: (pd.Timestamp("1970-01-01") + pd.Timedelta(days=float(d))).strftime("%Y-%m-%d")  # noqa: E731
        return f"dates {day(ref.min())}..{day(ref.max())} -> {day(cur.min())}..{day(cur.max())}"
    a, b = float(np.mean(ref)), float(np.mean(cur))
    words = {"brightness": ("darker", "brighter"), "contrast": ("flatter", "more contrast"),
             "loudness": ("quieter", "louder"), "text length": ("shorter", "longer")}.get(feature.family)  # fmt: skip
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


def _holm(p_values):
    """Holm's step-down adjusted p-values (family-wise error control, valid under any dependence)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    result = np.empty_like(p)
    result[order] = np.minimum(adjusted, 1.0)
    return result.tolist()


# -- domain classifier ---------------------------------------------------------------------------------------


def _domain_classifier(features, extra, classifier, cv, seed):
    """Cross-validated AUC of a classifier telling current (1) from reference (0), its p-value, its leanings."""
    import scipy.sparse
    from scipy import stats
    from sklearn.base import clone
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    blocks, names = [], []
    for feature in filter(lambda f: f.classify, features):
        if feature.type == "numeric":
            blocks.append((feature.reference[:, None], feature.current[:, None]))
            names.append(feature.name)
        else:
            categories = pd.Series(feature.reference).astype(str).value_counts().index[:MAX_CATEGORIES]
            for category in categories:
                blocks.append(((feature.reference.astype(str) == category)[:, None].astype(float),
                               (feature.current.astype(str) == category)[:, None].astype(float)))  # fmt: skip
                names.append(f"{feature.name} = {category}")
    x_ref = np.hstack([b[0] for b in blocks]).astype(float)
    x_cur = np.hstack([b[1] for b in blocks]).astype(float)
    x = np.vstack([x_ref, x_cur])
    sparse_block = None
    if extra is not None and scipy.sparse.issparse(extra[0]):
        sparse_block, sparse_names = extra
    elif extra is not None:
        (ref_extra, extra_names), (cur_extra, _) = extra
        x = np.hstack([x, np.vstack([ref_extra, cur_extra])])
        names += extra_names
    y = np.r_[np.zeros(len(x_ref)), np.ones(len(x_cur))]
    rng = np.random.default_rng(seed)
    keep = np.r_[_subsample(rng, len(x_ref)), len(x_ref) + _subsample(rng, len(x_cur))]
    dense = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
    x = dense.fit_transform(x[keep])
    if sparse_block is not None:
        x = scipy.sparse.hstack([sparse_block[keep], scipy.sparse.csr_matrix(x)]).tocsr()
        names = list(sparse_names) + names
    y = y[keep]
    model = classifier if classifier is not None else LogisticRegression(solver="liblinear", class_weight="balanced")
    # Each fold's held-out scores come from a model that never saw that fold's labels, so the Mann-Whitney
    # test of that fold is exact; the folds are then joined by Bonferroni. A test on the out-of-fold scores
    # pooled over the folds is not valid (every score depends on the other folds' labels): on random
    # splits of real data it raised three times too many false alarms.
    folds = StratifiedKFold(n_splits=min(cv, int(min(y.sum(), len(y) - y.sum()))), shuffle=True, random_state=seed)
    aucs, p_values = [], []
    for train, held_out in folds.split(x, y):
        scores = clone(model).fit(x[train], y[train]).predict_proba(x[held_out])[:, 1]
        truth = y[held_out]
        test = stats.mannwhitneyu(scores[truth == 1], scores[truth == 0], alternative="greater")
        aucs.append(test.statistic / (truth.sum() * (len(truth) - truth.sum())))
        p_values.append(test.pvalue)
    auc = float(np.mean(aucs))
    p_value = min(1.0, len(p_values) * min(p_values))
    fitted = clone(model).fit(x, y)
    weights = getattr(fitted, "coef_", None)
    weights = weights[0] if weights is not None else getattr(fitted, "feature_importances_", None)
    leans = []
    if weights is not None and len(weights) == len(names):
        order = np.argsort(-np.abs(weights))[:10]
        leans = [(names[i], float(weights[i])) for i in order if weights[i] != 0]
    return auc, float(p_value), leans


def _subsample(rng, n):
    return np.sort(rng.choice(n, _CLASSIFIER_ROWS, replace=False)) if n > _CLASSIFIER_ROWS else np.arange(n)


# -- samples and Markdown -----------------------------------------------------------------------------------


def _samples(kind, reference, current, features, num_samples, rng):
    frames = []
    for side, data in (("reference", reference), ("current", current)):
        n = len(data)
        index = np.sort(rng.choice(n, min(num_samples, n), replace=False))
        if kind == "tabular":
            frame = data.iloc[index].reset_index(drop=True)
        elif kind == "text":
            frame = pd.DataFrame({"text": data[index]})
        else:
            frame = pd.DataFrame(
                {f.name: (f.reference if side == "reference" else f.current)[index] for f in features}
            )
            frame["example"] = [data[i] for i in index] if kind == "audio" else list(data[index].squeeze(-1)
                                                                                     if data.shape[-1] == 1
                                                                                     else data[index])  # fmt: skip
        frame.insert(0, "index", index)
        frame.insert(0, "side", side)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)

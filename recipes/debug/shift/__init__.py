"""`shift_report`: has the data moved between training, test and serving? Per feature, and as a whole.

A model is only as good as the match between the data it was trained on and the data it sees. The report
compares reference data (training) with current data (test or serving) feature by feature
(`features`), with the test that fits each type (`statistics`): the two-sample Kolmogorov-Smirnov test for
numbers and dates (parsed and compared as days), the chi-square test of homogeneity for categories.
Images, texts and audio clips are first turned into a few features a person can read: brightness and
contrast; length in tokens and out-of-vocabulary rate; loudness, duration, zero-crossing rate and spectral
centroid. A domain classifier (`domain_classifier`) then tries to tell the two sides apart: a
cross-validated ROC AUC near 0.5 means it cannot.

A feature is called shifted only when it is significant after Holm's correction over all the tests
(family-wise error rate `alpha`) *and* large: a population stability index (PSI) of at least `MIN_PSI`.
Huge samples make trivial differences significant; the effect size keeps them out. Each shifted feature
comes with what to do about it (`actions`).
"""

import numpy as np
import pandas as pd

from recipes.debug.shift import features as featurize
from recipes.debug.shift import inputs
from recipes.debug.shift import report as writing
from recipes.debug.shift.actions import ACTIONS
from recipes.debug.shift.domain_classifier import MIN_DOMAIN_AUC, domain_classifier
from recipes.debug.shift.inputs import MODALITIES
from recipes.debug.shift.report import ShiftReport
from recipes.debug.shift.statistics import MIN_PSI, compare, holm

__all__ = ["ACTIONS", "MIN_DOMAIN_AUC", "MIN_PSI", "MODALITIES", "ShiftReport", "shift_report"]


def shift_report(
    reference_data,
    current_data,
    *,
    modality=None,
    alpha=0.01,
    seed=0,
    columns=None,
    sample_rate=None,
    classifier=None,
    num_examples=3,
    cv=2,
):
    """Compares reference data (training) with current data (test or serving): verdict "pass" or "fail".

    Each feature gets the test that fits its type: Kolmogorov-Smirnov (`scipy.stats.ks_2samp`) for
    numbers and dates, chi-square (`scipy.stats.chi2_contingency`) for categories and for the share of
    missing values. Holm's correction over all the tests keeps the chance of any false alarm at `alpha`;
    a feature is then called shifted only if its PSI is at least `MIN_PSI` (0.1) too, so that huge samples
    do not flag trivial moves. The features of each modality:

    - table (`pandas.DataFrame`): every column; number columns as they are, string columns as dates
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
    how features go together). The verdict is `"fail"` when anything shifted, else `"pass"`.

    Example:

    ```python
    import recipes
    from recipes.debug import shift_report

    weather = recipes.datasets.load_seattle_weather()
    train, serving = weather.iloc[::2], weather.iloc[1::2].copy()
    print(shift_report(train, serving))  # PASS: no shift: no feature differs (...) and the domain classifier ...
    serving["wind"] = serving["wind"] * 3.6  # a pipeline that now sends km/h, not m/s
    report = shift_report(train, serving)
    print(report)
    # FAIL: 1 of 6 features shifted (Holm-corrected alpha 0.01, PSI >= 0.1); the domain classifier AUC ...
    # - wind: mean 3.267 -> 11.57 (+254%) (KS p=5.9e-276, PSI 4.30); do: check the pipeline for a unit, ...
    report.plot("shift.png")
    ```

    Args:
        reference_data: The data the model was trained on: a `pandas.DataFrame`, a sequence of strings,
            an image array, or waveforms (see above).
        current_data: The data to compare, of the same modality (and columns, channels, sample rate).
        modality: One of `MODALITIES` (`"text"`, `"image"`, `"audio"`, `"table"`) or `None` (default):
            inferred from the data, a `DataFrame` being a table, strings text, a 3-D or 4-D array images,
            waveforms audio when `sample_rate` is given.
        alpha: Float in (0, 1), defaults to 0.01. Family-wise false-alarm rate over all the tests.
        seed: Int >= 0, defaults to 0. Seeds the vocabulary halves, the cross-validation folds and the
            examples shown.
        columns: Optional list of column names to compare (table). Defaults to all of `reference_data`'s.
        sample_rate: Int, sampling rate of the waveforms in Hz; required for audio.
        classifier: Optional scikit-learn classifier with `predict_proba` for the domain classifier,
            e.g. `sklearn.ensemble.HistGradientBoostingClassifier()` for interactions. Defaults to a
            `LogisticRegression`.
        num_examples: Int >= 0, defaults to 3. Random examples shown per side.
        cv: Int >= 2, defaults to 2. Cross-validation folds of the domain classifier: each fold's held-out
            AUC is tested on its own, so fewer, larger folds test with more power.

    Returns:
        A `ShiftReport`.
    """
    modality = inputs.check_arguments(reference_data, current_data, modality, alpha, seed, sample_rate,
                                      num_examples, cv)  # fmt: skip
    reference, current = reference_data, current_data
    rng = np.random.default_rng(seed)
    new_tokens = []
    if modality == "table":
        reference, current, features = featurize.table_features(reference, current, columns, rng)
        extra = None
    elif modality == "text":
        reference, current = inputs.strings(reference, "reference_data"), inputs.strings(current, "current_data")
        features, new_tokens = featurize.text_features(reference, current, "", rng)
        extra = featurize.tfidf(reference, current)
    elif modality == "image":
        reference, current = inputs.images(reference, "reference_data"), inputs.images(current, "current_data")
        if reference.shape[-1] != current.shape[-1]:
            raise ValueError(
                "`reference_data` and `current_data` images must have the same number of channels. Received: "
                f"{reference.shape[-1]} and {current.shape[-1]} (shapes {reference.shape} and {current.shape})"
            )
        features = featurize.paired(featurize.image_features(reference), featurize.image_features(current))
        extra = (featurize.thumbnails(reference), featurize.thumbnails(current))
    else:
        reference = inputs.waveforms(reference, "reference_data")
        current = inputs.waveforms(current, "current_data")
        (ref_features, ref_bands), (cur_features, cur_bands) = (
            featurize.audio_features(clips, sample_rate) for clips in (reference, current)
        )
        features = featurize.paired(ref_features, cur_features)
        extra = (ref_bands, cur_bands)

    rows = [compare(feature) for feature in features]
    auc, domain_p, leans = domain_classifier(features, extra, classifier, cv, seed)
    p_holm = holm([row["p_value"] for row in rows] + [domain_p])
    for row, adjusted in zip(rows, p_holm):
        row["p_holm"] = adjusted
        row["finding"] = "shift" if adjusted < alpha and row["psi"] >= MIN_PSI else "no shift"
        if row["finding"] == "no shift":
            row["action"] = "-"
    domain_finding = "shift" if p_holm[-1] < alpha and auc >= MIN_DOMAIN_AUC else "no shift"
    table = pd.DataFrame(
        rows,
        columns=["feature", "type", "test", "statistic", "p_value", "p_holm", "psi", "distance", "change",
                 "finding", "action"],
    )  # fmt: skip
    table["_order"] = table.finding != "shift"
    table = table.sort_values(["_order", "psi"], ascending=[True, False], kind="stable")
    table = table.drop(columns="_order").reset_index(drop=True)
    shifted = (table.finding == "shift").any() or domain_finding == "shift"
    sizes = dict(num_reference=len(reference), num_current=len(current))
    return ShiftReport(
        verdict="fail" if shifted else "pass",
        summary=writing.summary(table, auc, domain_p, domain_finding, alpha, modality, **sizes),
        advice=writing.advice(table, domain_finding, leans),
        modality=modality,
        features=table,
        domain_auc=auc,
        domain_p_value=domain_p,
        domain_finding=domain_finding,
        domain_features=leans,
        examples=_examples(modality, reference, current, features, num_examples, rng),
        new_tokens=new_tokens,
        alpha=alpha,
        **sizes,
        _values={f.name: (f.reference, f.current) for f in features},
    )


def _examples(modality, reference, current, features, num_examples, rng):
    """Random examples of each side, side by side: the rows, the texts, or the features and the examples."""
    frames = []
    for side, data in (("reference", reference), ("current", current)):
        n = len(data)
        index = np.sort(rng.choice(n, min(num_examples, n), replace=False))
        if modality == "table":
            frame = data.iloc[index].reset_index(drop=True)
        elif modality == "text":
            frame = pd.DataFrame({"text": data[index]})
        else:
            frame = pd.DataFrame(
                {f.name: (f.reference if side == "reference" else f.current)[index] for f in features}
            )
            if modality == "audio":
                frame["example"] = [data[i] for i in index]
            else:
                frame["example"] = list(data[index].squeeze(-1) if data.shape[-1] == 1 else data[index])
        frame.insert(0, "index", index)
        frame.insert(0, "side", side)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)

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

Given the labels of both sides (`(x, y)` tuples), the report also tests the labels themselves (`labels`:
label shift, the class frequencies or a regression target's distribution) and whether the same inputs
now get other labels (`concept`: concept shift, from a small model trained on reference rows). Given the
column the sides were split by (`split_column`), it reports that column apart, as expected to differ.
"""

import numpy as np
import pandas as pd

from recipes.debug.shift import concept, inputs, labels
from recipes.debug.shift import features as featurize
from recipes.debug.shift import report as writing
from recipes.debug.shift.actions import ACTIONS
from recipes.debug.shift.concept import MIN_SKILL_LOST, ConceptShift
from recipes.debug.shift.domain_classifier import MIN_DOMAIN_AUC, design_matrix, domain_classifier
from recipes.debug.shift.inputs import MODALITIES
from recipes.debug.shift.labels import LabelShift
from recipes.debug.shift.report import ShiftReport
from recipes.debug.shift.statistics import MIN_PSI, compare, holm

__all__ = [
    "ACTIONS",
    "MIN_DOMAIN_AUC",
    "MIN_PSI",
    "MIN_SKILL_LOST",
    "MODALITIES",
    "ConceptShift",
    "LabelShift",
    "ShiftReport",
    "shift_report",
]


def shift_report(
    reference_data,
    current_data,
    *,
    modality=None,
    class_names=None,
    split_column=None,
    column_types=None,
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

    - table (`pandas.DataFrame`): every column, as the type `column_types` gives it or else as guessed:
      number columns as they are, string columns as dates when they parse (compared in days), as texts
      when their values average `TEXT_MIN_TOKENS` (3) tokens or more (then as below), else as
      categories; plus the share of missing values of any column that has some.
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

    Labels, when both sides are `(x, y)` tuples (`report.label_shift`, a `LabelShift`): class ids, class
    names or one-hot rows are classes, compared with the chi-square test on their counts (effect sizes:
    PSI, Cramér's V, total variation), naming the classes that moved most and giving `class_weight` (the
    class-prior ratio, for Keras's `model.fit`) and `correct_probabilities` (the prior-shift correction of a
    trained model's outputs); float labels are a regression target, compared with the KS test. Both join
    the Holm family and follow the features' rule (significant and PSI >= 0.1).

    Concept (`report.concept_shift`, a `ConceptShift`): a scikit-learn `LogisticRegression` (`Ridge` for
    numbers) learns the labels from half of the reference rows on the features above (with TF-IDF words,
    thumbnails or band energies); its per-row loss on the current rows is compared with that on the other,
    held-out half, within each class (so that a label shift alone is not taken for a concept shift): a
    one-sided stratified z-test in the Holm family. A concept shift is a significant rise that loses at least
    `MIN_SKILL_LOST` (10%) of the model's skill while the inputs did not shift ("unclear" when they did). The
    most telling pairs come with it: near-identical inputs (nearest neighbours on the standardised features)
    with different labels across the sides.

    The verdict is `"fail"` when anything shifted (inputs, labels or concept), else `"pass"`.

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

    # labels too: 2012 to mid-2014 against 2015, as the shipped task splits it by date
    train, test = weather[weather.date < "2014/07/01"], weather[weather.date >= "2015/01/01"]
    report = shift_report((train.drop(columns="weather"), train.weather), (test.drop(columns="weather"), test.weather),
                          split_column="date")
    print(report.label_shift.moved, report.label_shift.class_weight["rain"])  # ['fog', 'rain'] 0.054...
    ```

    Args:
        reference_data: The data the model was trained on: a `pandas.DataFrame`, a sequence of strings,
            an image array, or waveforms (see above); or an `(x, y)` tuple of those inputs and their labels
            (an array or Series: class ids, class names, one-hot rows, or float targets).
        current_data: The data to compare, of the same modality (and columns, channels, sample rate); an
            `(x, y)` tuple exactly when `reference_data` is one.
        modality: One of `MODALITIES` (`"text"`, `"image"`, `"audio"`, `"table"`) or `None` (default):
            inferred from the data, a `DataFrame` being a table, strings text, a 3-D or 4-D array images,
            waveforms audio when `sample_rate` is given.
        class_names: Optional list naming integer class ids (`class_names[i]` for id `i`), for labels.
        split_column: Optional column (table) the two sides were split by: a date, a group or a key column
            (a `recipes.tasks.Task`'s `split_plan.column`). It differs by design, so it is reported apart
            (`report.expected`) and kept out of the verdict, the Holm family and the domain classifier; a
            date is compared by its day of year and day of week instead.
        column_types: Optional dict (table) from a column to the type it is compared as: `"number"`,
            `"category"`, `"text"`, or `"date"`, which may name the strptime format the dates are written in,
            as `recipes.tasks.Task.column_types` does (`"date (%d/%m/%Y)"`: day-first dates are read day
            first, and a value not in that format is an error); `shift_report(..., column_types=task.column_types)`
            compares a file with a task's training data as the task reads it. The other columns' types are
            guessed (above); `report.column_types` holds every column's.
        alpha: Float in (0, 1), defaults to 0.01. Family-wise false-alarm rate over all the tests.
        seed: Int >= 0, defaults to 0. Seeds the vocabulary halves, the cross-validation folds and the
            examples shown.
        columns: Optional list of column names to compare (table). Defaults to all of `reference_data`'s.
        sample_rate: Int, sampling rate of the waveforms in Hz; required for audio.
        classifier: Optional scikit-learn classifier with `predict_proba` for the domain classifier,
            e.g. `sklearn.ensemble.HistGradientBoostingClassifier()` for interactions. Defaults to a
            `LogisticRegression`.
        num_examples: Int >= 0, defaults to 3. Random examples shown per side, and near-identical pairs
            with different labels shown at most.
        cv: Int >= 2, defaults to 2. Cross-validation folds of the domain classifier: each fold's held-out
            AUC is tested on its own, so fewer, larger folds test with more power.

    Returns:
        A `ShiftReport`.
    """
    (reference, ref_labels), (current, cur_labels) = inputs.labelled(reference_data, current_data)
    modality = inputs.check_arguments(reference, current, modality, alpha, seed, sample_rate, num_examples, cv)
    if split_column is not None and modality != "table":
        raise ValueError(
            f"`split_column` names a column of a table; these are {modality} data. Received: "
            f"split_column={split_column!r}"
        )
    if ref_labels is not None:
        ref_labels = labels.as_labels(ref_labels, "reference_data")
        cur_labels = labels.as_labels(cur_labels, "current_data")
        problem = labels.problem_of(ref_labels, cur_labels)
        names = labels.class_names_of(ref_labels, cur_labels, class_names) if problem == "classification" else None
    elif class_names is not None:
        raise ValueError(
            "`class_names` names the classes of labels: pass (x, y) tuples as `reference_data` and "
            "`current_data`. Received: inputs alone"
        )
    if column_types is not None and modality != "table":
        raise ValueError(
            f"`column_types` types the columns of a table; these are {modality} data. Received: "
            f"column_types={column_types!r}"
        )
    rng = np.random.default_rng(seed)
    new_tokens, kinds = [], {}
    if modality == "table":
        reference, current, features, kinds = featurize.table_features(
            reference, current, columns, rng, split_column, column_types
        )
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

    design = design_matrix(features, extra)
    rows = [compare(feature) for feature in features]
    tested = [row for row, feature in zip(rows, features) if not feature.expected]
    expected = [row for row, feature in zip(rows, features) if feature.expected]
    auc, domain_p, leans = domain_classifier(design, classifier, cv, seed)
    p_values = [row["p_value"] for row in tested] + [domain_p]
    label_fields = concept_fields = None
    if ref_labels is not None:
        label_fields = labels.compare_labels(ref_labels, cur_labels, problem, names)
        sides = {"reference": reference, "current": current}
        concept_fields = concept.compare_concept(
            design,
            ref_labels,
            cur_labels,
            problem,
            names,
            seed,
            num_examples,
            lambda side, i: _example(modality, sides[side], i),
        )
        p_values.append(label_fields["p_value"])
        if concept_fields is not None:
            p_values.append(concept_fields["p_value"])
    p_holm = holm(p_values)
    for row, adjusted in zip(tested, p_holm):
        row["p_holm"] = adjusted
        row["finding"] = "shift" if adjusted < alpha and row["psi"] >= MIN_PSI else "no shift"
        if row["finding"] == "no shift":
            row["action"] = "-"
    for row in expected:
        row.update(p_holm=np.nan, finding="expected to differ", action="-")
    domain_finding = "shift" if p_holm[len(tested)] < alpha and auc >= MIN_DOMAIN_AUC else "no shift"
    table, expected = _table(tested), _table(expected)
    inputs_shifted = bool((table.finding == "shift").any()) or domain_finding == "shift"
    label_report = concept_report = None
    if label_fields is not None:
        label_report = labels.label_shift(label_fields, p_holm[len(tested) + 1], alpha)
        if concept_fields is None:
            concept_report = concept.not_tested(
                f"too few rows (at least {concept.MIN_ROWS} held-out reference and current rows of shared classes, "
                "and two classes to learn)"
            )
        else:
            concept_report = concept.concept_shift(concept_fields, p_holm[len(tested) + 2], alpha, inputs_shifted)
    sizes = dict(num_reference=len(reference), num_current=len(current))
    input_summary = writing.summary(table, auc, domain_p, domain_finding, alpha, modality, expected=expected, **sizes)
    input_advice = writing.advice(table, domain_finding, leans)
    shown = None if ref_labels is None else (_label_names(ref_labels, names), _label_names(cur_labels, names))
    return ShiftReport(
        **writing.combined(input_summary, input_advice, inputs_shifted, label_report, concept_report),
        modality=modality,
        features=table,
        domain_auc=auc,
        domain_p_value=domain_p,
        domain_finding=domain_finding,
        domain_features=leans,
        examples=_examples(modality, reference, current, features, num_examples, rng, shown),
        new_tokens=new_tokens,
        alpha=alpha,
        **sizes,
        split_column=split_column,
        column_types=kinds,
        expected=expected,
        label_shift=label_report,
        concept_shift=concept_report,
        _values={f.name: (f.reference, f.current) for f in features},
    )


def _table(rows):
    """The features table: shifted first, then the largest PSI."""
    table = pd.DataFrame(
        rows,
        columns=[
            "feature",
            "type",
            "test",
            "statistic",
            "p_value",
            "p_holm",
            "psi",
            "distance",
            "change",
            "finding",
            "action",
        ],
    )
    table["_order"] = table.finding != "shift"
    table = table.sort_values(["_order", "psi"], ascending=[True, False], kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)


def _label_names(y, names):
    return y if names is None else np.array([names[v] for v in y.tolist()], dtype=object)


def _example(modality, data, i):
    """One example as shown beside its pair: a table row as a dict, a text, an image or a waveform."""
    if modality == "table":
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in data.iloc[i].to_dict().items()}
    if modality == "image":
        return data[i].squeeze(-1) if data.shape[-1] == 1 else data[i]
    return data[i]


def _examples(modality, reference, current, features, num_examples, rng, labels_shown=None):
    """Random examples of each side, side by side: the rows, the texts, or the features and the examples; and
    their labels when given."""
    frames = []
    for (side, data), shown in zip((("reference", reference), ("current", current)), labels_shown or (None, None)):
        n = len(data)
        index = np.sort(rng.choice(n, min(num_examples, n), replace=False))
        if modality == "table":
            frame = data.iloc[index].reset_index(drop=True)
        elif modality == "text":
            frame = pd.DataFrame({"text": data[index]})
        else:
            frame = pd.DataFrame({f.name: (f.reference if side == "reference" else f.current)[index] for f in features})
            if modality == "audio":
                frame["example"] = [data[i] for i in index]
            else:
                frame["example"] = list(data[index].squeeze(-1) if data.shape[-1] == 1 else data[index])
        if shown is not None:
            frame["label"] = shown[index]
        frame.insert(0, "index", index)
        frame.insert(0, "side", side)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)

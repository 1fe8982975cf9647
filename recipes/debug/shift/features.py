"""What is compared: each modality turned into a few features a person can read.

Tables: every column (numbers, dates in days, categories, long strings as text, missing shares); the column
the two sides were split by is expected to differ, and a split date is also compared by its seasonal parts
(day of year, day of week), which a model that reads dates through `recipes.layers.DateFeatures` sees. Text:
length in tokens and out-of-vocabulary rate. Images: brightness, contrast, channel means. Audio: loudness,
durations, zero-crossing rate, spectral centroid. Each modality also gives the domain classifier something
richer to read (TF-IDF words, thumbnails, band energies).
"""

import dataclasses
import re
import warnings

import numpy as np
import pandas as pd

from recipes.debug.shift.inputs import describe

# A string column is a date column when this share of its values parse as dates ...
DATE_SHARE = 0.95
# ... a text column when its values have this many tokens on average, else a categorical column, whose
# `MAX_CATEGORIES` most frequent values on each side are kept (the rest pooled as "(other)").
TEXT_MIN_TOKENS = 3.0
MAX_CATEGORIES = 50
# The kinds a table column is compared as (`recipes.tasks`'s column types).
COLUMN_KINDS = ("number", "category", "date", "text")
TOKEN = re.compile(r"[\w']+")
_NUM_BANDS = 16


@dataclasses.dataclass(frozen=True)
class Feature:
    """One feature of both sides: its values on each, and the family that says what to do when it moves."""

    name: str
    type: str  # "numeric" or "categorical"
    reference: np.ndarray
    current: np.ndarray
    family: str  # a key of `recipes.debug.shift.actions.ACTIONS`
    classify: bool = True  # given to the domain classifier
    expected: bool = False  # the split column: expected to differ, kept out of the verdict and the classifier


def paired(reference, current):
    """`Feature`s from two lists of `(name, type, values, family)`, one per side, of the same features."""
    return [
        Feature(name, kind, values, other[2], family) for (name, kind, values, family), other in zip(reference, current)
    ]


def tokens(text):
    """Lower-cased word tokens, as Keras's TextVectorization standardises by default (punctuation stripped)."""
    return TOKEN.findall(text.lower())


def text_features(reference, current, prefix, rng):
    """Length, out-of-vocabulary rate, and the top new tokens.

    The OOV rate of a reference text against the reference vocabulary would be 0 by construction, so the
    vocabulary comes from a random half of the reference and the other half is compared with the current
    texts. Measuring each reference half against the other instead (cross-fitting) keeps all the texts but
    ties every rate to the same split, and the KS test then raised too many false alarms on random splits.
    """
    ref_tokens = [tokens(t) for t in reference]
    cur_tokens = [tokens(t) for t in current]
    in_vocabulary = rng.permutation(len(reference)) < len(reference) // 2
    vocabulary = set().union(*(found for found, v in zip(ref_tokens, in_vocabulary) if v))

    def oov(found):
        return sum(t not in vocabulary for t in found) / len(found) if found else np.nan

    # NaN for the half that built the vocabulary: the test drops it, the domain classifier imputes it
    ref_oov = np.array([np.nan if v else oov(t) for t, v in zip(ref_tokens, in_vocabulary)])
    cur_oov = np.array([oov(t) for t in cur_tokens])
    features = [
        Feature(
            f"{prefix}length (tokens)",
            "numeric",
            np.array([len(t) for t in ref_tokens], float),
            np.array([len(t) for t in cur_tokens], float),
            "text length",
        ),
        # the domain classifier would tell the vocabulary half by its missing rate: it gets the words instead
        Feature(f"{prefix}out-of-vocabulary rate", "numeric", ref_oov, cur_oov, "out-of-vocabulary", False),
    ]
    vocabulary = set().union(*ref_tokens)
    new = pd.Series([t for found in cur_tokens for t in found if t not in vocabulary], dtype=object)
    new_tokens = [(str(t), int(c)) for t, c in new.value_counts().head(10).items()]
    return features, new_tokens


def tfidf(reference, current):
    """TF-IDF word features of both sides stacked (reference first), and their names."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(token_pattern=TOKEN.pattern, min_df=2, max_features=20_000, sublinear_tf=True)
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format": then most values do not parse, as wanted
        parsed = pd.to_datetime(strings, errors="coerce")
    return parsed.notna().mean() >= DATE_SHARE


def _days(values):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values, errors="coerce")
    return ((parsed - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)


def _seasonal_parts(column, reference, current):
    """Day of year (a number) and day of week (a category) of a date column on both sides."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, cur = pd.to_datetime(reference, errors="coerce"), pd.to_datetime(current, errors="coerce")
    day_of_year = [d.dt.dayofyear.to_numpy(dtype=float, na_value=np.nan) for d in (ref, cur)]
    day_of_week = [d.dt.day_name().str[:3].fillna("(missing)").to_numpy() for d in (ref, cur)]
    return [
        Feature(f"{column}: day of year", "numeric", *day_of_year, "season"),
        Feature(f"{column}: day of week", "categorical", *day_of_week, "season"),
    ]


def column_kinds(reference, columns, column_types):
    """The kind each column is compared as: `column_types`'s when given, else guessed from `reference`.

    A kind is one of `COLUMN_KINDS`; a date's strptime format may follow it in parentheses, as
    `recipes.tasks.Task.column_types` writes it (`"date (%d/%m/%Y)"`)."""
    column_types = {} if column_types is None else column_types
    if not isinstance(column_types, dict):
        raise ValueError(f"`column_types` must be a dict from column to type. Received: {column_types!r}")
    kinds = {}
    for column, given in column_types.items():
        if column not in reference.columns:
            raise ValueError(
                f"`column_types` names a column `reference_data` lacks; it has {list(reference.columns)}. "
                f"Received: {column!r}"
            )
        kind = given.split(" (", 1)[0] if isinstance(given, str) else None
        if kind not in COLUMN_KINDS or not (given == kind or (kind == "date" and given.endswith(")"))):
            raise ValueError(
                f"`column_types[{column!r}]` must be one of {COLUMN_KINDS} (a date may name its format: "
                f"'date (%d/%m/%Y)'). Received: {given!r}"
            )
        kinds[column] = str(given)
    for column in columns:
        if column not in kinds:
            kinds[column] = _guess_kind(reference[column])
    return {column: kinds[column] for column in columns}


def _guess_kind(values):
    if pd.api.types.is_bool_dtype(values):
        return "category"
    if pd.api.types.is_numeric_dtype(values):
        return "number"
    if _is_date(values):
        return "date"
    texts = values.fillna("").astype(str)
    return "text" if texts.map(lambda t: len(tokens(t))).mean() >= TEXT_MIN_TOKENS else "category"


def _numbers(values, column, name):
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(float)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values[numbers.isna() & values.notna()]
    if len(bad):
        raise ValueError(
            f"Column {column!r} holds numbers, but `{name}` holds {bad.iloc[0]!r} in it (row "
            f"{bad.index[0]}): check the pipeline that writes it"
        )
    return numbers.to_numpy(float)


def _dates(values, column, given, name):
    """A date column parsed with its format (`"date (FORMAT)"`), or as pandas reads dates (`"date"`)."""
    date_format = given[len("date (") : -1] if given != "date" else None
    if date_format == "stored as dates" or pd.api.types.is_datetime64_any_dtype(values):
        date_format = None  # the file stores timestamps (`recipes.tasks.columns.STORED_DATES`)
    if date_format is None:
        return values
    texts = values.map(lambda v: str(v).strip(), na_action="ignore")
    parsed = pd.to_datetime(texts, format=date_format, errors="coerce")
    bad = values[parsed.isna() & values.notna()]
    if len(bad):
        raise ValueError(
            f"Column {column!r} holds dates written {date_format!r}, but `{name}` holds {bad.iloc[0]!r} "
            f"in it (row {bad.index[0]}): check the pipeline that writes it"
        )
    return parsed


def _strings(values):
    return values if values.dtype == object else values.map(str, na_action="ignore").astype(object)


def table_features(reference, current, columns, rng, split_column=None, column_types=None):
    """`(reference, current, features, kinds)`: both frames narrowed to `columns`, one or two features per
    column, and the kind each column was compared as (`column_kinds`).

    The features of `split_column` are marked `expected` (and not given to the domain classifier); when it
    holds dates, its day of year and day of week are compared as ordinary features."""
    if not isinstance(current, pd.DataFrame):
        raise ValueError(f"`current_data` must be a DataFrame like `reference_data`. Received: {describe(current)}")
    columns = list(reference.columns) if columns is None else list(columns)
    if split_column is not None and split_column not in columns:
        raise ValueError(
            f"`split_column` must be one of the columns compared, {columns}. Received: split_column={split_column!r}"
        )
    for frame, name in ((reference, "reference_data"), (current, "current_data")):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"`{name}` lacks the columns {missing}; it has {list(frame.columns)}. Pass columns=[...] to "
                "compare a subset"
            )
    if not columns:
        raise ValueError("`columns` must name at least one column. Received: columns=[]")
    kinds = column_kinds(reference, columns, column_types)
    reference, current = reference[columns].reset_index(drop=True), current[columns].reset_index(drop=True)
    features = []
    for column in columns:
        ref, cur = reference[column], current[column]
        kind = kinds[column].split(" (", 1)[0]
        start = len(features)
        if ref.isna().any() or cur.isna().any():
            features.append(
                Feature(f"{column}: missing", "categorical", ref.isna().to_numpy(), cur.isna().to_numpy(), "missing")
            )
        if kind == "category" and pd.api.types.is_bool_dtype(ref):
            features.append(
                Feature(column, "categorical", ref.astype(str).to_numpy(), cur.astype(str).to_numpy(), "categorical")
            )
        elif kind == "number":
            if column not in (column_types or {}) and not pd.api.types.is_numeric_dtype(cur):
                raise ValueError(
                    f"Column {column!r} is numeric in `reference_data` but {cur.dtype} in `current_data` "
                    f"(e.g. {cur.dropna().iloc[0]!r} if any): check the pipeline that writes it"
                )
            features.append(
                Feature(
                    column,
                    "numeric",
                    _numbers(ref, column, "reference_data"),
                    _numbers(cur, column, "current_data"),
                    "numeric",
                )
            )
        elif kind == "date":
            ref, cur = (
                _dates(ref, column, kinds[column], "reference_data"),
                _dates(cur, column, kinds[column], "current_data"),
            )
            features.append(Feature(column, "numeric", _days(ref), _days(cur), "date"))
        elif kind == "text":
            ref_text, cur_text = ref.fillna("").astype(str), cur.fillna("").astype(str)
            text, _ = text_features(ref_text.to_numpy(), cur_text.to_numpy(), f"{column}: ", rng)
            features.extend(text)
        else:
            ref, cur = _strings(ref), _strings(cur)
            # the most frequent values of each side keep their names, so that new categories are named
            kept = set(ref.value_counts().index[:MAX_CATEGORIES]) | set(cur.value_counts().index[:MAX_CATEGORIES])
            pooled = [
                s.where(s.isin(kept) | s.isna(), "(other)").fillna("(missing)").astype(str).to_numpy()
                for s in (ref, cur)
            ]
            features.append(Feature(column, "categorical", *pooled, "categorical"))
        if column == split_column:
            features[start:] = [dataclasses.replace(f, classify=False, expected=True) for f in features[start:]]
            if features[-1].family == "date":
                features.extend(_seasonal_parts(column, ref, cur))
    return reference, current, features, kinds


def image_features(images):
    """`(name, type, values, family)` per feature of each image: brightness, contrast, channel means."""
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


def thumbnails(images, size=8):
    """Each image average-pooled to at most `size` x `size` (channels averaged): coarse content for the classifier."""
    gray = images.astype(np.float64).mean(axis=-1)
    rows = np.array_split(np.arange(gray.shape[1]), min(size, gray.shape[1]))
    cols = np.array_split(np.arange(gray.shape[2]), min(size, gray.shape[2]))
    pooled = np.array([[gray[:, r][:, :, c].mean(axis=(1, 2)) for c in cols] for r in rows])  # (rows, cols, N)
    pooled = pooled.transpose(2, 0, 1).reshape(len(images), -1)
    return pooled, [f"thumbnail row {r} col {c}" for r in range(len(rows)) for c in range(len(cols))]


def audio_features(clips, sample_rate):
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

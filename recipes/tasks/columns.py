"""The type of a table's column, inferred from a sample of its values, and the values encoded for a model.

A column is a `number`, a `category`, a `date` (strings in one of many common
formats, e.g. `10/31/2019`, `2019-10-31`, `31.10.2019`, with or without a
time) or free `text`. Encoding turns raw values into what the factories of
`models.tabular` and `models.text` take, which is what their served models
take: float32 numbers (NaN where one is missing: the model fills it), strings
for categories and text, and dates as the file writes them (the model's
`recipes.layers.DateFeatures` parses them in the column's format; dates a
Parquet file stores as timestamps are written `YYYY-MM-DD`).
Every value that does not fit its column's type is a `ValueError` quoting it
and its row (rows count from 1 after the header, as `recipes predict` counts
them).
"""

import dataclasses

import numpy as np
import pandas as pd

KINDS = ("number", "category", "date", "text")

_DAYS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%Y.%m.%d",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%m/%d/%y",
    "%d/%m/%y",
    "%d.%m.%y",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%b %d %Y",
    "%d-%b-%Y",
    "%Y%m%d",
)
_TIMES = (
    "",
    " %H:%M",
    " %H:%M:%S",
    " %H:%M:%S.%f",
    "T%H:%M",
    "T%H:%M:%S",
    "T%H:%M:%S.%f",
    "T%H:%M:%SZ",
    "T%H:%M:%S.%fZ",
    "T%H:%M:%S%z",
    " %H:%M:%S%z",
    " %I:%M %p",
    " %I:%M:%S %p",
)
# Tried in this order: year first, then month first (US) before day first when both read every value.
DATE_FORMATS = tuple(day + time for day in _DAYS for time in _TIMES)
STORED_DATES = "stored as dates"  # the date_format of a column the file stores as dates (Parquet timestamps)
STORED_DATE_FORMAT = "%Y-%m-%d"  # how such dates reach the model

# Free text: several words a value on average, and mostly distinct values (a category repeats).
TEXT_MIN_WORDS = 3
TEXT_MIN_DISTINCT = 0.5
# A string column most of whose values are dates in one format is a date column; the others are errors.
DATE_MIN_SHARE = 0.9
# A numeric target of few distinct integers is a set of classes.
MAX_INTEGER_CLASSES = 20


@dataclasses.dataclass(frozen=True)
class ColumnType:
    """A column's kind (one of `KINDS`) and, for dates, the format its values are written in."""

    kind: str
    date_format: str | None = None

    def __str__(self):
        return f"date ({self.date_format})" if self.kind == "date" else self.kind


def row_of(index):
    """The row number users see (from 1, after the header) of a frame index (from 0)."""
    return int(index) + 1


def _present(series):
    return series[series.notna()]


def as_text(series):
    """Values as strings: integral floats without `.0` (a JSON column with a gap turns 1 into 1.0), missing as ""."""
    if pd.api.types.is_bool_dtype(series):
        return series.map(lambda v: "" if pd.isna(v) else str(bool(v)).lower()).to_numpy(dtype=object)
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy(dtype="float64")
        whole = np.isfinite(values) & (values == np.round(values))
        return np.array(
            ["" if np.isnan(v) else str(int(v)) if w else repr(float(v)) for v, w in zip(values, whole)], dtype=object
        )
    return np.array(["" if _missing(v) else _text_of(v) for v in series.to_numpy(dtype=object)], dtype=object)


def _missing(value):
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT


def _text_of(value):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value == round(value):
        return str(int(value))
    return str(value)


def _parsed_share(values, date_format):
    parsed = pd.to_datetime(pd.Series(values), format=date_format, errors="coerce")
    return 1.0 - float(parsed.isna().mean())


def detect_date_format(values):
    """The first of `DATE_FORMATS` that reads the most of `values` (strings), and the share it reads.

    Returns:
        `(date_format, share)`, or `(None, 0.0)` when no format reads most
        of the first 20 distinct values.
    """
    distinct = pd.unique(np.asarray([str(v).strip() for v in values], dtype=object))
    if len(distinct) == 0 or not any(ch.isdigit() for ch in distinct[0]):
        return None, 0.0
    probe = distinct[:20]
    if np.median([len(v) for v in probe]) > 40:  # sentences, not dates
        return None, 0.0
    best, best_share = None, 0.0
    for date_format in DATE_FORMATS:
        share = _parsed_share(probe, date_format)
        if share >= 0.8 and len(distinct) > len(probe):
            share = _parsed_share(distinct, date_format)
        if share > best_share:
            best, best_share = date_format, share
            if share == 1.0:
                break
    return (best, best_share) if best_share >= 0.8 else (None, 0.0)


def _bad_date_error(series, date_format, name):
    """The error quoting the first value of `series` that `date_format` does not read, and its row."""
    texts = pd.Series([str(v).strip() for v in series.to_numpy(dtype=object)], index=series.index)
    parse_format = None if date_format == STORED_DATES else date_format
    bad = np.flatnonzero(pd.to_datetime(texts, format=parse_format, errors="coerce").isna().to_numpy())
    return ValueError(
        f"date column {name!r} has a value that is not a date in its format {date_format!r} "
        f"(inferred from the first rows, or pass column_types={{{name!r}: 'category'}} to read it as strings): "
        f"{series.iloc[bad[0]]!r} at row {row_of(series.index[bad[0]])}"
        + (f", and {bad.size - 1} more" if bad.size > 1 else "")
    )


def _is_stored_date(series):
    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    present = _present(series)
    return len(present) > 0 and all(hasattr(v, "year") and hasattr(v, "month") for v in present.iloc[:20])


def infer_column_type(series, kind=None, name="column"):
    """The `ColumnType` of a sample of a column.

    Args:
        series: A `pandas.Series` of raw values (strings read from a CSV, or
            typed values from JSON Lines or Parquet).
        kind: Optional kind the user gave (one of `KINDS`); for `"date"` the
            format is still detected.
        name: The column's name, for messages.

    Returns:
        A `ColumnType`.
    """
    present = _present(series)
    if _is_stored_date(series):
        if kind not in (None, "date"):
            return ColumnType(kind)
        return ColumnType("date", STORED_DATES)
    if kind == "date":
        date_format, share = detect_date_format(present.to_numpy()) if len(present) else (None, 0.0)
        if date_format is None:
            example = str(present.iloc[0]) if len(present) else "(no values)"
            raise ValueError(
                f"column {name!r} is to be a date, but its values are in no date format recognised "
                f"(such as 10/31/2019, 2019-10-31, 31.10.2019, with or without a time). Received: {example!r}"
            )
        if share < 1.0:
            raise _bad_date_error(present, date_format, name)
        return ColumnType("date", date_format)
    if kind is not None:
        return ColumnType(kind)
    if len(present) == 0 or pd.api.types.is_bool_dtype(series):
        return ColumnType("category")
    if pd.api.types.is_numeric_dtype(series):
        return ColumnType("number")
    values = present.to_numpy(dtype=object)
    if all(isinstance(v, bool) for v in values):
        return ColumnType("category")
    if not pd.to_numeric(pd.Series(values), errors="coerce").isna().any():
        return ColumnType("number")
    texts = np.array([str(v).strip() for v in values], dtype=object)
    date_format, share = detect_date_format(texts)
    if date_format is not None and share >= DATE_MIN_SHARE:
        if share < 1.0:  # a date column with a typo: an error, not a column of categories
            raise _bad_date_error(present, date_format, name)
        return ColumnType("date", date_format)
    words = np.mean([len(text.split()) for text in texts])
    distinct = len(pd.unique(texts)) / len(texts)
    return ColumnType("text" if words >= TEXT_MIN_WORDS and distinct >= TEXT_MIN_DISTINCT else "category")


def infer_problem(series):
    """`"classification"` or `"regression"` from a sample of the target.

    Strings and booleans are classes; numbers are classes when they are all
    integers and at most `MAX_INTEGER_CLASSES` distinct values, else a
    quantity to regress.
    """
    present = _present(series)
    if len(present) == 0 or pd.api.types.is_bool_dtype(series):
        return "classification"
    numbers = pd.to_numeric(pd.Series(present.to_numpy(dtype=object)), errors="coerce")
    if numbers.isna().any() or any(isinstance(v, bool) for v in present.to_numpy(dtype=object)):
        return "classification"
    values = numbers.to_numpy(dtype="float64")
    integral = np.all(values == np.round(values))
    return "classification" if integral and len(np.unique(values)) <= MAX_INTEGER_CLASSES else "regression"


def request_dtype(series):
    """The dtype of a column as a client sends it in a row of the file: `"bool"`, `"float32"` or `"string"`.

    What a JSON row or a tensor built from `pandas.read_csv` holds: booleans,
    numbers (integers too, and NaN where one is missing) or strings. A column
    the model does not read (the target, a key or group column) is declared
    so in the export, so a row of the file is a request as it stands.
    """
    present = _present(series)
    if pd.api.types.is_bool_dtype(series) or (
        len(present) and all(str(v).strip().lower() in ("true", "false") for v in present.to_numpy(dtype=object))
    ):
        return "bool"
    if len(present) == 0:
        return "string"
    if pd.api.types.is_numeric_dtype(series):
        return "float32"
    values = present.to_numpy(dtype=object)
    if any(isinstance(v, bool) for v in values) or pd.to_numeric(pd.Series(values), errors="coerce").isna().any():
        return "string"
    return "float32"


# The forms `recipes.layers.DateFeatures` reads without a format: a column written in one of them is served
# with that default parser, so its model also takes the other two (`10/31/2019` as well as `2019/10/31`).
DEFAULT_DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%Y/%m/%d")


def model_date_format(column_type):
    """The strptime format of the date strings a model receives for a date column (`None`: DateFeatures' default)."""
    date_format = STORED_DATE_FORMAT if column_type.date_format == STORED_DATES else column_type.date_format
    return None if date_format in DEFAULT_DATE_FORMATS else date_format


def parse_dates(series, column_type, name):
    """A column's values as `datetime64[ns]` (naive, UTC for zoned times); a missing or bad value is an error."""
    present = series.notna().to_numpy()
    if not present.all():
        row = row_of(series.index[np.flatnonzero(~present)[0]])
        raise ValueError(
            f"date column {name!r} has no value at row {row}: every row needs a date (fill or drop such rows)"
        )
    if column_type.date_format == STORED_DATES:
        parsed = pd.to_datetime(series, errors="coerce")
    else:
        texts = pd.Series([str(v).strip() for v in series.to_numpy(dtype=object)], index=series.index)
        parsed = pd.to_datetime(texts, format=column_type.date_format, errors="coerce")
    if parsed.isna().any():
        raise _bad_date_error(series, column_type.date_format, name)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def numbers_of(series, name):
    """A number column as float64 with NaN for missing values; a value that is not a number is an error."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype="float64")
    numbers = pd.to_numeric(series, errors="coerce")
    bad = np.flatnonzero(numbers.isna().to_numpy() & series.notna().to_numpy())
    if bad.size:
        raise ValueError(
            f"column {name!r} holds numbers (inferred from the first rows), but row {row_of(series.index[bad[0]])} "
            f"holds {series.iloc[bad[0]]!r}; pass column_types={{{name!r}: 'category'}} (or 'text') to read it "
            "as strings"
        )
    return numbers.to_numpy(dtype="float64")


def encode(series, column_type, name, fill_value=None):
    """A column's values as the model takes them.

    Numbers become float32 (missing ones `fill_value`, or NaN when it is
    `None`); categories and text strings (missing ones ""); dates the strings
    the file has (checked: every one parses), or `YYYY-MM-DD` for dates stored
    as timestamps.
    """
    if column_type.kind == "number":
        values = numbers_of(series, name)
        if fill_value is not None:
            values = np.where(np.isnan(values), fill_value, values)
        return values.astype("float32")
    if column_type.kind == "date":
        parsed = parse_dates(series, column_type, name)
        if column_type.date_format == STORED_DATES:
            return parsed.dt.strftime(STORED_DATE_FORMAT).to_numpy(dtype=object)
        return np.array([str(v).strip() for v in series.to_numpy(dtype=object)], dtype=object)
    return as_text(series)

"""Raw date strings to calendar features, inside the model."""

import math
import re

import keras
import tensorflow as tf

_MONTH_FIRST = r"\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*"  # 10/31/2019
_YEAR_FIRST = r"\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})\s*"  # 2019-10-31, 2019/10/31
FEATURE_NAMES = (
    [f"day_of_week={day}" for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")]
    + [f"month={month}" for month in range(1, 13)]
    + ["day_of_month_sin", "day_of_month_cos"]
)
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# What each strptime directive of a date format matches; the date's own fields are captured.
_DIRECTIVES = {
    "Y": (r"(\d{4})", "year"),
    "y": (r"(\d{2})", "short_year"),
    "m": (r"(\d{1,2})", "month"),
    "d": (r"(\d{1,2})", "day"),
    "b": (r"([A-Za-z]{3})", "month_name"),
    "B": (r"([A-Za-z]+)", "month_name"),
    "H": (r"\d{1,2}", None),
    "I": (r"\d{1,2}", None),
    "M": (r"\d{1,2}", None),
    "S": (r"\d{1,2}", None),
    "f": (r"\d{1,9}", None),
    "p": (r"(?:[AaPp][Mm])", None),
    "z": (r"(?:Z|[+-]\d{2}:?\d{2})", None),
}


def date_pattern(date_format):
    """The regular expression a strptime `date_format` (`"%d.%m.%Y %H:%M"`) matches, and its captured fields.

    Returns:
        `(pattern, fields)`: `fields` names the captured groups in order
        (`"year"`, `"short_year"`, `"month"`, `"month_name"`, `"day"`).
    """
    pattern, fields, position = [r"\s*"], [], 0
    for directive in re.finditer(r"%(.)", date_format):
        pattern.append(re.escape(date_format[position : directive.start()]))
        position = directive.end()
        letter = directive.group(1)
        if letter not in _DIRECTIVES:
            raise ValueError(
                f"`date_format` may use the directives {' '.join('%' + d for d in _DIRECTIVES)}. "
                f"Received: date_format={date_format!r}"
            )
        regex, field = _DIRECTIVES[letter]
        pattern.append(regex)
        if field is not None:
            fields.append(field)
    pattern.append(re.escape(date_format[position:]) + r"\s*")
    missing = {"year", "month", "day"} - {f.replace("short_", "").replace("_name", "") for f in fields}
    if missing:
        raise ValueError(f"`date_format` must hold a year, a month and a day. Received: date_format={date_format!r}")
    return "".join(pattern), fields


def _days_in_month(year, month):
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = tf.constant([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    return tf.gather(days, tf.clip_by_value(month - 1, 0, 11)) + tf.cast(leap & (month == 2), tf.int32)


def _days_since_epoch(year, month, day):
    """Days from 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's `days_from_civil`)."""
    year = year - tf.cast(month <= 2, tf.int32)
    era = tf.math.floordiv(year, 400)
    year_of_era = year - era * 400
    shifted_month = tf.where(month > 2, month - 3, month + 9)
    day_of_year = (153 * shifted_month + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _field(dates, pattern, group):
    return tf.strings.regex_replace(dates, f"^{pattern}$", f"\\{group}")


def _month_number(names):
    """1-12 for month names or their first three letters (any case), 0 for anything else."""
    first = tf.strings.lower(tf.strings.substr(names, 0, 3))
    matches = tf.equal(first[:, None], tf.constant(_MONTH_NAMES)[None, :])
    return tf.where(tf.reduce_any(matches, axis=1), tf.cast(tf.argmax(matches, axis=1), tf.int32) + 1, 0)


@keras.saving.register_keras_serializable(package="recipes")
class DateFeatures(keras.layers.Layer):
    """Parses raw date strings into day-of-week, month and day-of-month features.

    Without a `date_format`, accepts `MM/DD/YYYY` (`10/31/2019`, also
    `1/5/2019`) and year-first `YYYY-MM-DD` or `YYYY/MM/DD` (`2019-10-31`).
    With one, the strptime format the column is written in, as
    `recipes.tasks` infers it: `"%d.%m.%Y"` (`31.10.2019`),
    `"%Y-%m-%dT%H:%M:%SZ"`, `"%b %d, %Y"` (`Oct 31, 2019`), `"%d/%m/%y"`...;
    a time, if any, must be there and is ignored (the date is the one written,
    whatever its time zone). Parsing uses `tf.strings` ops only, so it is part
    of the exported graph and clients send the date as they store it. Output
    per date, in `FEATURE_NAMES` order: one-hot day of the week (Monday first,
    as Python's `weekday()`), one-hot month, and the day of the month on a
    circle (sine, cosine), so that the 31st sits next to the 1st.

    A string that is not such a date, or names a day that does not exist
    (`02/30/2019`), fails the whole call with `InvalidArgumentError` quoting
    the offending values: never a silent zero.

    Example:

    >>> import tensorflow as tf
    >>> from recipes.layers import DateFeatures
    >>> features = DateFeatures()(tf.constant(["10/31/2019", "2019-11-01"]))
    >>> features.shape, int(features[0, 3]), int(features[1, 4])  # Thursday, Friday
    (TensorShape([2, 21]), 1, 1)
    >>> int(DateFeatures("%d.%m.%Y %H:%M")(tf.constant(["31.10.2019 14:30"]))[0, 3])
    1

    Args:
        date_format: Optional strptime format of the dates (directives
            `%Y %y %m %d %b %B`, and `%H %I %M %S %f %p %z` for a time),
            defaults to `None`: `MM/DD/YYYY` or `YYYY-MM-DD`.

    Input shape: `(batch,)` or `(batch, 1)` strings.
    Output shape: `(batch, 21)` float32.
    """

    def __init__(self, date_format=None, **kwargs):
        super().__init__(**kwargs)
        if date_format is not None:
            date_pattern(date_format)  # checks it
        self.date_format = date_format

    def _parse_default(self, dates):
        month_first = tf.strings.regex_full_match(dates, _MONTH_FIRST)
        year_first = tf.strings.regex_full_match(dates, _YEAR_FIRST)
        # Rows of another shape become 1970-01-01 only so that the arithmetic runs; the assertion fails them.
        digits = tf.where(month_first | year_first, tf.strings.regex_replace(dates, "[-/]", " "), "1970 1 1")
        numbers = tf.strings.to_number(
            tf.strings.split(tf.strings.strip(digits)).to_tensor(shape=[None, 3]), out_type=tf.int32
        )
        year = tf.where(year_first, numbers[:, 0], tf.where(month_first, numbers[:, 2], 1970))
        month = tf.where(year_first, numbers[:, 1], tf.where(month_first, numbers[:, 0], 1))
        day = tf.where(year_first, numbers[:, 2], tf.where(month_first, numbers[:, 1], 1))
        return month_first | year_first, year, month, day

    def _parse_format(self, dates):
        pattern, fields = date_pattern(self.date_format)
        shaped = tf.strings.regex_full_match(dates, pattern)
        dates = tf.where(shaped, dates, "")
        values = {}
        for group, field in enumerate(fields, 1):
            text = _field(dates, pattern, group)
            if field == "month_name":
                values["month"] = _month_number(text)
            else:
                number = tf.strings.to_number(tf.where(shaped, text, "1"), out_type=tf.int32)
                values[field] = number
        if "short_year" in values:  # as Python's strptime: 00-68 are 2000-2068, 69-99 are 1969-1999
            short = values.pop("short_year")
            values["year"] = tf.where(short < 69, 2000 + short, 1900 + short)
        return shaped, values["year"], values["month"], values["day"]

    def call(self, dates):
        dates = tf.reshape(tf.convert_to_tensor(dates, tf.string), [-1])
        if self.date_format is None:
            shaped, year, month, day = self._parse_default(dates)
            expected = "MM/DD/YYYY or YYYY-MM-DD"
        else:
            shaped, year, month, day = self._parse_format(dates)
            expected = repr(self.date_format)
        valid = shaped & (month >= 1) & (month <= 12) & (day >= 1) & (day <= _days_in_month(year, month))
        month, day = tf.where(valid, month, 1), tf.where(valid, day, 1)
        check = tf.debugging.Assert(
            tf.reduce_all(valid),
            [f"DateFeatures: expected dates as {expected}; could not parse:", tf.boolean_mask(dates, ~valid)],
            summarize=5,
        )
        with tf.control_dependencies([check]):
            weekday = tf.math.floormod(_days_since_epoch(year, month, day) + 3, 7)  # 1970-01-01: Thursday
        angle = 2.0 * math.pi * tf.cast(day - 1, tf.float32) / 31.0
        return tf.concat(
            [
                tf.one_hot(weekday, 7),
                tf.one_hot(month - 1, 12),
                tf.stack([tf.sin(angle), tf.cos(angle)], axis=1),
            ],
            axis=1,
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(FEATURE_NAMES))

    def get_config(self):
        return {**super().get_config(), "date_format": self.date_format}

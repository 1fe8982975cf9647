"""Raw date strings to calendar features, inside the model."""

import math

import keras
import tensorflow as tf

_MONTH_FIRST = r"\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*"  # 10/31/2019
_YEAR_FIRST = r"\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})\s*"  # 2019-10-31, 2019/10/31
FEATURE_NAMES = (
    [f"day_of_week={day}" for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")]
    + [f"month={month}" for month in range(1, 13)]
    + ["day_of_month_sin", "day_of_month_cos"]
)


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


@keras.saving.register_keras_serializable(package="recipes")
class DateFeatures(keras.layers.Layer):
    """Parses raw date strings into day-of-week, month and day-of-month features.

    Accepts `MM/DD/YYYY` (`10/31/2019`, also `1/5/2019`) and year-first
    `YYYY-MM-DD` or `YYYY/MM/DD` (`2019-10-31`), with `tf.strings` ops only, so
    the parsing is part of the exported graph and clients send the date as
    they store it. Output per date, in `FEATURE_NAMES` order: one-hot day of
    the week (Monday first, as Python's `weekday()`), one-hot month, and the
    day of the month on a circle (sine, cosine), so that the 31st sits next to
    the 1st.

    A string that is not such a date, or names a day that does not exist
    (`02/30/2019`), fails the whole call with `InvalidArgumentError` quoting
    the offending values: never a silent zero.

    Example:

    >>> import tensorflow as tf
    >>> from recipes.layers import DateFeatures
    >>> features = DateFeatures()(tf.constant(["10/31/2019", "2019-11-01"]))
    >>> features.shape, int(features[0, 3]), int(features[1, 4])  # Thursday, Friday
    (TensorShape([2, 21]), 1, 1)

    Input shape: `(batch,)` or `(batch, 1)` strings.
    Output shape: `(batch, 21)` float32.
    """

    def call(self, dates):
        dates = tf.reshape(tf.convert_to_tensor(dates, tf.string), [-1])
        month_first = tf.strings.regex_full_match(dates, _MONTH_FIRST)
        year_first = tf.strings.regex_full_match(dates, _YEAR_FIRST)
        shaped = month_first | year_first
        # Rows of another shape become 1970-01-01 only so that the arithmetic runs; the assertion fails them.
        digits = tf.where(shaped, tf.strings.regex_replace(dates, "[-/]", " "), "1970 1 1")
        numbers = tf.strings.to_number(
            tf.strings.split(tf.strings.strip(digits)).to_tensor(shape=[None, 3]), out_type=tf.int32
        )
        year = tf.where(year_first, numbers[:, 0], tf.where(month_first, numbers[:, 2], 1970))
        month = tf.where(year_first, numbers[:, 1], tf.where(month_first, numbers[:, 0], 1))
        day = tf.where(year_first, numbers[:, 2], tf.where(month_first, numbers[:, 1], 1))
        valid = shaped & (month >= 1) & (month <= 12) & (day >= 1) & (day <= _days_in_month(year, month))
        check = tf.debugging.Assert(
            tf.reduce_all(valid),
            [
                "DateFeatures: expected dates as MM/DD/YYYY or YYYY-MM-DD; could not parse:",
                tf.boolean_mask(dates, tf.logical_not(valid)),
            ],
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

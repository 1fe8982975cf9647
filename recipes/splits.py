"""Splits that stay the same from run to run, and as the data grows.

A random split (`train_test_split(..., random_state=0)`) depends on the order
and the number of rows: add rows and old rows move between train and test,
leaking evaluation data into training. The splits here depend on each row's
own key or date only ("repeatable splitting", Lakshmanan et al., *Machine
Learning Design Patterns*, 2020).
"""

import numpy as np
import pandas as pd
import tensorflow as tf

from recipes._common import check_number

_HASH_BUCKETS = 1_000_000


def _fraction_values(fractions):
    """`(names, values)` of a sequence or dict of fractions, checked: numbers >= 0 that add up to 1."""
    if isinstance(fractions, dict):
        names, values = list(fractions), list(fractions.values())
    elif isinstance(fractions, (list, tuple)) and fractions:
        names, values = None, list(fractions)
    else:
        raise ValueError(
            "`fractions` must be a non-empty sequence such as (0.8, 0.1, 0.1) or a dict such as "
            f"{{'train': 0.8, 'test': 0.2}}. Received: fractions={fractions!r}"
        )
    for index, value in zip(names or range(len(values)), values):
        check_number(f"fractions[{index!r}]", value, minimum=0)
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"`fractions` must add up to 1. Received: fractions={fractions!r} (sum {sum(values):.6g})")
    return names, values


def _as_1d(values, name):
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional (one entry per row). Received shape {array.shape}")
    return array


def _package(assignment, names, count):
    indices = [np.flatnonzero(assignment == i) for i in range(count)]
    return dict(zip(names, indices)) if names is not None else tuple(indices)


def repeatable_split(keys, fractions, salt=""):
    """Splits rows by a fingerprint of their key, so a row never changes split.

    Each key is hashed with FarmHash Fingerprint64 (TensorFlow's
    `tf.strings.to_hash_bucket_fast`, the hash behind BigQuery's
    `FARM_FINGERPRINT`) into one of a million buckets, and the buckets are cut
    by the cumulative fractions. The split of a row depends only on its key and
    the salt: adding, removing or reordering other rows moves nothing. Rows that
    share a key (all reviews of one movie, all clips of one speaker) land in the
    same split, which keeps groups from leaking across splits.

    Example:

    >>> import recipes
    >>> keys = [f"user-{i}" for i in range(1000)]
    >>> train, val, test = recipes.repeatable_split(keys, (0.8, 0.1, 0.1))
    >>> len(train) + len(val) + len(test)
    1000
    >>> splits = recipes.repeatable_split(keys, {"train": 0.9, "test": 0.1})
    >>> sorted(splits)
    ['test', 'train']

    Args:
        keys: One key per row (strings or numbers; numbers are hashed as their
            decimal text), e.g. a primary key or a group such as a movie name.
        fractions: A sequence of fractions, or a dict from split name to
            fraction, adding up to 1.
        salt: String, defaults to `""`. Prefixed to every key before hashing;
            another salt gives another, equally repeatable, split.

    Returns:
        A tuple of index arrays in the order of `fractions` (or a dict from
        split name to index arrays), each sorted ascending.
    """
    names, values = _fraction_values(fractions)
    if not isinstance(salt, str):
        raise ValueError(f"`salt` must be a string. Received: salt={salt!r}")
    keys = _as_1d(keys, "keys")
    if keys.dtype.kind not in "USO":
        keys = keys.astype(str)
    buckets = tf.strings.to_hash_bucket_fast(
        tf.strings.join([salt, tf.constant(keys.astype(object).astype(str))]), _HASH_BUCKETS
    ).numpy()
    position = buckets / _HASH_BUCKETS
    edges = np.cumsum(values)
    edges[-1] = 1.0 + 1e-12  # the last split takes everything left, whatever the rounding
    assignment = np.searchsorted(edges, position, side="right")
    return _package(assignment, names, len(values))


def split_by_date(dates, boundaries, date_format=None):
    """Splits rows by date: everything before the first boundary, then between, then after.

    Evaluating on data later than the training data is how a model is used
    in production, and it cannot leak the future into training.

    Example:

    >>> import recipes
    >>> dates = ["2012-01-01", "2013-06-01", "2014-12-31", "2015-06-30"]
    >>> train, val, test = recipes.split_by_date(dates, ["2014-01-01", "2015-01-01"])
    >>> [list(part) for part in (train, val, test)]
    [[0, 1], [2], [3]]

    Args:
        dates: One date per row: strings, `datetime64` values or a pandas Series.
        boundaries: Increasing dates; `len(boundaries) + 1` splits come back.
            A row equal to a boundary goes to the later split.
        date_format: Optional `strftime` format such as `"%m/%d/%Y"`, defaults
            to `None` (ISO 8601 and other unambiguous formats are recognised).

    Returns:
        A tuple of `len(boundaries) + 1` sorted index arrays.
    """
    dates = _as_1d(dates, "dates")
    if isinstance(boundaries, (str, bytes)) or not hasattr(boundaries, "__len__"):
        boundaries = [boundaries]
    if len(boundaries) == 0:
        raise ValueError("`boundaries` must hold at least one date. Received: boundaries=[]")
    parsed = _parse_dates(dates, date_format, "dates")
    cuts = _parse_dates(_as_1d(list(boundaries), "boundaries"), date_format, "boundaries")
    if not np.all(np.diff(cuts.astype("int64")) > 0):
        raise ValueError(f"`boundaries` must be strictly increasing. Received: boundaries={list(boundaries)!r}")
    assignment = np.searchsorted(cuts, parsed, side="right")
    return _package(assignment, None, len(cuts) + 1)


def _parse_dates(values, date_format, name):
    parsed = pd.to_datetime(pd.Series(values), format=date_format, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        expected = f"format {date_format!r}" if date_format else "a recognisable date"
        raise ValueError(
            f"`{name}` has {bad.size} value(s) that are not dates ({expected} expected); "
            f"first at row {bad[0]}: {str(values[bad[0]])!r}"
        )
    return parsed.to_numpy(dtype="datetime64[ns]")

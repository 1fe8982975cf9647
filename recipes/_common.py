"""Helpers shared across the package: argument checks with Keras-style messages, array helpers, file formats.

Internal: other modules import these names from here, never private names from each other. Messages follow
Keras: what was expected, then `Received: name=value`.
"""

import collections.abc
import inspect
import math
import os

import numpy as np

# -- argument checks ---------------------------------------------------------------------------------------


def check_int(name, value, minimum=1):
    """`value` as an int, or a `ValueError` if it is not an int (bools excluded) `>= minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")
    return int(value)


def check_number(name, value, minimum=None, maximum=None, *, inclusive=True):
    """`value` as a float, or a `ValueError` if it is not a finite number within the bounds given."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(value)
    )
    if ok and minimum is not None:
        ok = value >= minimum if inclusive else value > minimum
    if ok and maximum is not None:
        ok = value <= maximum if inclusive else value < maximum
    if not ok:
        low, high = ("[", "]") if inclusive else ("(", ")")
        bounds = f" in {low}{'-inf' if minimum is None else f'{minimum:g}'}, {'inf' if maximum is None else f'{maximum:g}'}{high}"
        raise ValueError(
            f"`{name}` must be a finite number{bounds if (minimum, maximum) != (None, None) else ''}. "
            f"Received: {name}={value!r}"
        )
    return float(value)


def check_one_of(name, value, choices):
    """`value` if it is one of `choices`; else a string that is one in lower case comes back lower-case."""
    if value in choices:
        return value
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()
    raise ValueError(f"`{name}` must be one of {tuple(choices)}. Received: {name}={value!r}")


def check_verbose(value, name="verbose"):
    """Keras's `verbose` as an int: `"auto"` is 1 (a progress bar), 0 silent, 2 one line when done."""
    if isinstance(value, str) and value.lower() == "auto":
        return 1
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value not in (0, 1, 2):
        raise ValueError(f"`{name}` must be 'auto', 0, 1 or 2. Received: {name}={value!r}")
    return int(value)


def check_callable(name, value, expected):
    """`value` if it is callable, else a `ValueError` saying what was `expected` (e.g. "a compiled model factory")."""
    if not callable(value):
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    return value


# -- arrays ------------------------------------------------------------------------------------------------


def as_array(values):
    """`values` as a NumPy array; Python strings become an object array, which TensorFlow takes as strings."""
    array = np.asarray(values)
    return array.astype(object) if array.dtype.kind == "U" else array


def num_examples(x):
    """Rows in `x`: an array (0 for a scalar), or a dict of arrays (the rows of its first; 0 when empty)."""
    if isinstance(x, dict):
        if not x:
            return 0
        x = next(iter(x.values()))
    return len(x) if np.ndim(x) else 0


def take_rows(x, rows):
    """The rows `rows` (indices, a mask or a slice) of an array, or of each array of a dict of arrays."""
    return {name: value[rows] for name, value in x.items()} if isinstance(x, dict) else x[rows]


def as_xy(data, name="data"):
    """`data`, an `(x, y)` tuple, as arrays: `x` an array or a dict of arrays (a `pandas.DataFrame` becomes a
    dict of its columns), `y` an array, with the same number of rows, at least one."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        shown = f"a {type(data).__name__} of length {len(data)}" if isinstance(data, (tuple, list)) else repr(data)[:80]
        raise ValueError(f"`{name}` must be an (x, y) tuple. Received: {name}={shown}")
    x, y = data
    if isinstance(x, collections.abc.Mapping) or hasattr(x, "columns"):
        x = {str(column): as_array(x[column]) for column in (x.columns if hasattr(x, "columns") else x)}
        if not x:
            raise ValueError(f"`{name}`'s x must hold one array per model input. Received: an empty dict")
        lengths = {f"x[{column!r}]": num_examples(value) for column, value in x.items()}
    else:
        x = as_array(x)
        lengths = {"x": num_examples(x)}
    y = np.asarray(y)
    lengths["y"] = num_examples(y)
    if len(set(lengths.values())) != 1 or lengths["y"] == 0:
        shown = ", ".join(f"{key}: {value}" for key, value in lengths.items())
        raise ValueError(f"`{name}`'s x and y must have the same number of rows, at least one. Received rows {shown}")
    return x, y


def required_positional(function):
    """How many positional parameters without a default `function` has (0 when its signature is unknown)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 0
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in positional and p.default is inspect.Parameter.empty)


# -- file formats ------------------------------------------------------------------------------------------

CSV, JSONL = "csv", "jsonl"
TABLE_EXTENSIONS = {".csv": CSV, ".jsonl": JSONL, ".ndjson": JSONL, ".json": JSONL}


def table_format(path, role="input"):
    """`"csv"` or `"jsonl"` from the extension of `path` (`.jsonl`, `.ndjson` and `.json` are JSON Lines).

    Args:
        path: A file path.
        role: What the file is, for the error message (`"input"`, `"output"`, `"reference"`, ...).
    """
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension not in TABLE_EXTENSIONS:
        raise ValueError(
            f"the {role} file must end in .csv, or .jsonl, .ndjson or .json for JSON Lines (one JSON object per "
            f"line). Received: {os.fspath(path)!r}"
        )
    return TABLE_EXTENSIONS[extension]


def read_table(path, role="input", **csv_options):
    """A CSV or JSON Lines file as a pandas DataFrame; `csv_options` go to `pandas.read_csv`."""
    import pandas as pd

    path = os.fspath(path)
    file_format = table_format(path, role)
    if not os.path.isfile(path):
        raise ValueError(f"the {role} file {path} does not exist")
    if file_format == CSV:
        return pd.read_csv(path, **csv_options)
    return pd.read_json(path, lines=True)


def write_table(frame, path):
    """Writes a DataFrame as CSV (no index) or JSON Lines (UTF-8 as it is), by the extension of `path`."""
    if table_format(path, "output") == CSV:
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, force_ascii=False)

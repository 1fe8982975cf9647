"""Helpers shared across the package: argument checks with Keras-style messages, array helpers, file formats.

Internal: other modules import these names from here, never private names from each other. Messages follow
Keras: what was expected, then `Received: name=value`.
"""

import collections.abc
import inspect
import math

import numpy as np

# -- argument checks ---------------------------------------------------------------------------------------


def check_int(name, value, minimum=1):
    """`value` as an int, or a `ValueError` if it is not an int (bools excluded) `>= minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")
    return int(value)


def check_number(name, value, minimum=None, maximum=None, *, inclusive=True):
    """`value` as a float, or a `ValueError` if it is not a finite number within the bounds given."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value >= minimum if inclusive else value > minimum
    if ok and maximum is not None:
        ok = value <= maximum if inclusive else value < maximum
    if not ok:
        low, high = ("[", "]") if inclusive else ("(", ")")
        bounds = f" in {low}{'-inf' if minimum is None else f'{minimum:g}'}, {'inf' if maximum is None else f'{maximum:g}'}{high}"
        raise ValueError(f"`{name}` must be a finite number{bounds if (minimum, maximum) != (None, None) else ''}. "
                         f"Received: {name}={value!r}")  # fmt: skip
    return float(value)


def check_one_of(name, value, choices):
    """`value` if it is one of `choices` (strings compare case-insensitively and come back lower-case)."""
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in choices:
            return lowered
    elif value in choices:
        return value
    raise ValueError(f"`{name}` must be one of {tuple(choices)}. Received: {name}={value!r}")


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

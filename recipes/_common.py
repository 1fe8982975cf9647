"""Helpers shared across the package: argument checks with Keras-style messages, array helpers, file formats.

Internal: other modules import these names from here, never private names from each other. Messages follow
Keras: what was expected, then `Received: name=value`.
"""

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


# -- file formats ------------------------------------------------------------------------------------------

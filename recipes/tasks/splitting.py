"""How a task's examples go to train, validation and test: by key, by group, by date, or by row number.

Every rule depends on each example's own value only (`recipes.repeatable_split`,
`recipes.split_by_date`), so a table read in chunks is split exactly as if it
were read whole, a second run gives the same sets, and rows appended later
leave the old rows where they were.
"""

import dataclasses
import math

import numpy as np

from recipes._common import check_int
from recipes.splits import repeatable_split, split_by_date

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
UNUSED = -1  # the code of an example no split takes (a fraction named other than SPLITS)
BY = ("row", "key", "group", "date")


def _fractions(fractions, separate_test):
    """`fractions` as `((name, fraction), ...)`; a sequence names its parts train, validation[, test]."""
    needed = ("train", "validation") if separate_test else SPLITS
    if isinstance(fractions, dict):
        pairs = tuple((str(name), value) for name, value in fractions.items())
    elif isinstance(fractions, (list, tuple)) and len(fractions) == len(needed):
        pairs = tuple(zip(needed, fractions))
    else:
        raise ValueError(
            f"`fractions` must be {len(needed)} numbers for {', '.join(needed)} such as "
            f"{DEFAULT_FRACTIONS[: len(needed)] if not separate_test else (0.9, 0.1)}, or a dict from split name "
            f"to fraction (names other than {SPLITS} mark rows left out). Received: fractions={fractions!r}"
        )
    values = [value for _, value in pairs]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"`fractions` must be non-negative numbers. Received: fractions={fractions!r}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"`fractions` must add up to 1. Received: fractions={fractions!r} (sum {sum(values):.6g})")
    missing = [name for name in needed if not dict(pairs).get(name)]
    if missing:
        raise ValueError(
            f"`fractions` must give {', '.join(needed)} a fraction above 0"
            + (" (the test set is given separately)" if separate_test else "")
            + f". Received: fractions={fractions!r}"
        )
    if separate_test and "test" in dict(pairs):
        raise ValueError(
            f"`fractions` must not include 'test' when the test set is given separately. "
            f"Received: fractions={fractions!r}"
        )
    return pairs


@dataclasses.dataclass(frozen=True)
class SplitPlan:
    """The rule that sends each example to a split.

    Attributes:
        by: `"row"` (the row number, or the file's path in a folder), `"key"`
            (a key column), `"group"` (a group column: a group's examples stay
            together) or `"date"` (the boundaries in `split_dates`).
        column: The key, group or date column, or `None`.
        fractions: `((name, fraction), ...)` for the hashed rules; names
            other than `SPLITS` mark examples no split takes.
        split_dates: Two dates for `by="date"`: train is before the first,
            validation between, test from the second on.
        seed: Int. Another seed gives another, equally repeatable, split by
            key, group or row; 0 is the package's usual split (no salt).
        separate_test: The test examples come from elsewhere (an official
            test set); the rule splits train and validation only.
    """

    by: str
    column: object = None
    fractions: tuple = ()
    split_dates: tuple = ()
    seed: int = 0
    separate_test: bool = False

    @classmethod
    def make(cls, *, key=None, group=None, date=None, split_dates=None, fractions=None, seed=0, separate_test=False):
        """Checks the split arguments of a task constructor and returns the plan they describe."""
        seed = check_int("seed", seed, minimum=0)
        given = [(name, value) for name, value in (("key", key), ("group", group)) if value is not None]
        if len(given) > 1:
            raise ValueError(
                "`key` and `group` both say how to split; pass one: `group` keeps each group's rows together, "
                f"`key` splits row by row. Received: key={key!r}, group={group!r}"
            )
        if (date is None) != (split_dates is None):
            raise ValueError(
                "`date` and `split_dates` go together: the date column and the two dates that end the training "
                f"and the validation periods. Received: date={date!r}, split_dates={split_dates!r}"
            )
        if date is not None:
            if given:
                raise ValueError(
                    f"split by date or by {given[0][0]}, not both. Received: date={date!r}, "
                    f"{given[0][0]}={given[0][1]!r}"
                )
            if fractions is not None:
                raise ValueError(
                    f"`fractions` has no use in a split by date (`split_dates` cut it). "
                    f"Received: fractions={fractions!r}"
                )
            if isinstance(split_dates, (str, bytes)) or not hasattr(split_dates, "__len__") or len(split_dates) != 2:
                raise ValueError(
                    "`split_dates` must be two dates: the first starts validation, the second starts test. "
                    f"Received: split_dates={split_dates!r}"
                )
            if separate_test:
                raise ValueError("a split by date makes its own test set; pass no separate test set")
            return cls("date", date, split_dates=tuple(str(d) for d in split_dates), seed=seed)
        if fractions is None:
            fractions = (0.9, 0.1) if separate_test else DEFAULT_FRACTIONS
        pairs = _fractions(fractions, separate_test)
        by, column = given[0] if given else ("row", None)
        return cls(by, column, fractions=pairs, seed=seed, separate_test=separate_test)

    @property
    def salt(self):
        return "" if self.seed == 0 else f"seed={self.seed}:"

    def assign(self, values):
        """The split code of each example: its index in `SPLITS`, or `UNUSED`.

        Args:
            values: One value per example: row numbers for `by="row"`, keys or
                groups (strings or numbers), or dates as ISO strings for
                `by="date"`.

        Returns:
            An int8 array of codes.
        """
        values = np.asarray(values)
        codes = np.full(len(values), UNUSED, dtype=np.int8)
        if len(values) == 0:
            return codes
        if self.by == "date":
            for code, rows in enumerate(split_by_date(values, list(self.split_dates))):
                codes[rows] = code
            return codes
        parts = repeatable_split(values, dict(self.fractions), salt=self.salt)
        for name, rows in parts.items():
            if name in SPLITS:
                codes[rows] = SPLITS.index(name)
        return codes

    def describe(self):
        """One line: how the examples are split."""
        if self.by == "date":
            first, second = self.split_dates
            return f"split by date ({self.column!r}): before {first} | to {second} | from {second}"
        parts = " / ".join(f"{name} {value:g}" for name, value in self.fractions)
        how = {"row": "row", "key": f"key {self.column!r}", "group": f"group {self.column!r}"}[self.by]
        if self.by == "row" or not isinstance(self.column, str):
            how = {"row": "row", "key": "key", "group": "group"}[self.by]
        seed = f", seed {self.seed}" if self.seed else ""
        test = "; test set given separately" if self.separate_test else ""
        return f"repeatable split by {how} ({parts}{seed}){test}"

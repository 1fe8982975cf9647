"""The checks every task runs on its labels and splits before any training starts.

Each failure is a `ValueError` that says what was expected and what the data
holds. (Kept here rather than in `recipes/_common.py` while the package's
shared helpers are being reorganised; they may move there.)
"""

import numpy as np

from recipes.tasks.splitting import SPLITS

PROBLEMS = ("classification", "regression")
MODALITIES = ("text", "image", "audio", "table")


def _listed(items, limit=5):
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_classes(counts, where):
    """At least two classes, each with at least two examples.

    Args:
        counts: Dict from class name to its number of examples in all splits.
        where: What holds the labels, e.g. "the target 'label' of reviews.csv".
    """
    if len(counts) < 2:
        only = f"one class ({next(iter(counts))!r}, {sum(counts.values())} examples)" if counts else "no examples"
        raise ValueError(f"a classifier needs at least two classes; {where} has {only}")
    rare = {name: count for name, count in counts.items() if count < 2}
    if rare:
        raise ValueError(
            f"every class needs at least two examples (one to train on, one to check); {where} has "
            f"{_listed(f'{name!r} ({count})' for name, count in sorted(rare.items()))}: add examples, merge those "
            "classes into others or drop them"
        )


def check_splits(num_examples, plan, where):
    """Every split the task uses holds examples."""
    empty = [name for name in SPLITS if num_examples.get(name, 0) == 0]
    if empty:
        counts = ", ".join(f"{name} {num_examples.get(name, 0)}" for name in SPLITS)
        raise ValueError(
            f"the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty ({counts} examples) "
            f"with the {plan.describe()} of {where}; "
            + (
                "choose `split_dates` inside the dates the data covers"
                if plan.by == "date"
                else "the data is too small for these fractions, or a few keys or groups hold most examples: "
                "change `fractions` or split by another column"
            )
        )


def label_index(class_names, seen, where):
    """The map from a label as the data writes it to its position in `class_names`.

    Labels are the class names themselves, or their positions written as
    integers (`0`, `1`, ...), as the shipped data sets store them.
    """
    index = {name: i for i, name in enumerate(class_names)}
    seen = set(seen)
    if seen <= set(index):
        return index
    positions = {str(i): i for i in range(len(class_names))}
    if seen <= set(positions):
        return positions
    unknown = sorted(seen - set(index))
    raise ValueError(
        f"`class_names` must name every label of {where}, or the labels must be their positions 0.."
        f"{len(class_names) - 1}. Received: class_names={list(class_names)!r}; labels not among them: "
        f"{_listed(map(repr, unknown))}"
    )


def majority_accuracy(train_counts, counts):
    """The accuracy of always answering the most frequent training class, on a split with `counts` per class."""
    total = int(np.sum(counts))
    return float(counts[int(np.argmax(train_counts))] / total) if total else float("nan")

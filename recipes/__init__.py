"""keras-recipes: the tricks practitioners use to build, debug and ship Keras models, as code that runs.

Names are imported on first use (PEP 562), so that `import recipes` and the
`recipes` command line start without loading TensorFlow until a recipe needs it.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "BestKCheckpoint": "recipes.callbacks",
    "EpochBackup": "recipes.callbacks",
    "ResumableEarlyStopping": "recipes.callbacks",
    "set_seed": "recipes.seed",
    "repeatable_split": "recipes.splits",
    "split_by_date": "recipes.splits",
    "FitResult": "recipes.training",
    "fit": "recipes.training",
    "virtual_steps_per_epoch": "recipes.training",
}
_SUBPACKAGES = ("augment", "datasets", "debug", "distribute", "layers")

__all__ = sorted([*_EXPORTS, *_SUBPACKAGES])


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"recipes.{name}")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'recipes' has no attribute {name!r}")


def __dir__():
    return __all__

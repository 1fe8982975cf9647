"""keras-recipes: the tricks practitioners use to build, debug and ship Keras models, as code that runs.

Names are imported on first use (PEP 562), so that `import recipes` and the
`recipes` command line start without loading TensorFlow until a recipe needs it.
"""

from recipes._lazy import lazy_exports

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
_SUBPACKAGES = ("augment", "datasets", "debug", "distribute", "layers", "tasks")

__all__ = sorted([*_EXPORTS, *_SUBPACKAGES])
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS, _SUBPACKAGES)
del lazy_exports

"""keras-recipes: the tricks practitioners use to build, debug and ship Keras models, as code that runs."""

from recipes import datasets
from recipes.callbacks import BestKCheckpoint, ResumableEarlyStopping
from recipes.seed import set_seed
from recipes.splits import repeatable_split, split_by_date
from recipes.training import FitResult, fit, virtual_steps_per_epoch

__version__ = "0.1.0"

__all__ = [
    "BestKCheckpoint",
    "FitResult",
    "ResumableEarlyStopping",
    "datasets",
    "fit",
    "repeatable_split",
    "set_seed",
    "split_by_date",
    "virtual_steps_per_epoch",
]

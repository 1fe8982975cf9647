"""Preprocessing layers that put feature engineering inside the model.

Each is a registered, serialisable Keras layer made of TensorFlow ops, so it
survives `model.save`/`keras.saving.load_model` and SavedModel export, and the
served model takes raw data: waveforms of any length (`FitLength`, `MFCC`),
WAV bytes (`DecodeWav`), date strings (`DateFeatures`), encoded image bytes
(`DecodeImages`), numbers with gaps (`FillMissing`). Text uses Keras's own
`TextVectorization`, tabular data Keras's `FeatureSpace`.
"""

from recipes.layers.audio import MFCC, DecodeWav, FitLength
from recipes.layers.dates import FEATURE_NAMES as DATE_FEATURE_NAMES
from recipes.layers.dates import DateFeatures
from recipes.layers.heads import ClassProbabilities, class_names_of
from recipes.layers.images import DecodeImages
from recipes.layers.numbers import FillMissing

__all__ = [
    "DATE_FEATURE_NAMES",
    "MFCC",
    "ClassProbabilities",
    "DateFeatures",
    "DecodeImages",
    "DecodeWav",
    "FillMissing",
    "FitLength",
    "class_names_of",
]

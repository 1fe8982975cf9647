"""Preprocessing layers that put feature engineering inside the model.

Each is a registered, serialisable Keras layer made of TensorFlow ops, so it
survives `model.save`/`keras.saving.load_model` and SavedModel export, and the
served model takes raw data: waveforms (`MFCC`), date strings
(`DateFeatures`), encoded image bytes (`DecodeImages`). Text uses Keras's own
`TextVectorization`, tabular data Keras's `FeatureSpace`.
"""

from recipes.layers.audio import MFCC
from recipes.layers.dates import FEATURE_NAMES as DATE_FEATURE_NAMES
from recipes.layers.dates import DateFeatures
from recipes.layers.heads import ClassProbabilities, class_names_of
from recipes.layers.images import DecodeImages

__all__ = ["DATE_FEATURE_NAMES", "MFCC", "ClassProbabilities", "DateFeatures", "DecodeImages", "class_names_of"]

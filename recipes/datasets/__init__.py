"""Real data sets that install with no network, returned raw: strings, waveforms, pixels, date strings.

Feature engineering belongs inside the model, so nothing here tokenises,
normalises or extracts features. A loader whose data package is missing
raises `MissingDataError` saying what to install.
"""

from recipes.datasets._common import MissingDataError
from recipes.datasets.audio import DIGIT_WORDS, load_spoken_digits
from recipes.datasets.tabular import SEATTLE_WEATHER_CLASSES, load_seattle_weather
from recipes.datasets.text import ROTTEN_TOMATOES_CLASSES, load_rotten_tomatoes
from recipes.datasets.vision import FASHION_MNIST_CLASSES, load_digits, load_fashion_mnist

__all__ = [
    "DIGIT_WORDS",
    "FASHION_MNIST_CLASSES",
    "MissingDataError",
    "ROTTEN_TOMATOES_CLASSES",
    "SEATTLE_WEATHER_CLASSES",
    "load_digits",
    "load_fashion_mnist",
    "load_rotten_tomatoes",
    "load_seattle_weather",
    "load_spoken_digits",
]

"""Tabular data sets with a raw date column."""

import os

import pandas as pd

from recipes.datasets._common import package_dir

SEATTLE_WEATHER_CLASSES = ("drizzle", "fog", "rain", "snow", "sun")


def load_seattle_weather():
    """Daily weather in Seattle, 2012-2015 (NOAA, via `vega_datasets`).

    Example:

    >>> import recipes
    >>> weather = recipes.datasets.load_seattle_weather()
    >>> weather.shape
    (1461, 6)
    >>> weather.date[0]
    '2012/01/01'

    Returns:
        A `pandas.DataFrame` with `date` (the raw date string as the file has it,
        `YYYY/MM/DD`), `precipitation`, `temp_max`, `temp_min`, `wind` (floats) and
        `weather` (one of `SEATTLE_WEATHER_CLASSES`; noisy labels).
    """
    folder = package_dir("vega_datasets", "pip install vega_datasets==0.9.0")
    frame = pd.read_csv(os.path.join(folder, "_data", "seattle-weather.csv"), dtype={"date": str})
    return frame[["date", "precipitation", "temp_max", "temp_min", "wind", "weather"]]

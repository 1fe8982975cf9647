"""Task.simple_model: the scikit-learn model every network must beat, on data whose answer the test plants."""

import numpy as np
import pandas as pd
import pytest

from recipes.tasks import Task, shipped


def _planted_table(rows=600, seed=0):
    """A table whose label is its `shop` column (a category); numbers and dates are noise."""
    rng = np.random.default_rng(seed)
    shop = rng.choice(["north", "south", "east"], size=rows)
    return pd.DataFrame(
        {
            "shop": shop,
            "visitors": rng.normal(100, 15, size=rows).round(1),
            "day": pd.date_range("2020-01-01", periods=rows, freq="D").strftime("%m/%d/%Y"),
            "busy": np.where(shop == "north", "yes", "no"),
        }
    )


def test_table_classification_reads_categories_numbers_and_dates():
    task = Task.from_frame(_planted_table(), target="busy", name="shops")
    simple = task.simple_model()
    assert simple.description == (
        "standardised numbers, one-hot categories, month and weekday + logistic regression"
    ), simple.description
    assert simple.score("test") == 1.0
    assert simple.score("test") > task.baseline("test")
    assert simple.hyperparameter.startswith("C=")


def test_table_regression_is_a_ridge_regression_scored_in_the_tasks_metric():
    frame = _planted_table()
    frame["sales"] = 2.0 * frame.visitors + 5.0
    task = Task.from_frame(frame.drop(columns="busy"), target="sales", name="sales")
    simple = task.simple_model()
    assert task.metric == simple.metric == "mean_absolute_error"
    assert simple.description.endswith("+ ridge regression") and simple.hyperparameter.startswith("alpha=")
    assert simple.score("test") < 0.05 * task.baseline("test")


def test_text_images_and_audio_get_their_classic_features():
    rng = np.random.default_rng(0)
    words = np.array(["a", "film", "with", "the", "cast", "and", "plot"])
    labels = rng.integers(0, 2, size=300)
    texts = np.array(
        [" ".join(rng.choice(words, 6)) + (" superb" if label else " dreadful") for label in labels], dtype=object
    )
    text = Task.from_arrays(texts, labels, modality="text", class_names=["bad", "good"], name="words")

    images = rng.integers(0, 60, size=(300, 12, 12), dtype=np.uint8)
    images[labels == 1, :, 6:] += 150  # the bright half tells the class
    image = Task.from_arrays(images, labels, modality="image", class_names=["left", "right"], name="halves")

    seconds = np.arange(8000) / 8000.0
    tones = np.stack([np.sin(2 * np.pi * (300 if label else 1200) * seconds) for label in labels]).astype("float32")
    tones += rng.normal(0, 0.05, size=tones.shape).astype("float32")
    audio = Task.from_arrays(
        tones, labels, modality="audio", sample_rate=8000, class_names=["high", "low"], name="tones"
    )

    for task, features in ((text, "TF-IDF of words and word pairs"), (image, "pixels"), (audio, "MFCC statistics")):
        simple = task.simple_model()
        assert simple.description == f"{features} + logistic regression", simple.description
        assert simple.score("test") == 1.0, (task.name, simple.score("test"))
        assert list(simple.predict(task.arrays("test")[0])) == list(task.arrays("test")[1])


def test_large_images_are_pooled_to_a_size_scikit_learn_fits_quickly():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=120)
    images = rng.integers(0, 60, size=(120, 96, 96, 3), dtype=np.uint8)
    images[labels == 1, :48] += 150
    task = Task.from_arrays(images, labels, modality="image", class_names=["bottom", "top"], name="photos")
    simple = task.simple_model()
    assert simple._model.model.coef_.shape[1] <= 4096  # 27,648 pixel values averaged in 3 x 3 blocks
    assert simple.score("test") == 1.0


@pytest.mark.slow
def test_shipped_weather_simple_model_beats_the_majority_class():
    task = shipped("tabular")
    simple = task.simple_model()
    assert simple.description.startswith("standardised numbers")
    assert simple.score("test") > task.baseline("test")

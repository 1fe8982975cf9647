import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import recipes  # noqa: E402


def small_classifier(num_features=8, num_classes=3, learning_rate=0.05):
    """A two-layer classifier small enough to train in a second."""
    inputs = keras.Input(shape=(num_features,), name="features")
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def blobs(num_examples, num_features=8, num_classes=3, seed=0):
    """Gaussian blobs, one per class: separable data the small classifier learns quickly.

    The centres are the same for every seed; the seed draws the examples.
    """
    centres = np.random.default_rng(12345).normal(0, 3, size=(num_classes, num_features))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=num_examples)
    features = centres[labels] + rng.normal(0, 1, size=(num_examples, num_features))
    return features.astype("float32"), labels.astype("int64")


@pytest.fixture
def model_fn():
    return small_classifier


@pytest.fixture(scope="session")
def blob_data():
    return blobs(300), blobs(100, seed=1)


@pytest.fixture(autouse=True)
def _seeded():
    recipes.set_seed(0)

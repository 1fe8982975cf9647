"""Tabular classifiers and regressors from a data frame, with raw columns as inputs.

Numeric columns are normalised and string columns looked up as categories by
a Keras `FeatureSpace` adapted on the training frame; date columns (raw
strings such as `10/31/2019`) become calendar features with
`recipes.layers.DateFeatures`. All of it is inside the model: one input per
raw column, one value per row.
"""

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from models.common import classify, dtype_policy, resolve_class_names
from recipes.layers import DateFeatures

FeatureSpace = keras.utils.FeatureSpace


def _columns(frame, target, date_columns):
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"`frame` must be a pandas DataFrame. Received: {type(frame).__name__}")
    if target not in frame.columns:
        raise ValueError(f"`target` {target!r} is not a column; the columns are {list(frame.columns)}")
    date_columns = list(date_columns or [])
    missing = [c for c in date_columns if c not in frame.columns]
    if missing:
        raise ValueError(f"`date_columns` {missing} are not columns; the columns are {list(frame.columns)}")
    columns = {}
    for name in sorted(c for c in frame.columns if c != target):
        if name in date_columns:
            columns[name] = "date"
        elif pd.api.types.is_numeric_dtype(frame[name]):
            columns[name] = "numeric"
        else:
            columns[name] = "categorical"
    if not columns:
        raise ValueError(f"`frame` has no feature columns besides the target {target!r}")
    return columns


def _raw_column(frame, name, kind):
    return frame[name].to_numpy(dtype="float32") if kind == "numeric" else frame[name].astype(str).to_numpy()


def _features(frame, target, date_columns):
    """One raw input per column, and the adapted FeatureSpace encoding of them."""
    columns = _columns(frame, target, date_columns)
    specs = {
        "numeric": FeatureSpace.float_normalized,
        "categorical": lambda: FeatureSpace.string_categorical(num_oov_indices=1),
        "date": lambda: FeatureSpace.feature(preprocessor=DateFeatures(), dtype="string", output_mode="float"),
    }
    space = FeatureSpace({name: specs[kind]() for name, kind in columns.items()}, output_mode="concat")
    space.adapt(tf.data.Dataset.from_tensor_slices({n: _raw_column(frame, n, k) for n, k in columns.items()}))
    # List inputs in column order: a nested model called with a dict makes Keras warn that structures differ.
    space_inputs = space.get_inputs()
    encoder = keras.Model([space_inputs[n] for n in columns], space.get_encoded_features(), name="feature_space")
    inputs = {
        name: keras.Input(shape=(), dtype="float32" if kind == "numeric" else "string", name=name)
        for name, kind in columns.items()
    }
    encoded = encoder([keras.ops.expand_dims(inputs[name], -1) for name in columns])
    return inputs, encoded


def _hidden(x, hidden_units, dropout, mixed_precision=False):
    with dtype_policy(mixed_precision):
        return _dense_stack(x, hidden_units, dropout)


def _dense_stack(x, hidden_units, dropout):
    for units in hidden_units:
        x = keras.layers.Dense(units, activation="relu")(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    return x


def classifier(
    frame, target, date_columns=(), hidden_units=(32,), dropout=0.1, learning_rate=1e-2, name="tabular_classifier",
    mixed_precision=False,
):  # fmt: skip
    """A classifier of the `target` column from every other column of `frame`.

    Example:

    ```python
    import recipes
    from models import tabular

    weather = recipes.datasets.load_seattle_weather()
    model = tabular.classifier(weather, "weather", date_columns=["date"])
    x, y = tabular.to_xy(model, weather, "weather")
    model.fit(x, y, epochs=5, verbose=0)
    ```

    Args:
        frame: Training `pandas.DataFrame`, to adapt the normalisation and vocabularies.
        target: Name of the label column; its sorted distinct values are the class names.
        date_columns: Names of columns holding raw date strings, defaults to `()`.
        hidden_units: Tuple of ints, defaults to `(32,)`; `()` gives logistic regression.
        dropout: Float, defaults to 0.1. Active in training only.
        learning_rate: Float, defaults to 0.01.
        name: Model name.
        mixed_precision: `False` (default), `True` or `"mixed_float16"`
            (GPUs), or `"mixed_bfloat16"` (TPUs, recent CPUs): the layers
            between the preprocessing and the output compute in 16 bits with
            float32 variables (`models.common.dtype_policy`).

    Returns:
        A compiled `keras.Model` with one input per raw column (float32 for
        numbers, string for categories and dates) and class probabilities out.
        An unparseable date fails the call with an error quoting it.
    """
    inputs, encoded = _features(frame, target, date_columns)
    class_names = sorted(frame[target].astype(str).unique())
    class_names = resolve_class_names(len(class_names), class_names)
    hidden = _hidden(encoded, hidden_units, dropout, mixed_precision)
    return classify(hidden, inputs, class_names, learning_rate, name, mixed_precision)


def linear_classifier(frame, target, date_columns=(), learning_rate=1e-2, name="tabular_linear_classifier"):
    """Logistic regression on the encoded columns: the linear baseline (one weight per feature and class)."""
    return classifier(frame, target, date_columns, hidden_units=(), learning_rate=learning_rate, name=name)


def regressor(
    frame, target, date_columns=(), hidden_units=(32,), dropout=0.1, learning_rate=1e-2, name="tabular_regressor",
    mixed_precision=False,
):  # fmt: skip
    """A regressor of the numeric `target` column from every other column of `frame`.

    Args: as `classifier`; `target` must be numeric.

    Returns:
        A compiled `keras.Model` (loss mean squared error, metric mean
        absolute error) with one input per raw column and one number out.
    """
    if target in frame.columns and not pd.api.types.is_numeric_dtype(frame[target]):
        raise ValueError(f"`target` {target!r} must be numeric for a regressor; its dtype is {frame[target].dtype}")
    inputs, encoded = _features(frame, target, date_columns)
    hidden = _hidden(encoded, hidden_units, dropout, mixed_precision)
    prediction = keras.layers.Dense(1, name="prediction", dtype="float32")(hidden)  # float32 out whatever the policy
    with dtype_policy(mixed_precision):
        model = keras.Model(inputs, prediction, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="mean_squared_error", metrics=["mean_absolute_error"]
    )
    return model


def linear_regressor(frame, target, date_columns=(), learning_rate=1e-2, name="tabular_linear_regressor"):
    """Linear regression on the encoded columns: the linear baseline."""
    return regressor(frame, target, date_columns, hidden_units=(), learning_rate=learning_rate, name=name)


def to_xy(model, frame, target=None):
    """The inputs (a dict of raw column arrays) and, given `target`, the labels of `frame` for `model`.

    Class labels are the positions of the target values among the model's
    class names; a value the model does not know is an error naming it.
    """
    x = {}
    for tensor in model.inputs:
        if tensor.name not in frame.columns:
            raise ValueError(f"the model needs column {tensor.name!r}; the frame has {list(frame.columns)}")
        kind = "numeric" if tensor.dtype == "float32" else "text"
        x[tensor.name] = _raw_column(frame, tensor.name, kind)
    if target is None:
        return x
    head = model.layers[-1]
    if not hasattr(head, "class_names"):
        return x, frame[target].to_numpy(dtype="float32")
    index = {name: i for i, name in enumerate(head.class_names)}
    values = frame[target].astype(str)
    unknown = sorted(set(values) - set(index))
    if unknown:
        raise ValueError(f"`{target}` has values the model has no class for: {unknown}")
    return x, np.array([index[v] for v in values], dtype="int64")

"""Tabular classifiers and regressors from a data frame, with raw columns as inputs.

Numeric columns are normalised (a missing number, NaN, first becomes the
column's training mean: `recipes.layers.FillMissing`), string columns looked
up as categories and free-text columns turned into TF-IDF word weights by a
Keras `FeatureSpace` adapted on the training frame; date columns (raw strings
such as `10/31/2019` or `31.10.2019 14:30`) become calendar features with
`recipes.layers.DateFeatures`. All of it is inside the model: one input per
raw column, one value per row, as the column is written.
"""

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from models.common import classify, dtype_policy, resolve_class_names
from recipes.layers import DateFeatures, FillMissing

FeatureSpace = keras.utils.FeatureSpace


TEXT_MAX_TOKENS = 5000  # vocabulary of a free-text column: its most frequent words


def _date_formats(date_columns):
    """`{column: strptime format or None}` from a list of date columns or such a dict."""
    if isinstance(date_columns, dict):
        return {str(name): date_format for name, date_format in date_columns.items()}
    return dict.fromkeys(date_columns or [])


def _columns(frame, target, date_columns, text_columns=()):
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"`frame` must be a pandas DataFrame. Received: {type(frame).__name__}")
    if target not in frame.columns:
        raise ValueError(f"`target` {target!r} is not a column; the columns are {list(frame.columns)}")
    date_formats = _date_formats(date_columns)
    text_columns = [text_columns] if isinstance(text_columns, str) else list(text_columns or [])
    for role, names in (("date_columns", list(date_formats)), ("text_columns", text_columns)):
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise ValueError(f"`{role}` {missing} are not columns; the columns are {list(frame.columns)}")
    columns = {}
    for name in sorted(c for c in frame.columns if c != target):
        if name in date_formats:
            columns[name] = "date"
        elif name in text_columns:
            columns[name] = "text"
        elif pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name]):
            columns[name] = "numeric"
        else:
            columns[name] = "categorical"
    if not columns:
        raise ValueError(f"`frame` has no feature columns besides the target {target!r}")
    return columns, date_formats


def _raw_column(frame, name, kind):
    return frame[name].to_numpy(dtype="float32") if kind == "numeric" else frame[name].astype(str).to_numpy()


def _fill_values(frame, columns, fill_values):
    """The value a missing number of each numeric column becomes: `fill_values`, else the frame's mean."""
    fill_values = dict(fill_values or {})
    unknown = sorted(set(fill_values) - {name for name, kind in columns.items() if kind == "numeric"})
    if unknown:
        raise ValueError(f"`fill_values` names columns that are not numeric features: {unknown}")
    filled = {}
    for name, kind in columns.items():
        if kind == "numeric":
            if name in fill_values:
                filled[name] = float(fill_values[name])
            else:
                values = frame[name].to_numpy(dtype="float64")
                filled[name] = float(np.nanmean(values)) if np.isfinite(values).any() else 0.0
    return filled


def _features(frame, target, date_columns, text_columns=(), fill_values=None):
    """One raw input per column, and the adapted FeatureSpace encoding of them (missing numbers filled first)."""
    columns, date_formats = _columns(frame, target, date_columns, text_columns)
    fills = _fill_values(frame, columns, fill_values)
    specs = {
        "numeric": lambda name: FeatureSpace.float_normalized(),
        "categorical": lambda name: FeatureSpace.string_categorical(num_oov_indices=1),
        "date": lambda name: FeatureSpace.feature(
            preprocessor=DateFeatures(date_formats[name], name=f"dates_{name}"), dtype="string", output_mode="float"
        ),
    }
    spaced = [name for name, kind in columns.items() if kind != "text"]  # text is weighed beside the FeatureSpace
    raw = {}
    for name, kind in columns.items():
        values = _raw_column(frame, name, kind)
        raw[name] = np.where(np.isnan(values), fills[name], values).astype("float32") if kind == "numeric" else values
    inputs = {
        name: keras.Input(shape=(), dtype="float32" if kind == "numeric" else "string", name=name)
        for name, kind in columns.items()
    }
    parts = []
    if spaced:
        space = FeatureSpace({name: specs[columns[name]](name) for name in spaced}, output_mode="concat")
        space.adapt(tf.data.Dataset.from_tensor_slices({name: raw[name] for name in spaced}))
        # List inputs in column order: a nested model called with a dict makes Keras warn that structures differ.
        space_inputs = space.get_inputs()
        encoder = keras.Model([space_inputs[n] for n in spaced], space.get_encoded_features(), name="feature_space")
        filled = {
            name: FillMissing(fills[name], name=f"fill_{name}")(inputs[name])
            if columns[name] == "numeric"
            else inputs[name]
            for name in spaced
        }
        parts.append(encoder([keras.ops.expand_dims(filled[name], -1) for name in spaced]))
    for name in (name for name, kind in columns.items() if kind == "text"):
        weights = keras.layers.TextVectorization(max_tokens=TEXT_MAX_TOKENS, output_mode="tf_idf", name=f"tfidf_{name}")
        weights.adapt(raw[name])
        parts.append(weights(inputs[name]))
    encoded = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
    return inputs, encoded


def _class_names(frame, target, class_names):
    found = sorted(frame[target].astype(str).unique())
    if class_names is None:
        return found
    class_names = [str(name) for name in class_names]
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        raise ValueError(
            f"`class_names` must name every class of the target {target!r}; it lacks {unknown}. "
            f"Received: class_names={class_names!r}"
        )
    return class_names


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
    frame,
    target,
    date_columns=(),
    hidden_units=(32,),
    dropout=0.1,
    learning_rate=1e-2,
    name="tabular_classifier",
    mixed_precision=False,
    class_names=None,
    text_columns=(),
    fill_values=None,
):
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
        date_columns: Names of columns holding raw date strings, defaults to
            `()`; or a dict from such a column to the strptime format its
            dates are written in (`{"day": "%d.%m.%Y"}`; `None` for
            `DateFeatures`'s default `MM/DD/YYYY` or `YYYY-MM-DD`).
        hidden_units: Tuple of ints, defaults to `(32,)`; `()` gives logistic regression.
        dropout: Float, defaults to 0.1. Active in training only.
        learning_rate: Float, defaults to 0.01.
        name: Model name.
        mixed_precision: `False` (default), `True` or `"mixed_float16"`
            (GPUs), or `"mixed_bfloat16"` (TPUs, recent CPUs): the layers
            between the preprocessing and the output compute in 16 bits with
            float32 variables (`models.common.dtype_policy`).
        class_names: Optional class names in label order, defaults to the
            target's sorted distinct values.
        text_columns: Names of columns of free text, defaults to `()`:
            TF-IDF weights of their words (other string columns are categories).
        fill_values: Optional dict from a numeric column to the value a
            missing number (NaN) in it becomes, defaults to its mean in `frame`.

    Returns:
        A compiled `keras.Model` with one input per raw column (float32 for
        numbers, NaN where one is missing; string for categories, text and
        dates) and class probabilities out. An unparseable date fails the call
        with an error quoting it.
    """
    inputs, encoded = _features(frame, target, date_columns, text_columns, fill_values)
    class_names = _class_names(frame, target, class_names)
    class_names = resolve_class_names(len(class_names), class_names)
    hidden = _hidden(encoded, hidden_units, dropout, mixed_precision)
    return classify(hidden, inputs, class_names, learning_rate, name, mixed_precision)


def linear_classifier(
    frame,
    target,
    date_columns=(),
    learning_rate=1e-2,
    name="tabular_linear_classifier",
    class_names=None,
    text_columns=(),
    fill_values=None,
):
    """Logistic regression on the encoded columns: the linear baseline (one weight per feature and class)."""
    return classifier(
        frame,
        target,
        date_columns,
        hidden_units=(),
        learning_rate=learning_rate,
        name=name,
        class_names=class_names,
        text_columns=text_columns,
        fill_values=fill_values,
    )


def regressor(
    frame,
    target,
    date_columns=(),
    hidden_units=(32,),
    dropout=0.1,
    learning_rate=1e-2,
    name="tabular_regressor",
    mixed_precision=False,
    text_columns=(),
    fill_values=None,
):
    """A regressor of the numeric `target` column from every other column of `frame`.

    Args: as `classifier` (without `class_names`); `target` must be numeric.

    Returns:
        A compiled `keras.Model` (loss mean squared error, metric mean
        absolute error) with one input per raw column and one number out.
    """
    if target in frame.columns and not pd.api.types.is_numeric_dtype(frame[target]):
        raise ValueError(f"`target` {target!r} must be numeric for a regressor; its dtype is {frame[target].dtype}")
    inputs, encoded = _features(frame, target, date_columns, text_columns, fill_values)
    hidden = _hidden(encoded, hidden_units, dropout, mixed_precision)
    # The output starts at the target's mean ("init well"): from 0, a linear model of a target near 15 spends its
    # first passes on the bias alone (temp_max: 8.1 mean absolute error after 10 passes, worse than the mean's 6.1).
    values = pd.to_numeric(frame[target], errors="coerce") if target in frame.columns else pd.Series(dtype=float)
    start = float(values.mean()) if values.notna().any() else 0.0
    prediction = keras.layers.Dense(
        1, name="prediction", dtype="float32", bias_initializer=keras.initializers.Constant(start)
    )(hidden)  # float32 out whatever the policy
    with dtype_policy(mixed_precision):
        model = keras.Model(inputs, prediction, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="mean_squared_error", metrics=["mean_absolute_error"]
    )
    return model


def linear_regressor(
    frame,
    target,
    date_columns=(),
    learning_rate=1e-2,
    name="tabular_linear_regressor",
    text_columns=(),
    fill_values=None,
):
    """Linear regression on the encoded columns: the linear baseline."""
    return regressor(
        frame,
        target,
        date_columns,
        hidden_units=(),
        learning_rate=learning_rate,
        name=name,
        text_columns=text_columns,
        fill_values=fill_values,
    )


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

"""The examples to explain, as the model takes them, and the class to explain for each."""

import numpy as np

from recipes.debug.errors import model_inputs


def examples(model, x, modality):
    """`x` checked and shaped for the model: an object array of strings, a dict of columns, or a numeric
    array with a batch axis (a single example gets one)."""
    if modality == "text":
        texts = np.asarray([x] if isinstance(x, str) else x, dtype=object)
        if texts.ndim != 1 or texts.size == 0 or not all(isinstance(t, str) for t in texts):
            raise ValueError(
                "`x` must be a non-empty sequence of strings (or one string) for a text model. "
                f"Received: shape {texts.shape}, e.g. {texts.reshape(-1)[:2].tolist()!r}"
            )
        return texts
    if modality == "table" and len(model.inputs) > 1:
        columns = model_inputs(model, x)
        if not isinstance(columns, dict):
            raise ValueError(
                f"`x` must be a dict of columns or a DataFrame with {[t.name for t in model.inputs]} for this table "
                f"model. Received: a {type(x).__name__}"
            )
        return columns
    if hasattr(x, "columns") or isinstance(x, dict):
        x = model_inputs(model, x)
        x = next(iter(x.values())) if isinstance(x, dict) else x
    array = np.asarray(x)
    expected = tuple(model.inputs[0].shape[1:])
    if array.ndim == len(expected):
        array = array[None]
    if (
        array.dtype.kind not in "biuf"
        or array.ndim != len(expected) + 1
        or array.shape[0] == 0
        or any(e is not None and e != s for e, s in zip(expected, array.shape[1:]))
    ):
        raise ValueError(
            f"`x` must hold numeric examples of shape {expected} (batch first) for this {modality} model. "
            f"Received: an array of shape {array.shape} and dtype {array.dtype}"
        )
    return array


def explained(class_name, predicted, class_names):
    """The class id to explain for each example: the predicted one, or `class_name` (a name, an id, or one each)."""
    n = len(predicted)
    if class_name is None:
        return predicted.astype(np.int64)
    values = [class_name] * n if isinstance(class_name, (str, int, np.integer)) else list(class_name)
    if len(values) != n:
        raise ValueError(f"`class_name` must be one class or one per example ({n}). Received: {len(values)} values")
    ids = []
    for value in values:
        if isinstance(value, str):
            if value not in class_names:
                raise ValueError(
                    f"`class_name` must be a class name, one of {class_names}. Received: class_name={value!r}"
                )
            value = class_names.index(value)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < len(class_names):
            raise ValueError(
                f"`class_name` must be a class name or a class id in 0..{len(class_names) - 1}. "
                f"Received: class_name={value!r}"
            )
        ids.append(int(value))
    return np.array(ids, dtype=np.int64)

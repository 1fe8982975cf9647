"""TF Serving's REST JSON formats (api_rest.md): request tensors in, response tensors out.

Row format (`instances`): a list with one entry per example, each either a
value of the only input or a dict from input name to value. Columnar format
(`inputs`): the value of the only input, or a dict from input name to a
batched value. `{"b64": "..."}` stands for binary strings. Answers follow
the request's format: `predictions` (a list of values per example, or of
dicts when there are several outputs) or `outputs`.
"""

import base64
import binascii
import math

import numpy as np
import tensorflow as tf

from serving.errors import ServingError


MAX_DIMS = 64  # NumPy's limit on dimensions: deeper lists are refused before recursing into them


def _is_b64(value):
    return isinstance(value, dict) and set(value) == {"b64"}


def _utf8(text, where):
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # JSON escapes such as "\\ud800" decode to lone surrogates
        raise ServingError(
            "INVALID_ARGUMENT", f"{where}: a string holds an unpaired UTF-16 surrogate escape and is not valid UTF-8"
        ) from None


def _decode(value, where, depth=0):
    """Replaces `{"b64": ...}` with bytes and strings with UTF-8 bytes, recursively."""
    if _is_b64(value):
        if not isinstance(value["b64"], str):
            raise ServingError("INVALID_ARGUMENT", f"{where}: the value of \"b64\" must be a string")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise ServingError("INVALID_ARGUMENT", f"{where}: invalid base64 data in {{\"b64\": ...}}") from None
    if isinstance(value, list):
        if depth >= MAX_DIMS:
            raise ServingError("INVALID_ARGUMENT", f"{where}: lists nested deeper than {MAX_DIMS} dimensions")
        return [_decode(v, where, depth + 1) for v in value]
    if isinstance(value, str):
        return _utf8(value, where)
    if isinstance(value, dict):
        raise ServingError("INVALID_ARGUMENT", f"{where}: a JSON object is not a tensor value (only {{\"b64\": ...}} is)")
    if value is None:
        raise ServingError("INVALID_ARGUMENT", f"{where}: null is not a tensor value")
    return value


def to_array(value, where):
    """A NumPy array from a JSON tensor value; ragged lists and mixed types are errors.

    Strings become an object array of bytes: NumPy's fixed-width bytes would
    drop trailing NUL bytes and turn numbers mixed in into strings.
    """
    decoded = _decode(value, where)
    try:
        array = np.array(decoded)
    except ValueError:
        raise ServingError(
            "INVALID_ARGUMENT", f"{where}: the lists are ragged; every row must have the same shape"
        ) from None
    if array.dtype.kind in "biuf":
        return array
    array = np.array(decoded, dtype=object)
    values = list(array.flat)
    if all(isinstance(v, bytes) for v in values):
        return array
    if any(isinstance(v, bytes) for v in values):
        raise ServingError("INVALID_ARGUMENT", f"{where}: mixes strings with other types")
    raise ServingError("INVALID_ARGUMENT", f"{where}: an integer does not fit in 64 bits")


UNNAMED = None  # the key of a value given without an input name: the signature's only input


def parse_predict(body):
    """The inputs of a predict request body and its format, `"row"` or `"columnar"`.

    A value given without a name (a plain `inputs` value, or instances that
    are not JSON objects) comes back under `UNNAMED`; `Servable.prepare`
    gives it the name of the signature's only input.
    """
    if not isinstance(body, dict):
        raise ServingError("INVALID_ARGUMENT", "the request body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise ServingError("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key" if "instances" not in body
                           else "Request body must have either 'inputs' or 'instances', not both")  # fmt: skip
    if "inputs" in body:
        value = body["inputs"]
        if isinstance(value, dict) and not _is_b64(value):
            return {name: to_array(v, f"input \"{name}\"") for name, v in value.items()}, "columnar"
        return {UNNAMED: to_array(value, "inputs")}, "columnar"
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise ServingError("INVALID_ARGUMENT", "'instances' must be a non-empty list")
    named = [isinstance(i, dict) and not _is_b64(i) for i in instances]
    if any(named) and not all(named):
        raise ServingError("INVALID_ARGUMENT", "instances mix named (JSON object) and unnamed values")
    if not named[0]:
        return {UNNAMED: to_array(instances, "instances")}, "row"
    keys = set(instances[0])
    for index, instance in enumerate(instances):
        if set(instance) != keys:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"instance {index} has inputs {sorted(instance)}; instance 0 has {sorted(keys)}: every instance needs the same inputs",
            )
    return {name: to_array([i[name] for i in instances], f"input \"{name}\"") for name in keys}, "row"


def _json_value(value, name):
    if isinstance(value, bytes):
        if name.endswith("_bytes"):
            return {"b64": base64.b64encode(value).decode("ascii")}
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _json_tensor(array, name):
    def convert(value):
        if isinstance(value, list):
            return [convert(v) for v in value]
        return _json_value(value, name)

    return convert(np.asarray(array).tolist())


def format_predict(outputs, request_format):
    """The response body for a predict request."""
    if request_format == "columnar":
        if len(outputs) == 1:
            (name, value), = outputs.items()
            return {"outputs": _json_tensor(value, name)}
        return {"outputs": {name: _json_tensor(value, name) for name, value in outputs.items()}}
    if len(outputs) == 1:
        (name, value), = outputs.items()
        return {"predictions": _json_tensor(value, name)}
    sizes = {name: (np.shape(value)[0] if np.ndim(value) else None) for name, value in outputs.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise ServingError(
            "INVALID_ARGUMENT",
            f"the outputs have different batch sizes {sizes}; use the columnar format ('inputs') for this signature",
        )
    columns = {name: _json_tensor(value, name) for name, value in outputs.items()}
    return {"predictions": [{name: column[i] for name, column in columns.items()} for i in range(next(iter(sizes.values())))]}


def _feature(value, where):
    values = value if isinstance(value, list) else [value]
    values = [_decode(v, where) for v in values]
    try:
        if all(isinstance(v, bytes) for v in values):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        if all(isinstance(v, bool) is False and isinstance(v, int) for v in values):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    except (ValueError, OverflowError):  # protobuf's "Value out of range"
        raise ServingError("INVALID_ARGUMENT", f"{where}: a number is out of the range of int64 or float") from None
    raise ServingError("INVALID_ARGUMENT", f"{where}: a feature must be a number, a string or a list of one type")


def parse_examples(body):
    """Serialized `tf.Example`s of a classify/regress body: `examples`, each merged with `context`."""
    if not isinstance(body, dict) or not isinstance(body.get("examples"), list) or not body["examples"]:
        raise ServingError("INVALID_ARGUMENT", "the request body must hold a non-empty list 'examples'")
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise ServingError("INVALID_ARGUMENT", "'context' must be a JSON object of features")
    serialized = []
    for index, example in enumerate(body["examples"]):
        if not isinstance(example, dict):
            raise ServingError("INVALID_ARGUMENT", f"example {index} must be a JSON object of features")
        features = {**context, **example}
        proto = tf.train.Example()
        for name, value in features.items():
            where = f"example {index} feature \"{name}\""
            _utf8(name, where)  # a name with a lone surrogate cannot be a proto map key
            proto.features.feature[name].CopyFrom(_feature(value, where))
        serialized.append(proto.SerializeToString())
    return np.array(serialized, dtype=object)

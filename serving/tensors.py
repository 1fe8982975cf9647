"""TensorProto <-> NumPy for requests and responses, without `tf.make_tensor_proto`'s per-call overhead.

`tf.make_tensor_proto` and `tf.make_ndarray` are general (any Python value,
any dtype, broadcasting), and that generality costs about 0.5 ms a tensor,
more than a small model's whole run: profiling the gRPC server under load
showed them taking half of its interpreter time. The common cases here are
exact: a string tensor with one value per element, or a numeric tensor in
`tensor_content` or its typed field. Those are converted directly; anything
else goes through TensorFlow's functions, so the results are the same.

Responses are written the two ways TensorFlow's C++ `Tensor` writes itself,
which TF Serving chooses between with `--enable_serialization_as_tensor_content`:
`AsProtoField` (the default) puts the values in the typed field of their dtype
(`float_val`, `int64_val`, `string_val`, `half_val`, ...), the fields that TF
Serving's example clients read; `AsProtoTensorContent` puts the tensor's
memory in `tensor_content`.
"""

import math

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

# dtype enum -> (NumPy dtype, the typed TensorProto field holding its values): the request path's fast cases
_NUMERIC = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_INT32: (np.int32, "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64_val"),
    types_pb2.DT_UINT8: (np.uint8, "int_val"),
    types_pb2.DT_INT8: (np.int8, "int_val"),
    types_pb2.DT_INT16: (np.int16, "int_val"),
    types_pb2.DT_UINT16: (np.uint16, "int_val"),
    types_pb2.DT_UINT32: (np.uint32, "uint32_val"),
    types_pb2.DT_UINT64: (np.uint64, "uint64_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val"),
}

# dtype enum -> the typed field TensorFlow's `Tensor::AsProtoField` fills (ProtoHelper<T> in tensor.cc)
_TYPED_FIELD = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_QINT8: "int_val",
    types_pb2.DT_QUINT8: "int_val",
    types_pb2.DT_QINT16: "int_val",
    types_pb2.DT_QUINT16: "int_val",
    types_pb2.DT_QINT32: "int_val",
    types_pb2.DT_INT4: "int_val",
    types_pb2.DT_UINT4: "int_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
    types_pb2.DT_COMPLEX64: "scomplex_val",  # real and imaginary parts interleaved
    types_pb2.DT_COMPLEX128: "dcomplex_val",
    types_pb2.DT_HALF: "half_val",  # the 16 bits of each value, as an int
    types_pb2.DT_BFLOAT16: "half_val",
    types_pb2.DT_FLOAT8_E5M2: "float8_val",  # one byte a value
    types_pb2.DT_FLOAT8_E4M3FN: "float8_val",
    types_pb2.DT_FLOAT8_E4M3FNUZ: "float8_val",
    types_pb2.DT_FLOAT8_E4M3B11FNUZ: "float8_val",
    types_pb2.DT_FLOAT8_E5M2FNUZ: "float8_val",
}
# A session's output arrays come in these NumPy dtypes (quantized ones as one-field structured dtypes).
_ENUM_OF = {np.dtype(tf.dtypes.as_dtype(enum).as_numpy_dtype): enum for enum in _TYPED_FIELD}
# Fields of fixed-width values, written as one packed field from the array's bytes: field -> little-endian dtype
_FIXED_WIDTH = {"float_val": "<f4", "double_val": "<f8", "scomplex_val": "<f4", "dcomplex_val": "<f8"}


def dtype_string(dtype):
    """A dtype as TensorFlow's C++ `DataTypeString` names it in messages: "float", "double", "half", "int32", "string"."""
    try:
        name = tf.dtypes.as_dtype(dtype).name
    except TypeError:  # a NumPy dtype TensorFlow has no name for
        name = np.dtype(dtype).name
    return {"float32": "float", "float64": "double", "float16": "half"}.get(name, name)


def _varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# field name -> the key of a length-delimited field (its number, wire type 2)
_KEY = {field.name: _varint(field.number << 3 | 2) for field in tensor_pb2.TensorProto.DESCRIPTOR.fields}


def _packed(field, data):
    """The wire bytes of a packed repeated field holding `data` (protobuf's encoding of repeated numbers)."""
    return _KEY[field] + _varint(len(data)) + data


def encode_strings(values):
    """A string tensor's `tensor_content`: the varint length of each value, then the values (TensorFlow's
    `EncodeStringList`)."""
    return b"".join(_varint(len(v)) for v in values) + b"".join(values)


def decode_strings(content, count):
    """The `count` values of a string tensor's `tensor_content` (TensorFlow's `DecodeStringList`).

    Raises:
        ValueError: if `content` does not hold exactly `count` values.
    """
    lengths, position = [], 0
    for _ in range(count):
        length = shift = 0
        while True:
            if position >= len(content) or shift > 28:
                raise ValueError(f"tensor_content does not start with {count} string lengths")
            byte = content[position]
            position += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        lengths.append(length)
    if sum(lengths) != len(content) - position:
        raise ValueError(
            f"tensor_content holds {len(content) - position} bytes of strings; its lengths add up to {sum(lengths)}"
        )
    values = []
    for length in lengths:
        values.append(content[position : position + length])
        position += length
    return values


def to_array(proto):
    """The NumPy array of a `TensorProto`, as TensorFlow's `Tensor::FromProto` reads it.

    Exact values (one per element, or `tensor_content` of the right size)
    are read here; anything else is read by `Tensor::FromProto` itself
    (`tf.io.parse_tensor`), which fills a tensor from fewer typed values by
    repeating the last one (zeros without any), takes the first values of
    too many, and refuses what it cannot read with `InvalidArgumentError`.
    """
    dims = [d.size for d in proto.tensor_shape.dim]
    elements = math.prod(dims)
    if proto.dtype == types_pb2.DT_STRING:
        if proto.tensor_content:
            return np.array(decode_strings(proto.tensor_content, elements), dtype=object).reshape(dims)
        if len(proto.string_val) == elements:  # through a list: NumPy reads one faster than protobuf's container
            return np.array(list(proto.string_val), dtype=object).reshape(dims)
    numeric = _NUMERIC.get(proto.dtype)
    if numeric is not None:
        numpy_dtype, field = numeric
        if proto.tensor_content:
            if len(proto.tensor_content) == elements * np.dtype(numpy_dtype).itemsize:
                return np.frombuffer(proto.tensor_content, dtype=numpy_dtype).reshape(dims)
        else:
            values = getattr(proto, field)
            if len(values) == elements:
                return np.array(values, dtype=numpy_dtype).reshape(dims)
    return tf.io.parse_tensor(proto.SerializeToString(), tf.dtypes.as_dtype(proto.dtype)).numpy()


def to_proto(array, tensor_content=False, proto=None):
    """A `TensorProto` of a NumPy array, as TensorFlow's C++ `Tensor` writes it.

    Args:
        array: The values.
        tensor_content: `False` (default) puts them in the typed field of
            their dtype (`Tensor::AsProtoField`); `True` in `tensor_content`
            (`Tensor::AsProtoTensorContent`).
        proto: Optional empty `TensorProto` to fill (a response's own, saving a
            copy); by default a new one.
    """
    array = np.asarray(array)
    proto = tensor_pb2.TensorProto() if proto is None else proto
    enum = _ENUM_OF.get(array.dtype)
    if enum == types_pb2.DT_STRING:
        values = array.ravel().tolist()
        if not all(isinstance(v, bytes) for v in values):
            enum = None
    if enum is None:
        proto.CopyFrom(tf.make_tensor_proto(array))
        return proto
    proto.dtype = enum
    proto.tensor_shape.SetInParent()  # present even for a scalar, as TensorFlow writes it
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if enum == types_pb2.DT_STRING:
        if tensor_content:
            proto.tensor_content = encode_strings(values)
        else:
            proto.string_val.extend(values)
        return proto
    flat = np.ascontiguousarray(array).ravel()
    if flat.dtype.names:  # quantized dtypes: their one field is the integer
        flat = flat.view(flat.dtype[0])
    if tensor_content:
        proto.tensor_content = flat.tobytes()
        return proto
    if not flat.size:
        return proto
    field = _TYPED_FIELD[enum]
    if field in _FIXED_WIDTH:  # the packed field's bytes are the values' bytes: parsed at memcpy speed
        proto.MergeFromString(
            _packed(field, flat.view(flat.real.dtype).astype(_FIXED_WIDTH[field], copy=False).tobytes())
        )
    elif field == "bool_val":  # a bool's varint is its one byte, 0 or 1
        proto.MergeFromString(_packed(field, flat.view(np.uint8).tobytes()))
    elif field == "float8_val":
        proto.float8_val = flat.view(np.uint8).tobytes()
    elif field == "half_val":
        proto.half_val.extend(flat.view(np.uint16).tolist())
    elif field == "int_val":
        proto.int_val.extend(flat.astype(np.int32).tolist())
    else:  # int64_val, uint32_val, uint64_val
        getattr(proto, field).extend(flat.tolist())
    return proto

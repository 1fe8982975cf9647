"""TensorProto <-> NumPy for the request path, without `tf.make_tensor_proto`'s per-call overhead.

`tf.make_tensor_proto` and `tf.make_ndarray` are general (any Python value,
any dtype, broadcasting), and that generality costs about 0.5 ms a tensor,
more than a small model's whole run: profiling the gRPC server under load
showed them taking half of its interpreter time. The common cases here are
exact: a string tensor with one value per element, or a numeric tensor in
`tensor_content` or its typed field. Those are converted directly; anything
else goes through TensorFlow's functions, so the results are the same.
"""

import math

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

# dtype enum -> (NumPy dtype, the typed TensorProto field holding its values)
_NUMERIC = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_INT32: (np.int32, "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64_val"),
    types_pb2.DT_UINT8: (np.uint8, "int_val"),
    types_pb2.DT_INT8: (np.int8, "int_val"),
    types_pb2.DT_INT16: (np.int16, "int_val"),
    types_pb2.DT_UINT16: (np.uint16, "int_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val"),
}
_ENUM_OF = {np.dtype(numpy_dtype): enum for enum, (numpy_dtype, _) in _NUMERIC.items()}


def to_array(proto):
    """The NumPy array of a `TensorProto`, as `tf.make_ndarray` reads it."""
    dims = [d.size for d in proto.tensor_shape.dim]
    elements = math.prod(dims)
    if proto.dtype == types_pb2.DT_STRING and len(proto.string_val) == elements:
        return np.array(proto.string_val, dtype=object).reshape(dims)
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
    return tf.make_ndarray(proto)


def to_proto(array):
    """A `TensorProto` of a NumPy array, as `tf.make_tensor_proto` makes it."""
    array = np.asarray(array)
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape])
    if array.dtype == object and all(isinstance(v, bytes) for v in array.flat):
        return tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=shape, string_val=array.ravel().tolist())
    enum = _ENUM_OF.get(array.dtype)
    if enum is not None:
        return tensor_pb2.TensorProto(dtype=enum, tensor_shape=shape, tensor_content=np.ascontiguousarray(array).tobytes())
    return tf.make_tensor_proto(array)

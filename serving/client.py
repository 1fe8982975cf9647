"""Clients for TF Serving's REST and gRPC APIs: raw inputs and keys in, one dict per row out.

Both work unchanged against `recipes-model-server` and the real
`tensorflow_model_server`. Large inputs are sent in chunks of `chunk_size`
rows; every returned row carries its key (when keys are given and the
signature is keyed, as `serving.export_model` makes it), so answers can be
joined back to their records.

Example:

```python
from serving.client import GrpcClient, RestClient

client = RestClient("http://127.0.0.1:8501", model="text")
client.predict({"text": ["A gripping thriller.", "Dull."]}, keys=["r1", "r2"])
# [{'key': 'r1', 'label': 'fresh', 'probabilities': [...]}, {'key': 'r2', ...}]
GrpcClient("127.0.0.1:8500", model="text").predict({"text": ["Dull."]}, keys=["r3"])
```
"""

import base64
import json
import urllib.error
import urllib.request

import numpy as np

from recipes._common import check_int
from serving.contract import KEY, KEYED_SIGNATURE


class ClientError(Exception):
    """The server refused a request: `code` is the HTTP status or the gRPC status name."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _columns(x, keys):
    """Named columns of equal length, with the keys as the `key` column."""
    if not isinstance(x, dict) or not x:
        raise ValueError(f"`x` must be a dict from input name to values. Received: {type(x).__name__}")
    columns = {name: list(values) if not isinstance(values, np.ndarray) else values for name, values in x.items()}
    if keys is not None:
        if KEY in columns:
            raise ValueError(f"`x` must not hold an input named {KEY!r}: pass the keys as `keys`")
        columns[KEY] = [str(k) for k in keys]
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"every input (and `keys`) must have one value per row. Received lengths: {lengths}")
    return columns, next(iter(lengths.values()))


def _check_arguments(version, label, chunk_size):
    if version is not None and label is not None:
        raise ValueError(f"give `version` or `label`, not both. Received: version={version!r}, label={label!r}")
    check_int("chunk_size", chunk_size)


def _chunks(columns, rows, chunk_size):
    for start in range(0, rows, chunk_size):
        yield {name: values[start : start + chunk_size] for name, values in columns.items()}


def _json_value(value):
    if isinstance(value, (bytes, np.bytes_)):
        return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, np.ndarray):
        return [_json_value(v) for v in value] if value.dtype == object else value.tolist()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _plain(value):
    """Output values as plain Python: lists, floats, and text for UTF-8 bytes."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value] if value.ndim else _plain(value.item())
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def _bytes_back(value):
    """JSON read surrogate-escaped, with text that carried bytes that are not UTF-8 as those bytes, as `_plain`."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape")
    if isinstance(value, list):
        return [_bytes_back(v) for v in value]
    if isinstance(value, dict):
        return {k: _bytes_back(v) for k, v in value.items()}
    return value


def _as_input(name, values, dtype):
    """`values` as an array of `dtype` (a `tf.DType`, or `None` to keep theirs), text as UTF-8 bytes.

    Numbers are converted within their kind or to a wider kind (float64 to
    float32, int to float), never floats to ints nor numbers to text or back.
    """
    array = np.asarray(values)
    if array.dtype.kind in "USO":  # exact bytes: NumPy's fixed-width strings drop trailing NULs
        flat = np.asarray(values, dtype=object).ravel()
        array = np.array([v.encode("utf-8") if isinstance(v, str) else v for v in flat], object)
        array = array.reshape(np.shape(values))
    if dtype is None:
        return array
    text = dtype.name == "string"
    if not array.size:
        return array.astype(object if text else dtype.as_numpy_dtype)
    if text != (array.dtype == object) or (
        not text and not np.can_cast(array.dtype, dtype.as_numpy_dtype, "same_kind")
    ):
        received = "strings" if array.dtype == object else f"{array.dtype} numbers"
        raise ValueError(f"input {name!r} takes {dtype.name} values. Received: {received}")
    return array if text else array.astype(dtype.as_numpy_dtype, copy=False)


class RestClient:
    """TF Serving's REST API.

    Args:
        url: Server root, defaults to `"http://127.0.0.1:8501"`.
        model: Model name, defaults to `"default"`.
        version: Optional int version; `None` (default) serves the latest.
        label: Optional version label; not with `version`.
        signature_name: Defaults to `serving.contract.KEYED_SIGNATURE` (`"serving_default"`).
        timeout: Seconds per request, defaults to 30.
        chunk_size: Rows per request, defaults to 256.
    """

    def __init__(
        self,
        url="http://127.0.0.1:8501",
        model="default",
        version=None,
        label=None,
        signature_name=KEYED_SIGNATURE,
        timeout=30,
        chunk_size=256,
    ):
        _check_arguments(version, label, chunk_size)
        self.url = url.rstrip("/")
        self.model_path = f"/v1/models/{model}" + (
            f"/versions/{version}" if version is not None else f"/labels/{label}" if label is not None else ""
        )
        self.signature_name = signature_name
        self.timeout = timeout
        self.chunk_size = chunk_size

    def _call(self, suffix, body=None):
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(
            self.url + self.model_path + suffix, data=data, method="POST" if data else "GET"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = response.read()
            try:
                return json.loads(data)
            except UnicodeDecodeError:  # TF Serving writes a string's bytes as they are, UTF-8 or not
                return _bytes_back(json.loads(data.decode("utf-8", "surrogateescape")))
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read()).get("error", error.reason)
            except ValueError:
                message = error.reason
            raise ClientError(error.code, message) from None

    def predict(self, x, keys=None):
        """Predictions for raw inputs `x` (a dict from input name to one value per row); one dict per row."""
        columns, rows = _columns(x, keys)
        answers = []
        for chunk in _chunks(columns, rows, self.chunk_size):
            outputs = self._call(":predict", self.predict_body(chunk))["outputs"]
            if not isinstance(outputs, dict):  # TF Serving leaves out the name of a single output
                outputs = {self._single_output_name(): outputs}
            size = len(next(iter(chunk.values())))
            answers.extend({name: values[i] for name, values in outputs.items()} for i in range(size))
        return answers

    def predict_body(self, columns):
        """The JSON body (columnar `inputs`) of a predict request for `columns`, a dict of equal-length lists."""
        return {"signature_name": self.signature_name, "inputs": {n: _json_value(v) for n, v in columns.items()}}

    def _single_output_name(self):
        if not hasattr(self, "_output_name"):
            signatures = self.metadata()["metadata"]["signature_def"]["signature_def"]
            (self._output_name,) = signatures[self.signature_name or KEYED_SIGNATURE]["outputs"]
        return self._output_name

    def status(self):
        return self._call("")

    def metadata(self):
        return self._call("/metadata")


class GrpcClient:
    """TF Serving's gRPC PredictionService, with the same arguments as `RestClient` (`target` "host:port")."""

    def __init__(
        self,
        target="127.0.0.1:8500",
        model="default",
        version=None,
        label=None,
        signature_name=KEYED_SIGNATURE,
        timeout=30,
        chunk_size=256,
    ):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        _check_arguments(version, label, chunk_size)
        self.channel = grpc.insecure_channel(
            target,
            options=[("grpc.max_receive_message_length", 2**31 - 1), ("grpc.max_send_message_length", 2**31 - 1)],
        )
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model, self.version, self.label = model, version, label
        self.signature_name = signature_name
        self.timeout = timeout
        self.chunk_size = chunk_size
        self._input_dtypes = {}

    def predict(self, x, keys=None):
        """Predictions for raw inputs `x` (a dict from input name to one value per row); one dict per row."""
        import grpc

        from serving import tensors

        columns, rows = _columns(x, keys)
        answers = []
        for chunk in _chunks(columns, rows, self.chunk_size):
            try:
                response = self.stub.Predict(self.predict_request(chunk), timeout=self.timeout)
            except grpc.RpcError as error:
                raise ClientError(error.code().name, error.details()) from None
            # typed fields (TF Serving's default) or tensor_content (--enable_serialization_as_tensor_content)
            outputs = {name: tensors.to_array(proto) for name, proto in response.outputs.items()}
            size = len(next(iter(chunk.values())))
            answers.extend({name: _plain(values[i]) for name, values in sorted(outputs.items())} for i in range(size))
        return answers

    def _model_spec(self, spec):
        spec.name = self.model
        spec.signature_name = self.signature_name
        if self.version is not None:
            spec.version.value = self.version
        if self.label is not None:
            spec.version_label = self.label

    def input_dtypes(self):
        """The signature's input dtypes (`tf.DType`s by input name), as its `GetModelMetadata` declares them.

        Asked once per model, version (or label) and signature, then kept:
        TF Serving refuses a request tensor of another dtype than its input's
        ("Expects arg[0] to be float but double is provided"), so every
        request is sent in these. An unknown signature gives `{}`, and its
        requests go as they are, for the server to refuse.
        """
        key = (self.model, self.version, self.label, self.signature_name)
        if key not in self._input_dtypes:
            import grpc
            import tensorflow as tf
            from tensorflow_serving.apis import get_model_metadata_pb2

            request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
            self._model_spec(request.model_spec)
            try:
                response = self.stub.GetModelMetadata(request, timeout=self.timeout)
            except grpc.RpcError as error:
                raise ClientError(error.code().name, error.details()) from None
            signatures = get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(signatures)
            signature = signatures.signature_def.get(self.signature_name or KEYED_SIGNATURE)
            if signature is None:
                return {}
            self._input_dtypes[key] = {name: tf.dtypes.as_dtype(info.dtype) for name, info in signature.inputs.items()}
        return self._input_dtypes[key]

    def predict_request(self, columns, input_dtypes=None):
        """The `PredictRequest` for `columns`, a dict from input name to equal-length values.

        Args:
            columns: Dict from input name to equal-length values.
            input_dtypes: Optional dict from input name to the `tf.DType` to
                send it in; defaults to the signature's (`input_dtypes()`):
                Python floats as float32 for a float32 input, ints as int32
                for an int32 one. Text goes as UTF-8 bytes.
        """
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        dtypes = self.input_dtypes() if input_dtypes is None else input_dtypes
        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec)
        for name, values in columns.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(_as_input(name, values, dtypes.get(name))))
        return request

    def close(self):
        self.channel.close()

"""Fuzzed requests over REST and gRPC get client errors that name the problem, and the server keeps serving.

Hypothesis generates 1,400 requests (derandomized: every run sends the same corpus) to a batched server holding
our keyed text export and TF Serving's half_plus_two: wrong types, shapes, dtypes and encodings, invalid base64,
unicode, emoji and NUL in names and keys, huge numbers and dimensions, empty, truncated, deeply nested and
oversized bodies, other methods. Every answer is either a well-formed success or a client error: REST 4xx with
`{"error": "..."}`, gRPC INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION or OUT_OF_RANGE with a message. Never a
5xx, gRPC's UNKNOWN or INTERNAL, or a dropped connection; except where TF Serving answers so too: what its HTTP
library (libevent) answers itself is an HTML page (404 for a path outside /v1/, 501 for a method it does not take,
400 for a request target it cannot read), and a CORS preflight (OPTIONS) gets an empty answer.
`@example`s and the plain tests pin the bugs it found; `pytest --hypothesis-show-statistics` lists the answers the
corpus got.
"""

import base64
import http.client
import json
import math
import os
import urllib.parse

import grpc
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from conftest import TESTDATA, tf_serving_model

import recipes
import serving
from models import text
from serving.batching import BatchingParameters
from serving.client import RestClient
from serving.manager import ModelConfig
from serving.server import ModelServer

pytestmark = pytest.mark.skipif(not os.path.isdir(TESTDATA), reason="../shared/tfserving_testdata is not here")
BODY_LIMIT = 64 * 1024  # the server's --rest_api_max_body_bytes here, so that oversized bodies stay cheap
GRPC_CLIENT_ERRORS = {"INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "OUT_OF_RANGE"}
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    recipes.set_seed(0)
    reviews = recipes.datasets.load_rotten_tomatoes()
    model = text.bag_of_words_classifier(reviews.text[:300], 2, class_names=["rotten", "fresh"], max_tokens=500)
    base = tmp_path_factory.mktemp("fuzz") / "text"
    serving.export_model(model, base)
    running = ModelServer(
        [ModelConfig("text", str(base)), ModelConfig("default", tf_serving_model("saved_model_half_plus_two_cpu"))],
        grpc_port=0,
        rest_port=0,
        poll_seconds=0,
        max_body_bytes=BODY_LIMIT,
        batching=BatchingParameters(max_batch_size=8, num_batch_threads=2, allowed_batch_sizes=(4, 8)),
    )
    running.text_model = model
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stubs(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel), model_service_pb2_grpc.ModelServiceStub(channel)
    channel.close()


def _weighted(*choices):
    """One of `(strategy, weight)` pairs, drawn in proportion to the weights."""
    return st.sampled_from([strategy for strategy, weight in choices for _ in range(weight)]).flatmap(lambda s: s)


# -- REST -------------------------------------------------------------------------------------------


def _send(connection, method, path, body=b"", headers=None):
    """One request on `connection`; returns the status, the JSON body (or raw bytes) and the response."""
    connection.putrequest(method, path, skip_accept_encoding=True)
    if headers is None:
        headers = {"Content-Length": str(len(body))} if body or method == "POST" else {}
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders(body or None)
    response = connection.getresponse()
    data = response.read()
    try:  # TF Serving's JSON carries a request's bytes as they came: rapidjson neither checks nor escapes UTF-8
        return response.status, json.loads(data.decode("utf-8", "surrogateescape")), response
    except ValueError:
        return response.status, data, response


def _event(status, answer):
    """Counts an answer for --hypothesis-show-statistics; a message quoting a request's raw bytes is printed escaped."""
    event(f"{status} {answer.get('error', '')[:30]}".encode("utf-8", "backslashreplace").decode("utf-8"))


def _check_rest(server, method, path, body=b"", headers=None):
    """Sends a request; asserts a well-formed answer, then that the connection, unless closed, still serves."""
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=20)
    try:
        status, answer, response = _send(connection, method, path, body, headers)
        if response.getheader("Content-Type") == "text/html":  # libevent's own answer (http_server.cc, evhttp)
            assert answer.startswith(b"<HTML>") and response.getheader("Connection") == "close", (status, answer)
            assert (
                status == 400
                or (status == 404 and not path.lower().startswith("/v1/"))
                or (status == 501 and method not in ("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"))
            ), (status, method, path)
            return status, {}
        if method == "OPTIONS" and answer == b"":  # a CORS preflight under /v1/: no handler, no body
            assert status in (200, 400) and path.lower().startswith("/v1/"), (status, path)
            return status, {}
        assert isinstance(answer, dict), (status, answer)
        if status == 200:
            assert set(answer) & {"predictions", "outputs", "results", "model_version_status", "metadata"}, answer
        else:
            assert 400 <= status < 500, (status, answer)
            assert set(answer) == {"error"} and isinstance(answer["error"], str) and answer["error"], answer
        if response.getheader("Connection", "").lower() != "close":
            assert _send(connection, "GET", "/v1/models/default")[0] == 200
    finally:
        connection.close()
    return status, answer


SIGNATURES = [
    "",
    "serving_default",
    "without_key",
    "classify_x_to_y",
    "regress_x_to_y",
    "regress_x_to_y2",
    "tensorflow/serving/predict",
]
NAMES = st.sampled_from(["text", "key", "x", "y", "inputs", "", "\x00", "k\x00", "😀"]) | st.text(max_size=6)
SURROGATES = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2)  # JSON "\ud800": not UTF-8
STRINGS = st.text(max_size=12) | st.sampled_from(["NaN", "Infinity", "", " ", "\x00", "k\x00", "😀", "é"]) | SURROGATES
B64 = st.builds(lambda data: {"b64": base64.b64encode(data).decode()}, st.binary(max_size=8)) | st.fixed_dictionaries(
    {"b64": st.text(max_size=8) | st.integers() | st.none() | st.sampled_from(["***", "YQ", "YQ==="])}
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30])
    | st.floats()
    | STRINGS
    | B64
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=3), max_leaves=12
)
RECTANGULAR = st.integers(0, 3).flatmap(  # lists of equal-length rows: tensors of some shape and dtype
    lambda width: st.lists(
        st.lists(st.floats() | st.integers(-5, 5) | STRINGS, min_size=width, max_size=width), max_size=4
    )
)
TENSOR_VALUES = RECTANGULAR | st.lists(SCALARS, max_size=6) | VALUES
SIGNATURE_NAMES = st.fixed_dictionaries(
    {},
    optional={
        "signature_name": _weighted((st.sampled_from(SIGNATURES[:3]), 4), (st.sampled_from(SIGNATURES), 2), (VALUES, 1))
    },
)
KEYS = st.text(max_size=8) | st.sampled_from(["\x00", "k\x00", "\x00k", "😀", "é", " "])
KEYED_ROWS = st.lists(  # mostly rows the model can answer, with any key
    st.fixed_dictionaries(
        {
            "text": _weighted((st.text(max_size=12).map("word {}".format), 8), (STRINGS, 1)),
            "key": _weighted((KEYS, 8), (STRINGS, 1)),
        }
    ),
    min_size=1,
    max_size=8,
)
PREDICT_BODIES = st.one_of(
    st.builds(lambda rows, extra: {"instances": rows, **extra}, KEYED_ROWS, SIGNATURE_NAMES),
    st.builds(
        lambda rows, extra: {"instances": rows, **extra},
        st.lists(st.dictionaries(NAMES, TENSOR_VALUES, max_size=3), max_size=4) | TENSOR_VALUES,
        SIGNATURE_NAMES,
    ),
    st.builds(
        lambda inputs, extra: {"inputs": inputs, **extra},
        st.dictionaries(NAMES, TENSOR_VALUES, max_size=3) | TENSOR_VALUES,
        SIGNATURE_NAMES,
    ),
    st.fixed_dictionaries({}, optional={"instances": VALUES, "inputs": VALUES, "signature_name": VALUES}),
)
FEATURES = st.fixed_dictionaries({"x": st.floats(width=32)}) | st.dictionaries(
    st.sampled_from(["x", "x", "y"]) | NAMES, SCALARS | st.lists(SCALARS, max_size=3) | VALUES, max_size=3
)
EXAMPLE_BODIES = st.fixed_dictionaries(
    {"examples": st.lists(FEATURES, min_size=1, max_size=4) | st.lists(FEATURES | VALUES, max_size=4) | VALUES},
    optional={"context": FEATURES | VALUES, "signature_name": st.sampled_from(SIGNATURES[3:] * 3 + SIGNATURES) | NAMES},
)
MODELS = st.sampled_from(
    ["/v1/models/default", "/v1/models/text"] * 4
    + [
        "/v1/models/text/versions/1",
        "/v1/models/default/versions/123",
        "/v1/models/default/labels/stable",
        "/v1/models/nope",
    ]
)
VERSIONS = ["", "/versions/123", "/versions/1", "/versions/-1", "/versions/99999999999999999999", "/labels/stable"]
MODEL_PATHS = MODELS.map(lambda model: model + ":predict") | st.builds(
    lambda name, version, suffix: f"/v1/models/{urllib.parse.quote(name, safe='')}{version}{suffix}",
    st.sampled_from(["text", "default", "nope"]) | st.text(min_size=1, max_size=6),
    st.sampled_from(VERSIONS) | st.text(min_size=1, max_size=4).map(lambda v: "/labels/" + urllib.parse.quote(v, "")),
    st.sampled_from([":predict", ":classify", ":regress", "/metadata", "", ":explain", "/", "/metadata:predict"]),
)
REST_REQUESTS = st.one_of(  # mostly to a served model and a fitting API, so that most get past the routing
    st.tuples(MODELS.map(lambda model: model + ":predict"), PREDICT_BODIES),
    st.tuples(
        st.sampled_from(["/v1/models/default:classify", "/v1/models/default:regress", "/v1/models/text:classify"]),
        EXAMPLE_BODIES,
    ),
    st.tuples(MODEL_PATHS, PREDICT_BODIES | EXAMPLE_BODIES | VALUES),
)
MUTATIONS = st.tuples(
    st.sampled_from(["none"] * 12 + ["truncate", "flip", "latin-1", "utf-16"]),
    st.integers(0, 10**6),
    st.integers(0, 255),
)
AS_SENT = ("none", 0, 0)


def _encode(body, ascii_only, mutation):
    """JSON bytes of `body`, as a client would send them or corrupted: truncated, re-encoded, a byte flipped."""
    data = json.dumps(body, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    kind, position, byte = mutation
    position = position % (len(data) + 1)
    if kind == "truncate":
        return data[:position]
    if kind == "flip":
        return data[:position] + bytes([byte]) + data[position + 1 :]
    if kind == "latin-1":
        return json.dumps(body, ensure_ascii=False).encode("latin-1", "replace")
    if kind == "utf-16":
        return json.dumps(body).encode("utf-16")
    return data


def _sent_bytes(keys):
    """Keys as the bytes rapidjson reads them into: a lone surrogate (escaped, or as CESU-8 bytes) is UTF-8 encoded."""
    return [key.encode("utf-8", "surrogatepass") for key in keys]


def _received_bytes(keys):
    """Keys as TF Serving writes them back: those bytes as they are, not valid UTF-8 (read surrogate-escaped)."""
    return [key.encode("utf-8", "surrogateescape") for key in keys]


@pytest.mark.slow
@settings(FUZZ, max_examples=450)
@given(request=REST_REQUESTS, ascii_only=st.booleans(), mutation=MUTATIONS)
@example(request=("/v1/models/default:predict", {"instances": ["\ud800"]}), ascii_only=True, mutation=AS_SENT)
@example(request=("/v1/models/default:regress", {"examples": [{"\ud800": 1.0}]}), ascii_only=True, mutation=AS_SENT)
@example(
    request=("/v1/models/default:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 10**30}]}),
    ascii_only=True,
    mutation=AS_SENT,
)  # out of int64: protobuf's ValueError was a 500
@example(
    request=("/v1/models/default:regress", {"examples": [{"x": [1.5, 10**400]}]}), ascii_only=True, mutation=AS_SENT
)  # out of float: OverflowError
@example(request=("/v1/models/default:predict", {"instances": [["a", 1]]}), ascii_only=True, mutation=AS_SENT)
@example(
    request=("/v1/models/default/versions/99999999999999999999:predict", {"instances": [1.0]}),
    ascii_only=True,
    mutation=AS_SENT,
)
def test_rest_fuzzed_json_bodies(server, request, ascii_only, mutation):
    path, body = request
    method = "GET" if path.endswith("/metadata") or ":" not in path.rsplit("/", 1)[-1] else "POST"
    data = _encode(body, ascii_only, mutation) if method == "POST" else b""
    status, answer = _check_rest(server, method, path, data)
    _event(status, answer)
    rows = body.get("instances") if isinstance(body, dict) and mutation[0] == "none" else None
    if status == 200 and path.startswith("/v1/models/text") and path.endswith(":predict") and isinstance(rows, list):
        if rows and isinstance(rows[0], dict) and set(rows[0]) == {"text", "key"}:
            received = _received_bytes([row["key"] for row in answer["predictions"]])
            assert received == _sent_bytes([row["key"] for row in rows])


@settings(FUZZ, max_examples=150)
@given(rows=KEYED_ROWS, columnar=st.booleans(), signature=st.sampled_from(["", "serving_default"]))
@example(rows=[{"text": "fine", "key": "k\x00"}, {"text": "good", "key": "\x00"}], columnar=False, signature="")
def test_rest_fuzzed_keys_come_back_as_sent(server, rows, columnar, signature):
    """Trailing NULs of keys were dropped: NumPy's fixed-width bytes strip them."""
    body = {"inputs": {n: [row[n] for row in rows] for n in ("text", "key")}} if columnar else {"instances": rows}
    body["signature_name"] = signature
    status, answer = _check_rest(server, "POST", "/v1/models/text:predict", json.dumps(body).encode())
    _event(status, answer)
    if status == 200:
        outputs = (
            answer["outputs"]
            if columnar
            else {name: [row[name] for row in answer["predictions"]] for name in ("key", "probabilities")}
        )
        assert _received_bytes(outputs["key"]) == _sent_bytes([row["key"] for row in rows])
        np.testing.assert_allclose(np.sum(outputs["probabilities"], axis=1), 1.0, rtol=1e-5)


RAW_BODIES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"", b"{}", b"null", b"[]", b'"text"', b"\xff\xfe{}", b"\xef\xbb\xbf{}", b'{"inputs": [1]}\x00']),
    st.integers(1, 30_000).map(lambda depth: b"[" * depth + b"]" * depth),  # deeper than Python's recursion limit
    st.integers(60, 900).map(lambda depth: b'{"instances": ' + b"[" * depth + b"1" + b"]" * depth + b"}"),
    st.integers(4300, 6000).map(lambda digits: b'{"instances": [' + b"7" * digits + b"]}"),  # int() refuses these
    st.integers(1, 3 * BODY_LIMIT).map(lambda size: b'{"instances": [' + b" " * size + b"1.0]}"),
)
HEADERS = st.sampled_from(
    [None] * 12
    + [  # None: the body's Content-Length; else these and no body
        {"Content-Length": "\u00b2"},
        {"Content-Length": "-1"},
        {"Content-Length": "9" * 30},
        {"Content-Length": "1e3"},
        {"Content-Length": "0x10"},
        {},
    ]
)
OTHER_PATHS = st.sampled_from(["/", "/v1", "/v1/models", "/v2/models/default:predict", "/v1/models//versions/1"])
DEEP = b'{"instances": ' + b"[" * 900 + b"1" + b"]" * 900 + b"}"


@settings(FUZZ, max_examples=250)
@given(
    method=st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"]),
    path=MODEL_PATHS | OTHER_PATHS,
    body=RAW_BODIES,
    headers=HEADERS,
)
@example(method="POST", path="/v1/models/default:predict", body=b"", headers={"Content-Length": "\u00b2"})  # int("²")
@example(method="POST", path="/v1/models/default:predict", body=b"[" * 30_000 + b"]" * 30_000, headers=None)
@example(method="POST", path="/v1/models/default:predict", body=DEEP, headers=None)  # RecursionError decoding it
@example(method="POST", path="/v1/models/default:predict", body=b"1" * 5000, headers=None)
@example(method="PUT", path="/v1/models/default:predict", body=b"{}", headers=None)  # was http.server's HTML 501
@example(method="POST", path="/v1/models/default:explain", body=b'{"instances": [1]}', headers=None)  # left unread
@example(method="GET", path="/v1/models/default/versions/" + "9" * 5000, body=b"", headers=None)
def test_rest_fuzzed_raw_bytes_paths_methods_and_headers(server, method, path, body, headers):
    if headers is not None:
        body = b""  # no Content-Length, or one the server cannot read: then no body, which it could not skip
    status, answer = _check_rest(server, method, path, body, headers)
    _event(status, answer)


# -- gRPC -------------------------------------------------------------------------------------------


def _tensor(dtype, dims, unknown_rank, field, values):
    proto = tensor_pb2.TensorProto(dtype=dtype)
    proto.tensor_shape.unknown_rank = unknown_rank
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims)
    if field == "tensor_content":
        proto.tensor_content = values
    else:
        getattr(proto, field).extend(values)
    return proto


def _huge(dims):
    return _tensor(types_pb2.DT_FLOAT, dims, False, "float_val", [1.0])  # TF fills the shape with the last value


def _array(values, dtype, shape):
    with np.errstate(invalid="ignore", over="ignore"):  # NaN and huge floats cast to ints: any value will do
        return np.array(values).astype(dtype).reshape(shape)


FIELDS = {
    "float_val": st.lists(st.floats(width=32), max_size=6),
    "double_val": st.lists(st.floats(), max_size=6),
    "int_val": st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6),
    "int64_val": st.lists(st.integers(-(2**63), 2**63 - 1), max_size=6),
    "half_val": st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6),
    "bool_val": st.lists(st.booleans(), max_size=6),
    "string_val": st.lists(st.binary(max_size=8) | st.text(max_size=8).map(str.encode), max_size=6),
    "scomplex_val": st.lists(st.floats(width=32), max_size=6),
    "tensor_content": st.binary(max_size=48),
}
RANDOM_TENSORS = st.sampled_from(sorted(FIELDS)).flatmap(  # any dtype, shape and values
    lambda field: st.builds(
        _tensor,
        st.sampled_from(sorted(types_pb2.DataType.values())) | st.integers(-3, 400),
        st.lists(st.integers(-3, 5) | st.sampled_from([2**31, 2**40, 2**62]), max_size=4),
        st.booleans() if field != "tensor_content" else st.just(False),
        st.just(field),
        FIELDS[field],
    )
)
DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int8, np.uint64, np.bool_, np.complex64]
ARRAYS = st.one_of(  # tensors as clients make them, of right and wrong dtypes and shapes
    st.integers(0, 10)
    .flatmap(lambda rows: st.sampled_from([(rows,), (rows, 1), (rows, 2), (1, rows, 1)]))
    .flatmap(
        lambda shape: st.builds(
            _array,
            st.lists(st.floats(), min_size=math.prod(shape), max_size=math.prod(shape)),
            st.sampled_from(DTYPES),
            st.just(shape),
        )
    ),
    st.lists(st.text(max_size=10).map(str.encode) | st.binary(max_size=10), max_size=10).map(
        lambda v: np.array(v, object)
    ),
    st.floats(width=32).map(np.float32) | st.text(max_size=5).map(lambda t: np.array(t.encode(), object)),
)
TENSORS = RANDOM_TENSORS | ARRAYS.map(tf.make_tensor_proto)
SPECS = st.builds(
    lambda name, version, label, signature: model_pb2.ModelSpec(
        name=name,
        signature_name=signature,
        **({"version": {"value": version}} if version is not None else {}),
        **({"version_label": label} if label is not None else {}),
    ),
    st.sampled_from(["text", "default", "nope", ""]) | st.text(max_size=6),
    st.none() | st.sampled_from([123, 1, 0, -1]) | st.integers(-(2**63), 2**63 - 1),
    st.none() | st.sampled_from(["stable", ""]) | st.text(max_size=4),
    st.sampled_from(SIGNATURES) | st.text(max_size=6),
)
SERVED_SPECS = st.builds(  # a served model and a signature it has, so that most requests get past the routing
    lambda name, signature: model_pb2.ModelSpec(name=name, signature_name=signature),
    st.sampled_from(["default", "text"]),
    st.sampled_from(["", "", "serving_default", "without_key", "regress_x_to_y"]),
)
INPUT_NAMES = st.sampled_from(["x", "text", "key", "inputs", "", "😀", "k\x00"]) | st.text(max_size=6)


def _keyed(texts, keys, spec):
    """A well-formed keyed PredictRequest (keys and texts of any content): it may well succeed."""
    request = predict_pb2.PredictRequest(model_spec=spec)
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(np.array([t.encode() for t in texts], object)))
    request.inputs["key"].CopyFrom(tf.make_tensor_proto(np.array([k.encode() for k in keys[: len(texts)]], object)))
    return request


PREDICT_REQUESTS = st.builds(
    lambda spec, inputs, output_filter: predict_pb2.PredictRequest(
        model_spec=spec, inputs=inputs, output_filter=output_filter
    ),
    SERVED_SPECS | SERVED_SPECS | SPECS,
    st.fixed_dictionaries({"x": TENSORS})
    | st.fixed_dictionaries({"text": TENSORS, "key": TENSORS})
    | st.dictionaries(INPUT_NAMES, TENSORS, max_size=3),
    st.just([]) | st.lists(st.sampled_from(["y", "key", "label", "probabilities"]) | st.text(max_size=5), max_size=3),
) | st.builds(
    _keyed,
    st.lists(st.text(max_size=10), min_size=1, max_size=10),
    st.lists(st.text(max_size=6), min_size=10, max_size=10),
    st.builds(model_pb2.ModelSpec, name=st.just("text"), signature_name=st.sampled_from(["", "serving_default"])),
)


def _predict(inputs):
    return predict_pb2.PredictRequest(model_spec={"name": "default"}, inputs=inputs)


def _grpc_code(call, request):
    """`("OK", response)`, or the status name and message of a client error."""
    try:
        response = call(request, timeout=60)
    except grpc.RpcError as error:
        assert error.code().name in GRPC_CLIENT_ERRORS and error.details(), (error.code(), error.details())
        return error.code().name, error.details()
    return "OK", response


@settings(FUZZ, max_examples=300)
@given(request=PREDICT_REQUESTS)
@example(request=_predict({"x": _tensor(0, [1], False, "float_val", [1.0])}))  # was UNKNOWN: TypeError
@example(request=_predict({"x": _tensor(types_pb2.DT_RESOURCE, [1], False, "int_val", [1])}))  # KeyError
@example(request=_predict({"x": _tensor(types_pb2.DT_FLOAT_REF, [1], False, "float_val", [1.0])}))
@example(request=_predict({"x": _tensor(types_pb2.DT_HALF, [1], False, "half_val", [70000])}))  # OverflowError
@example(request=_predict({"x": _huge([2**40])}))  # 4 TiB of 1.0 would have been allocated
@example(request=_predict({"x": _huge([-2])}))
def test_grpc_fuzzed_predict(stubs, request):
    code, response = _grpc_code(stubs[0].Predict, request)
    event(f"{code} {response[:30] if code != 'OK' else ''}")
    if code == "OK":
        assert response.model_spec.name == request.model_spec.name and response.outputs
        if "key" in response.outputs and "key" in request.inputs:  # keys come back as sent, NULs and all
            sent = tf.make_ndarray(request.inputs["key"]).tolist()
            assert tf.make_ndarray(response.outputs["key"]).tolist() == sent


def _feature(kind, values):
    if kind == "bytes_list":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if kind == "int64_list":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _input(kind, examples, context):
    request = classification_pb2.ClassificationRequest()  # any request's `input`: the same Input proto
    if kind == "example_list":
        request.input.example_list.examples.extend(examples)
    elif kind == "example_list_with_context":
        request.input.example_list_with_context.examples.extend(examples)
        request.input.example_list_with_context.context.CopyFrom(context)
    return request.input


FEATURE_PROTOS = (
    st.builds(_feature, st.just("float_list"), st.lists(st.floats(width=32), max_size=3))
    | st.builds(_feature, st.just("int64_list"), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3))
    | st.builds(_feature, st.just("bytes_list"), st.lists(st.binary(max_size=6), max_size=3))
)
ONE_FLOAT = st.builds(_feature, st.just("float_list"), st.lists(st.floats(width=32), min_size=1, max_size=1))
EXAMPLES = (
    st.fixed_dictionaries({"x": ONE_FLOAT})
    | st.dictionaries(st.sampled_from(["x", "x", "y"]) | st.text(max_size=5), FEATURE_PROTOS, max_size=3)
).map(lambda features: tf.train.Example(features=tf.train.Features(feature=features)))
INPUTS = st.builds(
    _input,
    st.sampled_from(["example_list"] * 3 + ["example_list_with_context"] * 2 + ["none"]),
    st.lists(EXAMPLES, min_size=1, max_size=4) | st.lists(EXAMPLES, max_size=4),
    EXAMPLES,
)
EXAMPLE_SPECS = (
    st.builds(
        lambda name, signature: model_pb2.ModelSpec(name=name, signature_name=signature),
        st.sampled_from(["default", "default", "text"]),
        st.sampled_from(["classify_x_to_y", "regress_x_to_y", "regress_x_to_y2", "", "without_key"]),
    )
    | SPECS
)
OTHER_REQUESTS = st.one_of(
    st.builds(
        lambda spec, i: ("Classify", classification_pb2.ClassificationRequest(model_spec=spec, input=i)),
        EXAMPLE_SPECS,
        INPUTS,
    ),
    st.builds(
        lambda spec, inputs: ("Regress", regression_pb2.RegressionRequest(model_spec=spec, input=inputs)),
        EXAMPLE_SPECS,
        INPUTS,
    ),
    st.builds(
        lambda spec, fields: (
            "GetModelMetadata",
            get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec, metadata_field=fields),
        ),
        SERVED_SPECS | SPECS,
        st.lists(st.sampled_from(["signature_def", "signature_def", ""]) | st.text(max_size=6), max_size=2),
    ),
    st.builds(
        lambda spec: ("GetModelStatus", get_model_status_pb2.GetModelStatusRequest(model_spec=spec)),
        SERVED_SPECS | SPECS,
    ),
)


@settings(FUZZ, max_examples=250)
@given(call=OTHER_REQUESTS)
def test_grpc_fuzzed_classify_regress_metadata_and_status(stubs, call):
    method, request = call
    stub = stubs[1] if method == "GetModelStatus" else stubs[0]
    code, response = _grpc_code(getattr(stub, method), request)
    event(f"{method} {code} {response[:30] if code != 'OK' else ''}")
    if code == "OK":
        kind = request.input.WhichOneof("kind") if method in ("Classify", "Regress") else None
        rows = len(getattr(request.input, kind).examples) if kind else None
        if method == "Classify":
            assert len(response.result.classifications) == rows
        elif method == "Regress":
            assert len(response.result.regressions) == rows
        elif method == "GetModelMetadata":
            assert "signature_def" in response.metadata
        else:
            assert response.model_version_status


# -- the bugs found, and answers after the corpus ----------------------------------------------------


def test_rest_keeps_its_connection_in_step_after_an_error(server):
    """A POST to an unknown path left its body unread, to be taken for the next request on the connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    try:
        for path in ("/v1/models/default:explain", "/v1/models/nope:predict", "/v1/models/default:predict"):
            status, _, _ = _send(connection, "POST", path, b'{"instances": [{"x": "not a number"}]}')
            assert status in (400, 404)
        status, answer, _ = _send(connection, "POST", "/v1/models/default:predict", b'{"instances": [1.0]}')
        assert (status, answer) == (200, {"predictions": [2.5]})
    finally:
        connection.close()


def test_tensor_parsing_errors_name_the_input_and_the_problem(stubs):
    for tensor, problem in [
        (_tensor(999, [1], False, "float_val", [1.0]), "tensor parsing error: x: unknown dtype 999"),
        (_tensor(types_pb2.DT_VARIANT, [1], False, "int_val", [1]), "DT_VARIANT cannot be sent in a request"),
        (_huge([2**31, 2**31]), "holds 4611686018427387904 elements, more than a request"),
        (_huge([3, -1]), "every dimension must be >= 0"),
        (_tensor(types_pb2.DT_FLOAT, [], True, "float_val", [1.0]), "unknown rank"),
        (_tensor(types_pb2.DT_FLOAT, [3], False, "tensor_content", b"abcde"), "do not make a tensor of shape [3]"),
    ]:
        with pytest.raises(grpc.RpcError) as raised:
            stubs[0].Predict(_predict({"x": tensor}), timeout=30)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and problem in raised.value.details()
    filled = stubs[0].Predict(_predict({"x": _huge([3])}), timeout=30)  # a few values that fill a shape still work
    assert tf.make_ndarray(filled.outputs["y"]).tolist() == [2.5, 2.5, 2.5]


def test_json_errors_name_the_problem(server):
    for body, problem in [  # TF Serving's messages (rapidjson 1.1.0's reader, util/json_tensor.cc)
        ({"instances": [{"x": "\ud800"}]}, "JSON Parse error: The surrogate pair in string is invalid."),
        ({"instances": [[1.0], [2.0, 3.0]]}, "Expecting tensor size: 1 but got: 2"),
        ({"instances": [["a", 1]]}, 'JSON Value: "a" Type: String is not of expected type: float'),  # 1 was b"1"
        ({"instances": [{"x": 2**63}, {"x": True}]}, "JSON Value: true Type: True is not of expected type: float"),
    ]:
        status, answer = _check_rest(server, "POST", "/v1/models/default:predict", json.dumps(body).encode())
        assert status == 400 and problem in answer["error"], answer
    # Integers past 64 bits were a 500, then refused; rapidjson reads them as doubles, and so does TF Serving.
    status, answer = _check_rest(server, "POST", "/v1/models/default:predict", b'{"instances": [18446744073709551616]}')
    assert (status, answer) == (200, {"predictions": [9.22337204e18]})  # the float32 2**63 + 2, in 9 digits
    body = {"signature_name": "regress_x_to_y", "examples": [{"x": 2**64}]}
    status, answer = _check_rest(server, "POST", "/v1/models/default:regress", json.dumps(body).encode())
    assert (status, answer) == (200, {"results": [9.22337204e18]})
    deep = b'{"inputs": ' + b"[" * 70 + b"]" * 70 + b"}"
    status, answer = _check_rest(server, "POST", "/v1/models/default:predict", deep)
    assert status == 400 and "nested deeper than 64 dimensions" in answer["error"]
    status, answer = _check_rest(server, "POST", "/v1/models/default:predict", b"[" * 100_000)
    assert status == 400 and "the limit of 65536 bytes" in answer["error"]


def test_correct_answers_on_both_protocols_after_the_corpus(server, stubs):
    texts = ["A gripping, beautifully shot thriller.", "Dull.", "Funny and warm."]
    keys = ["r-1", "😀\x00é", "k\x00\x00"]  # NULs at the end are part of a key too
    expected = server.text_model.predict(np.array(texts, dtype=object), verbose=0)
    by_rest = RestClient(f"http://127.0.0.1:{server.rest_port}", model="text").predict({"text": texts}, keys=keys)
    assert [row["key"] for row in by_rest] == keys
    np.testing.assert_allclose([row["probabilities"] for row in by_rest], expected, atol=1e-6)
    response = stubs[0].Predict(_keyed(texts, keys, model_pb2.ModelSpec(name="text")), timeout=30)
    assert [key.decode() for key in tf.make_ndarray(response.outputs["key"])] == keys
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]), expected, atol=1e-6)

"""Answers read the way TF Serving's own clients read them, and TF Serving's flags that change those answers.

TF Serving's example gRPC clients (`mnist_client.py`, `resnet_client_grpc.py`)
read a Predict response from the typed field of each output's dtype
(`response.outputs["scores"].float_val`), not with `tf.make_ndarray`: TF
Serving writes outputs with TensorFlow's `Tensor::AsProtoField`, and with
`tensor_content` only under `--enable_serialization_as_tensor_content`. Its
Classify, Regress and MultiInference serve the predict-method signatures of
TF2 SavedModels unless `--enable_signature_method_name_check` is given. The
client helpers here are written from TensorFlow's `tensor.cc` and TF Serving's
sources; the models are TF Serving's test SavedModels, one built here with an
output of every dtype, and two image classifiers exported with
`serving.export_model`, which clients written to do what TF Serving's
`mnist_client.py`, `resnet_client.py` and `resnet_client_grpc.py` do query
end to end, beside the requests of TF Serving's REST guide (`api_rest.md`).
"""

import base64
import http.client
import json
import os
import threading
from types import SimpleNamespace

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from conftest import TESTDATA, rest_request, tf_serving_model

from serving.client import GrpcClient
from serving.load import ServerProcess
from serving.manager import ModelConfig
from serving.server import ModelServer

pytestmark = pytest.mark.skipif(not os.path.isdir(TESTDATA), reason="../shared/tfserving_testdata is not here")

# The field a TF Serving client reads for each dtype: TensorFlow's ProtoHelper<T> in tensor.cc (AsProtoField).
TYPED_FIELDS = {
    "float16": "half_val",  # each value's 16 bits, as an int
    "bfloat16": "half_val",
    "float32": "float_val",
    "float64": "double_val",
    "int8": "int_val",
    "int16": "int_val",
    "int32": "int_val",
    "int64": "int64_val",
    "uint8": "int_val",
    "uint16": "int_val",
    "uint32": "uint32_val",
    "uint64": "uint64_val",
    "bool": "bool_val",
    "string": "string_val",
    "complex64": "scomplex_val",  # real, imaginary, real, ...
    "complex128": "dcomplex_val",
}
X = [0.0, 0.25, 1.0]


class EveryDtype(tf.Module):
    """`serving_default`: one output per dtype, named after it, computed from a float vector `x`."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def every_dtype(self, x):
        return {
            "float16": tf.cast(x * 3.3, tf.float16),
            "bfloat16": tf.cast(x * 3.3, tf.bfloat16),
            "float32": x * 0.1,
            "float64": tf.cast(x, tf.float64) * 0.1,
            "int8": tf.cast(x * -100, tf.int8),
            "int16": tf.cast(x * -30000, tf.int16),
            "int32": tf.cast(x * -2e9, tf.int32),
            "int64": tf.cast(x * 4, tf.int64) * -(2**40),
            "uint8": tf.cast(x * 255, tf.uint8),
            "uint16": tf.cast(x * 65535, tf.uint16),
            "uint32": tf.cast(x * 4e9, tf.uint32),  # beyond int32
            "uint64": tf.cast(x * 4, tf.uint64) * (2**62 - 1),  # beyond int64
            "bool": x > 0.5,
            "string": tf.strings.join([tf.strings.as_string(x), b"\x00\xff"]),  # NUL and not UTF-8
            "complex64": tf.complex(x, -2 * x),
            "complex128": tf.complex(tf.cast(x, tf.float64), tf.cast(-x, tf.float64)),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def shapes(self, x):
        return {"count": tf.size(x), "pairs": tf.stack([x, -x], axis=1)}  # a scalar and a matrix

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.float32, name="x"), tf.TensorSpec([], tf.float32, name="scale")]
    )
    def scaled(self, x, scale=tf.constant(2.0)):  # noqa: B008 - TF2 records it in the SignatureDef's `defaults`
        return {"y": x * scale, "z": -x}


@pytest.fixture(scope="module")
def every_dtype_model(tmp_path_factory):
    module = EveryDtype()
    base = tmp_path_factory.mktemp("every_dtype")
    signatures = {"serving_default": module.every_dtype, "shapes": module.shapes, "scaled": module.scaled}
    tf.saved_model.save(module, str(base / "1"), signatures=signatures)
    expected = {name: value.numpy() for name, value in module.every_dtype(tf.constant(X)).items()}
    return str(base), expected


@pytest.fixture(scope="module")
def image_models(tmp_path_factory):
    """Two small Fashion-MNIST classifiers exported with `serving.export_model`, as a user of the package makes them.

    `mnist` takes rows of 784 float pixels in [0, 1], as TF Serving's MNIST
    example model does; `resnet` takes uint8 images, and its export takes
    encoded image bytes, as the JPEG variant of TF Serving's ResNet example.
    Both answer `probabilities` and `label`, and have the signatures
    `serving_default` (with a `key` per row) and `without_key`.
    """
    import keras

    import recipes
    import serving
    from models import vision
    from recipes.layers import ClassProbabilities

    recipes.set_seed(0)
    images, labels = recipes.datasets.load_fashion_mnist("test")
    names = recipes.datasets.FASHION_MNIST_CLASSES
    rows = images.reshape(-1, 784).astype(np.float32) / 255
    pixels = keras.Input((784,), name="images")
    mnist = keras.Model(pixels, ClassProbabilities(names, name="probabilities")(pixels))
    mnist.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    mnist.fit(rows[:1000], labels[:1000], epochs=2, verbose=0)
    resnet = vision.linear_classifier((28, 28), 10, names)
    resnet.fit(images[:1000], labels[:1000], epochs=1, verbose=0)
    base = tmp_path_factory.mktemp("images")
    serving.export_model(mnist, base / "mnist")
    serving.export_model(resnet, base / "resnet")
    test = slice(1000, 1048)  # images neither model was trained on
    return SimpleNamespace(
        base=base, names=names, mnist=mnist, resnet=resnet, rows=rows[test], images=images[test], labels=labels[test]
    )


def _start(every_dtype_model, extra_configs=(), **flags):
    configs = [
        ModelConfig("every_dtype", every_dtype_model[0]),
        ModelConfig("tf2", tf_serving_model("saved_model_half_plus_two_tf2_cpu")),
        ModelConfig("tf1", tf_serving_model("saved_model_half_plus_two_cpu")),
        ModelConfig("half_plus_three", tf_serving_model("saved_model_half_plus_three")),
        *extra_configs,
    ]
    return ModelServer(configs, grpc_port=0, rest_port=0, poll_seconds=0, **flags)


@pytest.fixture(scope="module")
def server(every_dtype_model, image_models):
    """TF Serving's defaults, with the image models and TF Serving's test models under the names its guides use."""
    running = _start(
        every_dtype_model,
        [
            ModelConfig("mnist", str(image_models.base / "mnist")),
            ModelConfig("resnet", str(image_models.base / "resnet")),
            ModelConfig(
                "saved_model_half_plus_three", tf_serving_model("saved_model_half_plus_three")
            ),  # api_rest.md's name
        ],
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def flagged(every_dtype_model):
    """`--enable_signature_method_name_check --enable_serialization_as_tensor_content`."""
    running = _start(
        every_dtype_model, enable_signature_method_name_check=True, enable_serialization_as_tensor_content=True
    )
    yield running
    running.stop()


def _stub(running):
    return prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}"))


def _predict(running, model, inputs, signature=""):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))  # as TF Serving's example clients build requests
    return _stub(running).Predict(request, timeout=30)


def read_typed(proto, dtype_name):
    """An output's values as a TF Serving client reads them: from the typed field of its dtype.

    Also checks that the values are there and only there.
    """
    field = TYPED_FIELDS[dtype_name]
    shape = [d.size for d in proto.tensor_shape.dim]
    assert proto.tensor_content == b""
    assert [f.name for f, _ in proto.ListFields()] == ["dtype", "tensor_shape"] + [field] * bool(np.prod(shape)), proto
    values = getattr(proto, field)
    if field == "half_val":
        array = np.array(values, np.uint16).view(tf.as_dtype(dtype_name).as_numpy_dtype)
    elif field == "scomplex_val":
        array = np.array(values, np.float32).view(np.complex64)
    elif field == "dcomplex_val":
        array = np.array(values, np.float64).view(np.complex128)
    elif field == "string_val":
        array = np.array(values, object)
    else:
        array = np.array(values, dtype=dtype_name)  # int_val holds the 8- and 16-bit ones as int32
    return array.reshape(shape)


def _same(received, expected):
    """Equal values, bit for bit (NaN-safe, -0.0 told from 0.0); strings as bytes."""
    if expected.dtype == object:
        return received.tolist() == expected.tolist()
    return (
        received.dtype == expected.dtype
        and received.shape == expected.shape
        and received.tobytes() == expected.tobytes()
    )


def _example(**features):
    return tf.train.Example(
        features=tf.train.Features(
            feature={k: tf.train.Feature(float_list=tf.train.FloatList(value=[v])) for k, v in features.items()}
        )
    )


def _classify(running, model, signature, xs):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = model, signature
    request.input.example_list.examples.extend(_example(x=x) for x in xs)
    return _stub(running).Classify(request, timeout=30)


def _regress(running, model, signature, xs):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name, request.model_spec.signature_name = model, signature
    request.input.example_list.examples.extend(_example(x=x) for x in xs)
    return _stub(running).Regress(request, timeout=30)


def _multi_inference(running, model, tasks, xs):
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in tasks:
        task = request.tasks.add()
        task.model_spec.name, task.model_spec.signature_name, task.method_name = model, signature, method
    request.input.example_list.examples.extend(_example(x=x) for x in xs)
    return _stub(running).MultiInference(request, timeout=30)


def _code(call):
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code(), raised.value.details()


# -- Predict: typed fields by default, tensor_content on request --------------------------------------


def test_predict_answers_every_dtype_in_its_typed_field(server, every_dtype_model):
    _, expected = every_dtype_model
    response = _predict(server, "every_dtype", {"x": np.array(X, np.float32)})
    assert sorted(response.outputs) == sorted(TYPED_FIELDS)
    for name, proto in response.outputs.items():
        assert proto.dtype == tf.as_dtype(name).as_datatype_enum
        assert _same(read_typed(proto, name), expected[name]), (name, proto)

    shapes = _predict(server, "every_dtype", {"x": np.array(X, np.float32)}, signature="shapes").outputs
    assert read_typed(shapes["count"], "int32").tolist() == 3 and not shapes["count"].tensor_shape.dim
    assert read_typed(shapes["pairs"], "float32").tolist() == [[x, -x] for x in X]
    empty = _predict(server, "every_dtype", {"x": np.zeros([0], np.float32)}).outputs["string"]
    assert read_typed(empty, "string").shape == (0,)


def test_tf_servings_example_clients_read_float_val(server):
    # mnist_client.py: numpy.argmax(response.outputs['scores'].float_val); resnet_client_grpc.py reads float_val too
    response = _predict(server, "tf2", {"x": np.array([1.0, 2.0, 5.0], np.float32)})
    assert list(response.outputs["y"].float_val) == [2.5, 3.0, 4.5]
    assert int(np.argmax(response.outputs["y"].float_val)) == 2


def test_serialization_as_tensor_content_flag(flagged, every_dtype_model):
    _, expected = every_dtype_model
    response = _predict(flagged, "every_dtype", {"x": np.array(X, np.float32)})
    for name, proto in response.outputs.items():
        assert [f.name for f, _ in proto.ListFields()] == ["dtype", "tensor_shape", "tensor_content"], name
        # TensorFlow's own C++ reader (Tensor::FromProto) takes it back
        parsed = tf.io.parse_tensor(proto.SerializeToString(), tf.as_dtype(proto.dtype)).numpy()
        assert _same(parsed, expected[name]), name
        if name != "string":  # the tensor's memory, as Tensor::AsProtoTensorContent copies it
            assert proto.tensor_content == expected[name].tobytes(), name
            assert _same(tf.make_ndarray(proto), expected[name]), name


def test_our_grpc_client_reads_typed_fields_and_tensor_content_alike(server, flagged, every_dtype_model):
    _, expected = every_dtype_model
    answers = []
    for running in (server, flagged):
        client = GrpcClient(f"127.0.0.1:{running.grpc_port}", model="every_dtype")
        try:
            answers.append(client.predict({"x": np.array(X, np.float32)}))
        finally:
            client.close()
    assert answers[0] == answers[1]
    assert [row["float32"] for row in answers[0]] == expected["float32"].tolist()
    assert [row["uint64"] for row in answers[0]] == expected["uint64"].tolist()
    assert [row["string"] for row in answers[0]] == expected["string"].tolist()  # not UTF-8: bytes


def test_rest_answers_do_not_depend_on_the_flag(server, flagged):
    body = {"instances": [1.0, 2.0]}
    assert rest_request(server, "POST", "/v1/models/tf2:predict", body) == (200, {"predictions": [2.5, 3.0]})
    assert rest_request(flagged, "POST", "/v1/models/tf2:predict", body) == (200, {"predictions": [2.5, 3.0]})


# -- Classify, Regress and MultiInference on TF2 signatures (method name predict) -----------------------


def _assert_spec(spec, name, signature, version=123):
    assert (spec.name, spec.signature_name, spec.version.value) == (name, signature, version)


@pytest.mark.parametrize("model", ["tf2", "tf1"])
def test_tf2_and_tf1_classify_regress_multi_inference_as_tf_servings_tests(server, model):
    # tensorflow_model_server_test.py: testClassifyTf2, testRegressTf2, testMultiInferenceTf2 and their TF1 twins
    classified = _classify(server, model, "classify_x_to_y", [2.0])
    assert [[c.score for c in r.classes] for r in classified.result.classifications] == [[3.0]]
    _assert_spec(classified.model_spec, model, "classify_x_to_y")
    regressed = _regress(server, model, "regress_x_to_y", [2.0])
    assert [r.value for r in regressed.result.regressions] == [3.0]
    _assert_spec(regressed.model_spec, model, "regress_x_to_y")
    tasks = [("regress_x_to_y", "tensorflow/serving/regress"), ("classify_x_to_y", "tensorflow/serving/classify")]
    results = _multi_inference(server, model, tasks, [2.0]).results
    assert results[0].regression_result.regressions[0].value == 3.0
    assert results[1].classification_result.classifications[0].classes[0].score == 3.0
    for result, (signature, _) in zip(results, tasks):
        _assert_spec(result.model_spec, model, signature)
    # over REST: testClassifyREST and testRegressREST
    assert rest_request(
        server, "POST", f"/v1/models/{model}:classify", {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    ) == (200, {"results": [[["", 3.0]]]})
    assert rest_request(
        server, "POST", f"/v1/models/{model}:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    ) == (200, {"results": [3.0]})


def test_method_name_check_flag_refuses_predict_method_signatures(flagged):
    message = "Expected {} signature method_name to be tensorflow/serving/{}. Was: tensorflow/serving/predict"
    code, details = _code(lambda: _classify(flagged, "tf2", "classify_x_to_y", [2.0]))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, message.format("classification", "classify"))
    code, details = _code(lambda: _regress(flagged, "tf2", "regress_x_to_y", [2.0]))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, message.format("regression", "regress"))
    tasks = [("regress_x_to_y", "tensorflow/serving/regress")]
    code, details = _code(lambda: _multi_inference(flagged, "tf2", tasks, [2.0]))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, message.format("regression", "regress"))
    status, body = rest_request(
        flagged, "POST", "/v1/models/tf2:classify", {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    )
    assert (status, body) == (400, {"error": message.format("classification", "classify")})
    # signatures with the right method names, and Predict on predict-method ones, still serve
    assert _classify(flagged, "tf1", "classify_x_to_y", [2.0]).result.classifications[0].classes[0].score == 3.0
    assert rest_request(
        flagged, "POST", "/v1/models/tf1:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    )[1] == {"results": [3.0]}
    assert tf.make_ndarray(_predict(flagged, "tf2", {"x": np.array([2.0], np.float32)}).outputs["y"]).tolist() == [3.0]
    # Predict takes predict, classify and regress signatures; others (TF2's init op has no method name) are INTERNAL
    code, details = _code(lambda: _predict(flagged, "tf2", {}, signature="__saved_model_init_op"))
    assert code == grpc.StatusCode.INTERNAL and details.startswith(
        "Expected prediction signature method_name to be one of"
    )


# -- the REST guide's regress example: a signature declaring DT_FLOAT for a DT_STRING placeholder ------


@pytest.mark.parametrize("running", ["server", "flagged"])
def test_rest_guides_regress_example_on_half_plus_three(request, running):
    running = request.getfixturevalue(running)
    body = {"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 2.0}]}
    assert rest_request(running, "POST", "/v1/models/half_plus_three:regress", body) == (200, {"results": [3.5, 4.0]})
    regressed = _regress(running, "half_plus_three", "tensorflow/serving/regress", [1.0, 2.0])
    assert [r.value for r in regressed.result.regressions] == [3.5, 4.0]


def test_predict_feeds_the_graphs_dtype_where_the_signature_declares_another(server):
    # TF Serving feeds by tensor name: serialized tf.Examples go to the DT_STRING placeholder "tf_example:0"
    examples = np.array([_example(x=x).SerializeToString() for x in (1.0, 2.0)], dtype=object)
    response = _predict(server, "half_plus_three", {"inputs": examples}, signature="tensorflow/serving/regress")
    assert list(response.outputs["outputs"].float_val) == [3.5, 4.0]
    code, details = _code(
        lambda: _predict(
            server, "half_plus_three", {"inputs": np.array([1.0], np.float32)}, signature="tensorflow/serving/regress"
        )
    )
    # the session's refusal of a float for its string argument (FunctionCallFrame::SetArgs)
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "Expects arg[0] to be string but float is provided")
    # the metadata still shows the SignatureDef as exported, as TF Serving's does
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "half_plus_three"
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    _stub(server).GetModelMetadata(request, timeout=30).metadata["signature_def"].Unpack(signature_map)
    assert (
        signature_map.signature_def["tensorflow/serving/regress"].inputs["inputs"].dtype == tf.float32.as_datatype_enum
    )


def test_grpc_refuses_a_tensor_of_another_dtype_than_its_graph_tensor_as_tf_servings_session_does(server):
    # FunctionCallFrame::SetArgs: no cast, not even float64 (a NumPy array of Python floats) to float32
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert _predict_error(server, "tf1", {"x": np.array([[1.0]], np.float64)}) == (
        invalid,
        "Expects arg[0] to be float but double is provided",
    )
    assert _predict_error(server, "tf2", {"x": np.array([1], np.int32)}) == (
        invalid,
        "Expects arg[0] to be float but int32 is provided",
    )
    # arguments are numbered in the session's sorted order of feed names: scaled_scale:0, then scaled_x:0
    x = np.array([1.0, 2.0], np.float32)
    assert _predict_error(server, "every_dtype", {"x": x.astype(np.float64), "scale": np.float32(3.0)}, "scaled") == (
        invalid,
        "Expects arg[1] to be float but double is provided",
    )
    assert _predict_error(server, "every_dtype", {"x": x, "scale": np.float16(3.0)}, "scaled") == (
        invalid,
        "Expects arg[0] to be float but half is provided",
    )
    assert list(_predict(server, "tf1", {"x": np.array([[1.0]], np.float32)}).outputs["y"].float_val) == [2.5]


class _CallNames(grpc.UnaryUnaryClientInterceptor):
    """Records the name of each call a channel makes."""

    def __init__(self):
        self.names = []

    def intercept_unary_unary(self, continuation, client_call_details, request):
        self.names.append(client_call_details.method.rsplit("/", 1)[-1])
        return continuation(client_call_details, request)


def test_our_grpc_client_sends_the_signatures_dtypes_read_once_from_its_metadata(server):
    client = GrpcClient(f"127.0.0.1:{server.grpc_port}", model="tf1", signature_name="")
    calls = _CallNames()
    client.stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.intercept_channel(client.channel, calls))
    try:
        assert client.predict({"x": [[1.0], [2.0]]}) == [{"y": [2.5]}, {"y": [3.0]}]  # Python floats: float64 in NumPy
        assert client.predict({"x": np.array([[3]], np.int64)}) == [{"y": [3.5]}]
        assert client.predict_request({"x": [[1.0]]}).inputs["x"].dtype == tf.float32.as_datatype_enum
        assert client.input_dtypes() == {"x": tf.float32}
        with pytest.raises(ValueError, match="input 'x' takes float32 values. Received: strings"):
            client.predict({"x": [["1.0"]]})
        with pytest.raises(ValueError, match="input 'x' takes float32 values. Received: complex128 numbers"):
            client.predict({"x": [[1j]]})
    finally:
        client.close()
    assert calls.names == ["GetModelMetadata", "Predict", "Predict"]


# -- TF Serving's example clients and its REST guide, end to end -----------------------------------------
#
# The clients below do what tensorflow_serving/example/mnist_client.py, resnet_client.py and
# resnet_client_grpc.py do, against models exported with serving.export_model; the REST guide's requests
# (g3doc/api_rest.md) go to TF Serving's own test models.


def mnist_style_client(target, rows, concurrency=4):
    """mnist_client.py's do_inference: one `PredictRequest` per image from `tf.make_tensor_proto` of its float
    pixels, sent as futures with a 5 s deadline, at most `concurrency` at once; the class is the argmax of the
    response's `float_val`. Returns the classes and the `string_val` labels."""
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    slots, futures = threading.Semaphore(concurrency), []
    for image in rows:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "mnist"
        request.model_spec.signature_name = "without_key"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(image, shape=[1, image.size]))
        slots.acquire()
        future = stub.Predict.future(request, 5.0)
        future.add_done_callback(lambda _: slots.release())
        futures.append(future)
    responses = [future.result() for future in futures]
    classes = [int(np.argmax(np.array(r.outputs["probabilities"].float_val))) for r in responses]
    return classes, [r.outputs["label"].string_val[0].decode() for r in responses]


def test_an_mnist_style_grpc_client_classifies_as_the_keras_model(server, image_models):
    classes, labels = mnist_style_client(f"127.0.0.1:{server.grpc_port}", image_models.rows)
    expected = image_models.mnist.predict(image_models.rows, verbose=0).argmax(axis=1)
    assert classes == expected.tolist()
    assert labels == [image_models.names[c] for c in classes]
    error_rate = np.mean(np.array(classes) != image_models.labels)
    assert error_rate == np.mean(expected != image_models.labels) and error_rate < 0.5  # a model that learned
    # the same rows over REST, as resnet_client.py sends a float image tensor: a list per instance
    body = json.dumps({"signature_name": "without_key", "instances": image_models.rows[:3].tolist()})
    status, content_type, answer = _http_post(server, "/v1/models/mnist:predict", body)
    assert (status, content_type) == (200, "application/json")
    assert [int(np.argmax(p["probabilities"])) for p in json.loads(answer)["predictions"]] == classes[:3]


def _http_post(running, path, body):
    """A POST as `requests.post(url, data=body)` makes it: the body as given, no content type."""
    connection = http.client.HTTPConnection("127.0.0.1", running.rest_port, timeout=30)
    try:
        connection.request("POST", path, body=body.encode())
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def _jpegs(images):
    return [tf.io.encode_jpeg(image[..., None], quality=90).numpy() for image in images]


def _keras_probabilities_of_jpegs(model, jpegs):
    """What the Keras model answers for the pixels the JPEG files decode to."""
    pixels = np.stack([tf.io.decode_jpeg(jpeg, channels=1).numpy()[..., 0] for jpeg in jpegs])
    return model.predict(pixels, verbose=0)


def test_a_resnet_style_rest_client_sends_jpeg_bytes_in_b64(server, image_models):
    jpegs = _jpegs(image_models.images[:4])
    expected = _keras_probabilities_of_jpegs(image_models.resnet, jpegs)
    for jpeg, probabilities in zip(jpegs, expected):
        # resnet_client.py with MODEL_ACCEPT_JPG: '{"instances" : [{"b64": "%s"}]}', read predictions[0]
        b64 = base64.b64encode(jpeg).decode("utf-8")
        body = '{"signature_name": "without_key", "instances" : [{"b64": "%s"}]}' % b64  # noqa: UP031 - as it does
        status, _, answer = _http_post(server, "/v1/models/resnet:predict", body)
        assert status == 200, answer
        prediction = json.loads(answer)["predictions"][0]
        np.testing.assert_allclose(prediction["probabilities"], probabilities, atol=1e-6)
        assert prediction["label"] == image_models.names[int(np.argmax(prediction["probabilities"]))]
    # every image in one request, keyed, through the default signature; and in columnar form
    instances = [{"image": {"b64": base64.b64encode(j).decode()}, "key": f"photo-{i}"} for i, j in enumerate(jpegs)]
    status, _, answer = _http_post(server, "/v1/models/resnet:predict", json.dumps({"instances": instances}))
    predictions = json.loads(answer)["predictions"]
    assert status == 200 and [p["key"] for p in predictions] == [f"photo-{i}" for i in range(4)]
    np.testing.assert_allclose([p["probabilities"] for p in predictions], expected, atol=1e-6)
    columns = {"signature_name": "without_key", "inputs": {"image": [i["image"] for i in instances]}}
    status, _, answer = _http_post(server, "/v1/models/resnet:predict", json.dumps(columns))
    np.testing.assert_allclose(json.loads(answer)["outputs"]["probabilities"], expected, atol=1e-6)
    # the default signature also wants its keys: TF Serving's words for a request with one input of two
    body = json.dumps({"instances": [instances[0]["image"]]})
    status, _, answer = _http_post(server, "/v1/models/resnet:predict", body)
    error = json.loads(answer)["error"]
    assert status == 400 and error.startswith("input size does not match signature: 1!=2 len({"), error


def test_a_resnet_style_grpc_client_sends_jpeg_bytes_as_a_string_tensor(server, image_models):
    jpegs = _jpegs(image_models.images[4:8])
    expected = _keras_probabilities_of_jpegs(image_models.resnet, jpegs)
    stub = _stub(server)
    for jpeg, probabilities in zip(jpegs, expected):
        # resnet_client_grpc.py with MODEL_ACCEPT_JPG, the image as a batch of one
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "resnet"
        request.model_spec.signature_name = "without_key"
        request.inputs["image"].CopyFrom(tf.make_tensor_proto([jpeg]))
        result = stub.Predict(request, 10.0)
        np.testing.assert_allclose(result.outputs["probabilities"].float_val, probabilities, atol=1e-6)
        assert result.outputs["label"].string_val == [image_models.names[int(np.argmax(probabilities))].encode()]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "resnet"  # serving_default: images and keys, a batch of four
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(jpegs))
    request.inputs["key"].CopyFrom(tf.make_tensor_proto([b"a", b"b", b"c", b"d"]))
    result = stub.Predict(request, 10.0)
    assert list(result.outputs["key"].string_val) == [b"a", b"b", b"c", b"d"]
    np.testing.assert_allclose(np.reshape(result.outputs["probabilities"].float_val, (4, 10)), expected, atol=1e-6)
    assert [d.size for d in result.outputs["probabilities"].tensor_shape.dim] == [4, 10]


API_REST_STATUS = """{
 "model_version_status": [
  {
   "version": "123",
   "state": "AVAILABLE",
   "status": {
    "error_code": "OK",
    "error_message": ""
   }
  }
 ]
}"""


def _http(running, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", running.rest_port, timeout=30)
    try:
        connection.request(method, path, body=None if body is None else body.encode())
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read().decode()
    finally:
        connection.close()


def test_the_rest_guides_requests(server):
    """api_rest.md's example session on saved_model_half_plus_three, and each of its APIs and formats."""
    # curl http://localhost:8501/v1/models/saved_model_half_plus_three: the guide's text, byte for byte
    status = _http(server, "GET", "/v1/models/saved_model_half_plus_three")
    assert status == (200, "application/json", API_REST_STATUS + "\n")
    assert _http(server, "GET", "/v1/models/saved_model_half_plus_three/versions/123")[2] == API_REST_STATUS + "\n"
    status, content_type, body = _http(
        server, "POST", "/v1/models/saved_model_half_plus_three:predict", '{"instances": [1.0,2.0,5.0]}'
    )
    assert (status, content_type, json.loads(body)) == (200, "application/json", {"predictions": [3.5, 4.0, 5.5]})
    regress = '{"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 2.0}]}'
    status, _, body = _http(server, "POST", "/v1/models/saved_model_half_plus_three:regress", regress)
    assert (status, json.loads(body)) == (200, {"results": [3.5, 4.0]})
    # an incorrect URL: HTTP/1.1 404 Not Found, Content-Type: application/json, { "error": "..." }
    status, content_type, body = _http(server, "POST", "/v1/models/half:predict", '{"instances": [1.0,5.0]}')
    assert (status, content_type, json.loads(body)) == (
        404,
        "application/json",
        {"error": "Servable not found for request: Latest(half)"},
    )

    # Metadata: GetModelMetadataResponse as JSON
    metadata = json.loads(_http(server, "GET", "/v1/models/saved_model_half_plus_three/metadata")[2])
    assert metadata["model_spec"] == {"name": "saved_model_half_plus_three", "signature_name": "", "version": "123"}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert sorted(signatures) == ["serving_default", "tensorflow/serving/regress"]
    # Predict: row format (a value per instance, or an object of named inputs) and columnar format
    for path, request, answer in [
        ("/v1/models/tf1:predict", {"instances": [[1.0], [2.0]]}, {"predictions": [[2.5], [3.0]]}),
        ("/v1/models/tf1:predict", {"instances": [{"x": [1.0]}, {"x": [2.0]}]}, {"predictions": [[2.5], [3.0]]}),
        ("/v1/models/tf1:predict", {"inputs": [[1.0], [2.0]]}, {"outputs": [[2.5], [3.0]]}),
        ("/v1/models/tf1:predict", {"inputs": {"x": [[1.0], [2.0]]}}, {"outputs": [[2.5], [3.0]]}),
        (
            "/v1/models/tf1/versions/123:predict",
            {"signature_name": "serving_default", "instances": [[3.0]]},
            {"predictions": [[3.5]]},
        ),
        (
            "/v1/models/every_dtype:predict",
            {"signature_name": "scaled", "instances": [{"x": 1.0, "scale": 3.0}]},
            {"predictions": [{"y": 3.0, "z": -1.0}]},
        ),  # several outputs: an object per instance
        (
            "/v1/models/every_dtype:predict",
            {"signature_name": "scaled", "inputs": {"x": [1.0, 2.0], "scale": 3.0}},
            {"outputs": {"y": [3.0, 6.0], "z": [-1.0, -2.0]}},
        ),  # inputs of other 0-th dimensions: columnar
    ]:
        status, _, body = _http(server, "POST", path, json.dumps(request))
        assert (status, json.loads(body)) == (200, answer), (request, body)
    # Classify and regress: examples, a context shared by all of them, labels "" where the model has none
    for path, request, answer in [
        (
            "/v1/models/tf1:classify",
            {"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}, {"x": 2.0}]},
            {"results": [[["", 2.5]], [["", 3.0]]]},
        ),
        (
            "/v1/models/tf1:classify",
            {"signature_name": "classify_x_to_y", "context": {"x": 1.0}, "examples": [{}, {}]},
            {"results": [[["", 2.5]], [["", 2.5]]]},
        ),
        (
            "/v1/models/tf1:regress",
            {"signature_name": "regress_x_to_y2", "context": {"x": [4.0]}, "examples": [{}, {"x": 1.0}]},
            {"results": [5.0, 3.5]},
        ),  # an example's x wins
    ]:
        status, _, body = _http(server, "POST", path, json.dumps(request))
        assert (status, json.loads(body)) == (200, answer), (request, body)
    # regress_x2_to_y3 is a regress signature of a float tensor, not of tf.Examples: its session refuses them
    request = {"signature_name": "regress_x2_to_y3", "examples": [{"x2": 1.0}]}
    assert rest_request(server, "POST", "/v1/models/tf1:regress", request) == (
        400,
        {"error": "Expects arg[0] to be float but string is provided"},
    )
    # JSON conformance: NaN, Infinity and -Infinity are numbers, in and out
    status, _, body = _http(server, "POST", "/v1/models/tf1:predict", '{"instances": [[NaN], [Infinity], [-Infinity]]}')
    assert status == 200 and body.replace(" ", "").replace("\n", "") == '{"predictions":[[NaN],[Infinity],[-Infinity]]}'
    # every error is a JSON object with the one key "error"
    for method, path, request in [
        ("POST", "/v1/models/tf1:predict", '{"instances": [1.0,'),
        ("POST", "/v1/models/tf1:predict", '{"instances": [["a"]]}'),
        ("GET", "/v1/models/tf1/versions/7", None),
        ("POST", "/v1/models/tf1:explain", "{}"),
    ]:
        status, content_type, body = _http(server, method, path, request)
        assert status in (400, 404) and content_type == "application/json" and list(json.loads(body)) == ["error"]


# -- status codes and messages of TF Serving's sources ------------------------------------------------


def test_unknown_signatures_and_malformed_requests_get_tf_servings_codes(server):
    x = {"x": np.array([1.0], np.float32)}
    invalid, failed_precondition = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION
    expectations = [  # predict_util.cc, classifier.cc, regressor.cc, multi_inference.cc, get_model_metadata_impl.cc
        (
            lambda: _predict(server, "tf1", x, signature="nope"),
            failed_precondition,
            'Serving signature key "nope" not found.',
        ),
        (lambda: _classify(server, "tf1", "nope", [1.0]), invalid, "No signature was found with the name: nope"),
        (lambda: _regress(server, "tf1", "nope", [1.0]), invalid, "No signature was found with the name: nope"),
        (
            lambda: _multi_inference(server, "tf1", [("nope", "tensorflow/serving/regress")], [1.0]),
            invalid,
            "Requested signature not found in model graph: nope",
        ),
        (
            lambda: _multi_inference(server, "tf1", [("regress_x_to_y", "tensorflow/serving/regress")] * 2, [1.0]),
            invalid,
            "Duplicate evaluation of signature: regress_x_to_y",
        ),
        (
            lambda: _multi_inference(server, "tf1", [("regress_x_to_y", "tensorflow/serving/predict")], [1.0]),
            grpc.StatusCode.UNIMPLEMENTED,
            "Unsupported signature method_name: tensorflow/serving/predict",
        ),
        (lambda: _multi_inference(server, "tf1", [], [1.0]), invalid, "ModelSpec has no name specified."),
        (lambda: _regress(server, "tf1", "regress_x_to_y", []), invalid, "Input is empty."),
        (
            lambda: _classify(server, "tf2", "regress_x_to_y", [1.0]),
            invalid,
            'Expected classification signature outputs to contain at least one of "classes" or "scores"',
        ),
        (
            lambda: _regress(server, "tf1", "serving_default", [1.0]),
            invalid,
            "No regression inputs found in SignatureDef",
        ),
        (lambda: _stub(server).Predict(predict_pb2.PredictRequest(), timeout=30), invalid, "Missing ModelSpec"),
        (
            lambda: _stub(server).GetModelMetadata(
                get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": "tf1"}), timeout=30
            ),
            invalid,
            "GetModelMetadataRequest must specify at least one metadata_field",
        ),
        (
            lambda: _stub(server).GetModelMetadata(
                get_model_metadata_pb2.GetModelMetadataRequest(
                    model_spec={"name": "tf1"}, metadata_field=["signature_def", "graph"]
                ),
                timeout=30,
            ),
            invalid,
            "Metadata field graph is not supported",
        ),
    ]
    for call, code, message in expectations:
        received_code, details = _code(call)
        assert received_code == code and details.startswith(message), (code, message, received_code, details)
    # a signature name with a mixed-up task list: every task must name the first one's model
    request = inference_pb2.MultiInferenceRequest()
    for model in ("tf1", "tf2"):
        task = request.tasks.add()
        task.model_spec.name, task.model_spec.signature_name = model, "regress_x_to_y"
        task.method_name = "tensorflow/serving/regress"
    request.input.example_list.examples.add().CopyFrom(_example(x=1.0))
    assert _code(lambda: _stub(server).MultiInference(request, timeout=30)) == (
        invalid,
        "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
    )


def _predict_error(running, model, inputs, signature="", output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = model, signature
    request.output_filter.extend(output_filter)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return _code(lambda: _stub(running).Predict(request, timeout=30))


def test_predict_fills_inputs_from_the_signatures_defaults_and_checks_inputs_in_tf_servings_words(server):
    # predict_util.cc (VerifyRequestInputsSize, PreProcessPrediction) and TensorFlow's saved_model::GetInputValues
    x = np.array([1.0, 2.0], np.float32)
    response = _predict(server, "every_dtype", {"x": x}, signature="scaled")  # "scale" left out: its default, 2.0
    assert list(response.outputs["y"].float_val) == [2.0, 4.0]
    response = _predict(server, "every_dtype", {"x": x, "scale": np.float32(3.0)}, signature="scaled")
    assert list(response.outputs["y"].float_val) == [3.0, 6.0]
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert _predict_error(server, "tf1", {}) == (
        invalid,
        ("input size does not match signature: 0!=1 len({}) != len({x}). Sent extra: {}. Missing but required: {x}."),
    )
    assert _predict_error(server, "tf1", {"x": [[1.0]], "z": [1.0]}) == (
        invalid,
        (
            "input size does not match signature: 2!=1 len({x,z}) != len({x}). "
            "Sent extra: {z}. Missing but required: {}."
        ),
    )
    assert _predict_error(server, "tf1", {"z": [[1.0]]}) == (
        invalid,
        (
            "Signature input alias: x(feed name: x:0) not found in request and no default value provided. "
            "Inputs expected to be in the request {z}, or default input alias set: "
        ),
    )
    assert _predict_error(server, "every_dtype", {"scale": np.float32(3.0)}, "scaled") == (
        invalid,
        (
            "Signature input alias: x(feed name: scaled_x:0) not found in request and no default value provided. "
            "Inputs expected to be in the request {scale}, or default input alias set: scale"
        ),
    )
    assert _predict_error(server, "every_dtype", {"x": x, "q": x}, "scaled") == (
        invalid,
        "Inputs contains invalid name. Used request inputs: x, request input: q,x",
    )
    assert _predict_error(server, "tf1", {"x": [[1.0]]}, output_filter=["y", "w"]) == (
        invalid,
        "output tensor alias not found in signature: w Outputs expected to be in the set {y}.",
    )
    assert _predict_error(server, "tf1", {"x": [[1.0]]}, output_filter=["y", "y"]) == (
        invalid,
        "duplicate output tensor alias: y",
    )
    assert _predict_error(server, "tf1", {"x": [[b"1.0"]]}) == (
        invalid,
        "Expects arg[0] to be float but string is provided",
    )
    # only the outputs asked for, once each
    request = predict_pb2.PredictRequest(output_filter=["z"])
    request.model_spec.name, request.model_spec.signature_name = "every_dtype", "scaled"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    outputs = _stub(server).Predict(request, timeout=30).outputs
    assert {name: list(value.float_val) for name, value in outputs.items()} == {"z": [-1.0, -2.0]}


def test_request_tensors_are_read_as_tensorflows_from_proto_reads_them(server):
    """A typed field with fewer values than the shape holds repeats its last value (zeros without any), one with
    more has its first values taken; `tf.io.parse_tensor` is TensorFlow's C++ `Tensor::FromProto` itself."""
    for values, dims in (([7.0], [3, 1]), ([1.0, 2.0], [3, 1]), ([], [2, 1]), ([1.0, 2.0, 3.0, 4.0], [2, 1])):
        proto = tf.make_tensor_proto(np.zeros(dims, np.float32))
        proto.ClearField("tensor_content")
        proto.float_val.extend(values)
        fed = tf.io.parse_tensor(proto.SerializeToString(), tf.float32).numpy()
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "tf1"
        request.inputs["x"].CopyFrom(proto)
        y = _stub(server).Predict(request, timeout=30).outputs["y"]
        assert list(y.float_val) == (fed * 0.5 + 2).ravel().tolist(), values
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tf1"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros([2, 1], np.float32)))
    request.inputs["x"].tensor_content = b"\0" * 5  # not two floats
    code, details = _code(lambda: _stub(server).Predict(request, timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("tensor parsing error: x")


def test_version_labels_and_versions_of_unknown_models_as_server_core_reports_them(server):
    # server_core.cc: a label is looked up by model name first; basic_manager.cc names the request it cannot serve
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.version_label = "nope", "stable"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones([1, 1], np.float32)))
    assert _code(lambda: _stub(server).Predict(request, timeout=30)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label: stable",
    )
    request.model_spec.version.value = 5
    assert _code(lambda: _stub(server).Predict(request, timeout=30)) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(nope, 5)",
    )
    assert rest_request(server, "POST", "/v1/models/nope/labels/stable:predict", {"instances": [1.0]}) == (
        400,
        {"error": "Unrecognized servable version label: stable"},
    )


def test_reload_config_refuses_what_server_core_refuses(server):
    # model_service_impl.cc and server_core.cc: nothing served changes
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

    stub = model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))
    base = tf_serving_model("saved_model_half_plus_two_cpu")
    configs = {
        "": "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is currently "
        "supported",
        f'model_config_list {{ config {{ name: "tf1" base_path: "{base}" }} }}': "Illegal setting neither ModelServerConfig::model_type (deprecated) nor ModelServerConfig::model_platform, "
        "model name is tf1",
        f'model_config_list {{ config {{ name: "tf1" base_path: "{base}" model_platform: "tensorflow" }} '
        f'config {{ name: "tf1" base_path: "{base}" model_platform: "tensorflow" }} }}': "Illegal to list model tf1 multiple times in config list",
        'model_config_list { config { name: "tf1" base_path: "tf1" model_platform: "tensorflow" } }': "Expected model tf1 to have an absolute path or URI; got base_path()=tf1",
    }
    for text, message in configs.items():
        request = model_management_pb2.ReloadConfigRequest()
        text_format.Parse(text, request.config)
        assert _code(lambda: stub.HandleReloadConfigRequest(request, timeout=30)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            message,
        )
    assert sorted(server.manager.configs) == sorted(
        ["every_dtype", "tf2", "tf1", "half_plus_three", "mnist", "resnet", "saved_model_half_plus_three"]
    )


# -- the command line ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_command_line_flags():
    running = ServerProcess(
        [
            f"--model_base_path={tf_serving_model('saved_model_half_plus_two_tf2_cpu')}",
            "--enable_signature_method_name_check",
            "--enable_serialization_as_tensor_content=true",
        ]
    )
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(running.grpc_address))
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "default"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([2.0], np.float32)))
        y = stub.Predict(request, timeout=30).outputs["y"]
        assert not y.float_val and np.frombuffer(y.tensor_content, np.float32).tolist() == [3.0]
        classify = classification_pb2.ClassificationRequest()
        classify.model_spec.name, classify.model_spec.signature_name = "default", "classify_x_to_y"
        classify.input.example_list.examples.add().CopyFrom(_example(x=2.0))
        code, details = _code(lambda: stub.Classify(classify, timeout=30))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "method_name" in details
    finally:
        running.stop()

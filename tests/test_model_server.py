"""Conformance of recipes-model-server with TF Serving, on TF Serving's own test SavedModels and on ours."""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from serving.load import free_port
from serving.manager import ModelConfig
from serving.server import ModelServer

TESTDATA = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "shared", "tfserving_testdata")
pytestmark = pytest.mark.skipif(not os.path.isdir(TESTDATA), reason="../shared/tfserving_testdata is not here")


def _testdata(name):
    return os.path.abspath(os.path.join(TESTDATA, name))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import recipes
    from models import text
    import serving

    recipes.set_seed(0)
    reviews = recipes.datasets.load_rotten_tomatoes()
    model = text.bag_of_words_classifier(reviews.text[:300], 2, class_names=["rotten", "fresh"], max_tokens=500)
    exports = tmp_path_factory.mktemp("exports")
    serving.export_model(model, exports / "text", warmup_inputs=reviews.text.to_numpy()[:2])
    configs = [
        ModelConfig("default", _testdata("saved_model_half_plus_two_cpu")),
        ModelConfig("half_plus_three", _testdata("saved_model_half_plus_three")),
        ModelConfig("saved_model_half_plus_two_2_versions", _testdata("saved_model_half_plus_two_tf2_cpu")),
        ModelConfig("two_versions", _testdata("saved_model_half_plus_two_2_versions"), ("all",), {"stable": 123, "canary": 124}),
        ModelConfig("latest_only", _testdata("saved_model_half_plus_two_2_versions")),
        ModelConfig("text", str(exports / "text")),
    ]
    running = ModelServer(configs, grpc_port=0, rest_port=0, poll_seconds=0)
    running.text_model = model
    yield running
    running.stop()


def _rest(server, method, path, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def stubs(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel), model_service_pb2_grpc.ModelServiceStub(channel)
    channel.close()


# -- REST -------------------------------------------------------------------------------------------


def test_rest_predict_as_tf_serving_tests_expect(server):
    # tensorflow_model_server_test.py / http_rest_api_handler_test.cc: x declared [-1, 1], fed [3]
    assert _rest(server, "POST", "/v1/models/default:predict", {"instances": [2.0, 3.0, 4.0]}) == (
        200, {"predictions": [3.0, 3.5, 4.0]})  # fmt: skip
    assert _rest(server, "POST", "/v1/models/default/versions/123:predict", {"inputs": {"x": [[2.0], [3.0]]}}) == (
        200, {"outputs": [[3.0], [3.5]]})  # fmt: skip
    assert _rest(server, "POST", "/v1/models/default:predict", {"instances": [{"x": 1.0}], "signature_name": "serving_default"})[1] == {"predictions": [2.5]}
    # the TF1 export that tf.saved_model.load cannot read, and the native TF2 one
    assert _rest(server, "POST", "/v1/models/half_plus_three:predict", {"instances": [2.0, 3.0]})[1] == {"predictions": [4.0, 4.5]}
    assert _rest(server, "POST", "/v1/models/saved_model_half_plus_two_2_versions:predict", {"instances": [1.0]})[1] == {"predictions": [2.5]}


def test_rest_classify_and_regress(server):
    status, body = _rest(server, "POST", "/v1/models/default:regress",
                         {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}, {"x": 3.0}]})  # fmt: skip
    assert (status, body) == (200, {"results": [3.0, 3.5]})
    body = _rest(server, "POST", "/v1/models/default:regress",
                 {"signature_name": "regress_x_to_y2", "context": {"x": 4.0}, "examples": [{}]})[1]  # fmt: skip
    assert body == {"results": [5.0]}
    body = _rest(server, "POST", "/v1/models/default:classify", {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]})[1]
    assert body == {"results": [[["", 3.0]]]}
    status, body = _rest(server, "POST", "/v1/models/default:classify", {"examples": [{"x": 2.0}]})
    assert status == 400 and "Expected classification signature method_name" in body["error"]


def _signature_map(body):
    """The SignatureDefMap of a metadata body: JSON spelling aside (an empty map printed or not), the proto."""
    return json_format.ParseDict(body["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap())


def test_rest_metadata_equals_tf_servings_expected_json(server):
    with open(os.path.join(TESTDATA, "expected_metadata", "half_plus_two_model_metadata.json")) as f:
        assert _rest(server, "GET", "/v1/models/default/metadata") == (200, json.load(f))  # to the letter
    for model, expected_file in [
        ("saved_model_half_plus_two_2_versions", "saved_model_half_plus_two_tf2_2_versions_metadata.json"),
        ("two_versions", "saved_model_half_plus_two_2_versions_metadata.json"),
    ]:
        with open(os.path.join(TESTDATA, "expected_metadata", expected_file)) as f:
            expected = json.load(f)
        status, body = _rest(server, "GET", f"/v1/models/{model}/versions/123/metadata")
        assert status == 200 and body["model_spec"] == {**expected["model_spec"], "name": model}
        assert _signature_map(body) == _signature_map(expected)


def test_rest_status_policies_and_labels(server):
    assert _rest(server, "GET", "/v1/models/default")[1] == {
        "model_version_status": [{"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
    }
    versions = [s["version"] for s in _rest(server, "GET", "/v1/models/two_versions")[1]["model_version_status"]]
    assert versions == ["124", "123"]  # policy all
    assert [s["version"] for s in _rest(server, "GET", "/v1/models/latest_only")[1]["model_version_status"]] == ["124"]
    assert [s["version"] for s in _rest(server, "GET", "/v1/models/two_versions/labels/stable")[1]["model_version_status"]] == ["123"]
    assert _rest(server, "POST", "/v1/models/two_versions/labels/canary:predict", {"instances": [1.0]})[1] == {"predictions": [2.5]}


def test_rest_keyed_predictions_of_our_export(server):
    texts = ["A gripping, beautifully shot thriller.", "Dull and far too long."]
    status, body = _rest(server, "POST", "/v1/models/text:predict",
                         {"instances": [{"text": t, "key": f"review-{i}"} for i, t in enumerate(texts)]})  # fmt: skip
    assert status == 200
    assert [row["key"] for row in body["predictions"]] == ["review-0", "review-1"]
    expected = server.text_model.predict(np.array(texts, dtype=object), verbose=0)
    np.testing.assert_allclose([row["probabilities"] for row in body["predictions"]], expected, atol=1e-6)
    assert {row["label"] for row in body["predictions"]} <= {"rotten", "fresh"}
    # b64 strings and the unkeyed signature
    b64 = base64.b64encode(texts[0].encode()).decode()
    body = _rest(server, "POST", "/v1/models/text:predict", {"signature_name": "without_key", "inputs": {"text": [{"b64": b64}]}})[1]
    np.testing.assert_allclose(body["outputs"]["probabilities"][0], expected[0], atol=1e-6)


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/v1/models/nope:predict", {"instances": [1.0]}, 404, "Servable not found"),
        ("/v1/models/default/versions/7:predict", {"instances": [1.0]}, 404, "Specific(default, 7)"),
        ("/v1/models/default/labels/gold:predict", {"instances": [1.0]}, 400, "version label"),
        ("/v1/models/default:predict", {"instances": [1.0], "signature_name": "nope"}, 400, "signature key \"nope\" not found"),
        ("/v1/models/default:predict", {"instances": [{"y": 1.0}]}, 400, "missing ['x']; unexpected ['y']"),
        ("/v1/models/default:predict", {"instances": ["one"]}, 400, "expects float32 numbers; received strings"),
        ("/v1/models/default:predict", {"instances": [[1.0], [2.0, 3.0]]}, 400, "ragged"),
        ("/v1/models/default:predict", {"instances": [{"b64": "***"}]}, 400, "invalid base64"),
        ("/v1/models/default:predict", {"instances": [1.0], "inputs": [1.0]}, 400, "not both"),
        ("/v1/models/default:predict", {"signature_name": "serving_default"}, 400, "Missing 'inputs' or 'instances'"),
        ("/v1/models/default:predict", [1, 2], 400, "JSON object"),
        ("/v1/models/text:predict", {"instances": [{"text": "", "key": "k"}]}, 400, "empty strings"),
        ("/v1/models/text:predict", {"instances": ["no names"]}, 400, "has 2 inputs ['key', 'text']: name them"),
        ("/v1/models/default:explain", {"instances": [1.0]}, 404, "Malformed request"),
    ],
)
def test_rest_errors(server, path, body, status, message):
    received_status, received = _rest(server, "POST", path, body)
    assert received_status == status and message in received["error"], received


def test_rest_malformed_json_and_oversized_body(server):
    status, body = _rest(server, "POST", "/v1/models/default:predict", raw=b"{not json")
    assert status == 400 and "JSON Parse error" in body["error"]
    limit = server.rest_server.max_body_bytes
    server.rest_server.max_body_bytes = 1000
    try:
        status, body = _rest(server, "POST", "/v1/models/default:predict", {"instances": [1.0] * 1000})
    finally:
        server.rest_server.max_body_bytes = limit
    assert status == 400 and "exceeds the limit of 1000 bytes" in body["error"]
    assert _rest(server, "POST", "/v1/models/default:predict", {"instances": [1.0]})[0] == 200  # still serving


def test_rest_body_shorter_than_its_content_length_is_refused_not_waited_for_forever(server):
    def send_short_body(close_write):
        with socket.create_connection(("127.0.0.1", server.rest_port), timeout=10) as connection:
            connection.sendall(b"POST /v1/models/default:predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"inst")
            if close_write:
                connection.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := connection.recv(4096):  # headers and body come in separate writes; it closes after
                answer += chunk
            return answer.decode()

    answer = send_short_body(close_write=True)
    assert answer.startswith("HTTP/1.1 400") and "ended after 6 of its 100 bytes" in answer
    timeout = server.rest_server.read_timeout_seconds
    server.rest_server.read_timeout_seconds = 1
    try:
        answer = send_short_body(close_write=False)  # the client stalls: its thread is freed after 1 s
    finally:
        server.rest_server.read_timeout_seconds = timeout
    assert answer.startswith("HTTP/1.1 400") and "Connection: close" in answer
    assert _rest(server, "POST", "/v1/models/default:predict", {"instances": [1.0]})[0] == 200  # still serving


def test_rest_api_timeout_answers_504_and_keeps_serving(server):
    body = {"instances": [{"text": "a long and winding review " * 40, "key": str(i)} for i in range(5000)]}
    timeout = server.rest_server.timeout_ms
    server.rest_server.timeout_ms = 1  # --rest_api_timeout_in_ms=1
    try:
        status, answer = _rest(server, "POST", "/v1/models/text:predict", body)
    finally:
        server.rest_server.timeout_ms = timeout
    assert status == 504 and "Timed out" in answer["error"], answer
    assert _rest(server, "POST", "/v1/models/text:predict", {"instances": [{"text": "fine", "key": "k"}]})[0] == 200


# -- gRPC -------------------------------------------------------------------------------------------


def _predict_request(name, values, signature="", version=None, label=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for key, value in values.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def test_grpc_predict_metadata_and_status(stubs):
    prediction, model = stubs
    response = prediction.Predict(_predict_request("default", {"x": np.array([[2.0], [3.0]], "float32")}), timeout=30)
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["y"]), [[3.0], [3.5]])
    assert (response.model_spec.version.value, response.model_spec.signature_name) == (123, "serving_default")
    response = prediction.Predict(_predict_request("two_versions", {"x": np.array([1.0], "float32")}, label="stable"))
    assert response.model_spec.version.value == 123

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "default"
    metadata = prediction.GetModelMetadata(request)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signature_map)
    with open(os.path.join(TESTDATA, "expected_metadata", "half_plus_two_model_metadata.json")) as f:
        expected = json.load(f)["metadata"]["signature_def"]
    assert json_format.MessageToDict(signature_map, preserving_proto_field_name=True, always_print_fields_with_no_presence=True) == expected

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "two_versions"
    status = model.GetModelStatus(status_request)
    assert [(s.version, s.state) for s in status.model_version_status] == [
        (124, get_model_status_pb2.ModelVersionStatus.AVAILABLE), (123, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    ]  # fmt: skip


def test_grpc_output_filter_classify_regress_multi_inference(stubs):
    prediction, _ = stubs
    request = _predict_request("text", {"text": np.array([b"great fun"], dtype=object), "key": np.array([b"k-9"], dtype=object)})
    request.output_filter.append("key")
    response = prediction.Predict(request)
    assert list(response.outputs) == ["key"] and tf.make_ndarray(response.outputs["key"]).tolist() == [b"k-9"]

    examples = [tf.train.Example(features=tf.train.Features(feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[v]))})) for v in (2.0, 4.0)]
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name, regress.model_spec.signature_name = "default", "regress_x_to_y"
    regress.input.example_list.examples.extend(examples)
    assert [r.value for r in prediction.Regress(regress).result.regressions] == [3.0, 4.0]
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name, classify.model_spec.signature_name = "default", "classify_x_to_y"
    classify.input.example_list.examples.extend(examples)
    assert [c.classes[0].score for c in prediction.Classify(classify).result.classifications] == [3.0, 4.0]

    multi = inference_pb2.MultiInferenceRequest()
    multi.input.example_list.examples.extend(examples)
    for signature, method in (("regress_x_to_y", "tensorflow/serving/regress"), ("classify_x_to_y", "tensorflow/serving/classify")):
        task = multi.tasks.add()
        task.model_spec.name, task.model_spec.signature_name, task.method_name = "default", signature, method
    results = prediction.MultiInference(multi).results
    assert [r.value for r in results[0].regression_result.regressions] == [3.0, 4.0]
    assert [c.classes[0].score for c in results[1].classification_result.classifications] == [3.0, 4.0]


@pytest.mark.parametrize(
    "request_fn, code",
    [
        (lambda: _predict_request("nope", {"x": np.array([1.0], "float32")}), grpc.StatusCode.NOT_FOUND),
        (lambda: _predict_request("default", {"x": np.array([1.0], "float32")}, version=9), grpc.StatusCode.NOT_FOUND),
        (lambda: _predict_request("default", {"z": np.array([1.0], "float32")}), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: _predict_request("default", {"x": np.array([1.0], "float32")}, signature="nope"), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: _predict_request("default", {"x": np.array([b"a"], dtype=object)}), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: _predict_request("text", {"text": np.array([b""], dtype=object), "key": np.array([b"k"], dtype=object)}), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_grpc_errors(stubs, request_fn, code):
    with pytest.raises(grpc.RpcError) as raised:
        stubs[0].Predict(request_fn(), timeout=30)
    assert raised.value.code() == code, raised.value.details()


def test_grpc_reload_config(server, stubs):
    prediction, model = stubs
    config = model_server_config_pb2.ModelServerConfig()
    for name, folder in (("default", "saved_model_half_plus_two_cpu"), ("added", "saved_model_half_plus_three")):
        entry = config.model_config_list.config.add()
        entry.name, entry.base_path, entry.model_platform = name, _testdata(folder), "tensorflow"
    previous = list(server.manager.configs.values())
    try:
        response = model.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=config))
        assert response.status.error_code == 0
        answer = prediction.Predict(_predict_request("added", {"x": np.array([1.0], "float32")}))
        assert tf.make_ndarray(answer.outputs["y"]).tolist() == [3.5]
        with pytest.raises(grpc.RpcError) as raised:
            prediction.Predict(_predict_request("text", {"text": np.array([b"a"], dtype=object), "key": np.array([b"k"], dtype=object)}))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        server.manager.reload(previous)


# -- lifecycle --------------------------------------------------------------------------------------


def _wait_for_swap(manager, name, to_version, seconds):
    """Waits until `to_version` is the newest version of `name` and the version it replaced has ended."""
    deadline = time.monotonic() + seconds
    while manager.status(name)[0][0] != to_version or manager.status(name)[-1][1].state != "END":
        assert time.monotonic() < deadline, manager.status(name)
        time.sleep(0.1)


def test_version_swap_while_clients_run_fails_no_request(tmp_path):
    base = tmp_path / "model"
    shutil.copytree(_testdata("saved_model_half_plus_two_cpu/00000123"), base / "1")
    running = ModelServer([ModelConfig("swap", str(base))], grpc_port=None, rest_port=0, poll_seconds=0.2)
    answers, failures, stop = [], [], threading.Event()

    def client():
        while not stop.is_set():
            status, body = _rest(running, "POST", "/v1/models/swap:predict", {"instances": [2.0]})
            (answers if status == 200 else failures).append(body)

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        shutil.copytree(_testdata("saved_model_half_plus_three/00000123"), tmp_path / "staging")
        os.rename(tmp_path / "staging", base / "2")  # atomic, as serving.export_model writes
        _wait_for_swap(running.manager, "swap", to_version=2, seconds=60)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        running.stop()
    assert failures == []
    values = [a["predictions"][0] for a in answers]
    assert values[0] == 3.0 and values[-1] == 4.0 and set(values) == {3.0, 4.0}  # half_plus_two, then half_plus_three


def test_a_version_that_fails_to_load_is_reported_and_not_served(tmp_path):
    shutil.copytree(_testdata("saved_model_half_plus_two_cpu/00000123"), tmp_path / "m" / "1")
    (tmp_path / "m" / "2").mkdir()
    (tmp_path / "m" / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
    running = ModelServer([ModelConfig("m", str(tmp_path / "m"))], grpc_port=None, rest_port=0, poll_seconds=0)
    try:
        statuses = {s["version"]: s for s in _rest(running, "GET", "/v1/models/m")[1]["model_version_status"]}
        assert statuses["2"]["state"] == "END" and statuses["2"]["status"]["error_code"] != "OK"
        assert statuses["1"]["state"] == "AVAILABLE"
        assert _rest(running, "POST", "/v1/models/m:predict", {"instances": [2.0]}) == (200, {"predictions": [3.0]})
    finally:
        running.stop()


@pytest.mark.slow
def test_command_line_serves_and_stops_on_sigterm(tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list { config { name: "hp2" base_path: "%s" model_platform: "tensorflow" } }'
        % _testdata("saved_model_half_plus_two_cpu")
    )
    rest_port_wanted = free_port()  # --rest_api_port=0 disables REST, as in TF Serving
    command = [os.path.join(os.path.dirname(sys.executable), "recipes-model-server"), "--port=0",
               f"--rest_api_port={rest_port_wanted}", f"--model_config_file={config}"]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    rest_port = None
    for line in process.stderr:
        if "Exporting HTTP/REST API at:" in line:
            rest_port = int(line.rsplit(":", 1)[1].split()[0])
            break
    assert rest_port == rest_port_wanted
    assert rest_port, "the server did not start"
    with urllib.request.urlopen(
        urllib.request.Request(f"http://127.0.0.1:{rest_port}/v1/models/hp2:predict", data=b'{"instances": [2.0]}'), timeout=30
    ) as response:
        assert json.loads(response.read()) == {"predictions": [3.0]}
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert "Shutting down" in process.stderr.read()


# -- clients ----------------------------------------------------------------------------------------


def test_clients_chunk_and_keep_keys(server):
    from serving.client import ClientError, GrpcClient, RestClient

    texts = ["A gripping thriller.", "Dull.", "Funny and warm.", "Too long by half.", "A masterpiece."]
    keys = [f"order-{i}" for i in range(5)]
    rest = RestClient(f"http://127.0.0.1:{server.rest_port}", model="text", chunk_size=2)
    grpc_client = GrpcClient(f"127.0.0.1:{server.grpc_port}", model="text", chunk_size=2)
    try:
        by_rest = rest.predict({"text": texts}, keys=keys)
        by_grpc = grpc_client.predict({"text": texts}, keys=keys)
        expected = server.text_model.predict(np.array(texts, dtype=object), verbose=0)
        for answers in (by_rest, by_grpc):
            assert [a["key"] for a in answers] == keys
            np.testing.assert_allclose([a["probabilities"] for a in answers], expected, atol=1e-6)
            assert [a["label"] for a in answers] == [["rotten", "fresh"][i] for i in expected.argmax(axis=1)]
        plain = RestClient(f"http://127.0.0.1:{server.rest_port}", model="default")
        assert plain.predict({"x": [[1.0], [2.0]]}) == [{"y": [2.5]}, {"y": [3.0]}]
        assert GrpcClient(f"127.0.0.1:{server.grpc_port}", model="default", version=123).predict({"x": [[1.0]]}) == [{"y": [2.5]}]
        with pytest.raises(ClientError) as raised:
            RestClient(f"http://127.0.0.1:{server.rest_port}", model="nope").predict({"x": [1.0]})
        assert raised.value.code == 404
        with pytest.raises(ClientError) as raised:
            grpc_client.predict({"text": [""]}, keys=["k"])
        assert raised.value.code == "INVALID_ARGUMENT" and "empty strings" in raised.value.message
        with pytest.raises(ValueError, match="one value per row"):
            rest.predict({"text": texts}, keys=keys[:2])
    finally:
        grpc_client.close()

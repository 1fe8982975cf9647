"""Conformance of recipes-model-server with TF Serving, on TF Serving's own test SavedModels and on ours."""

import base64
import fractions
import http.client
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

from conftest import TESTDATA, needs_testdata, rest_request, tf_serving_model, wait_for_swap
from serving.load import free_port
from serving.manager import ModelConfig
from serving.server import ModelServer

pytestmark = needs_testdata


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
        ModelConfig("default", tf_serving_model("saved_model_half_plus_two_cpu")),
        ModelConfig("half_plus_three", tf_serving_model("saved_model_half_plus_three")),
        ModelConfig("saved_model_half_plus_two_2_versions", tf_serving_model("saved_model_half_plus_two_tf2_cpu")),
        ModelConfig(
            "two_versions",
            tf_serving_model("saved_model_half_plus_two_2_versions"),
            ("all",),
            {"stable": 123, "canary": 124},
        ),
        ModelConfig("latest_only", tf_serving_model("saved_model_half_plus_two_2_versions")),
        ModelConfig("text", str(exports / "text")),
    ]
    # TF Serving refuses labels of versions not loaded yet (the case of every label at start-up) without this flag
    labels_at_start = {"allow_version_labels_for_unavailable_models": True}
    running = ModelServer(configs, grpc_port=0, rest_port=0, poll_seconds=0, manager_options=labels_at_start)
    running.text_model = model
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stubs(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel), model_service_pb2_grpc.ModelServiceStub(channel)
    channel.close()


# -- REST -------------------------------------------------------------------------------------------


def test_rest_predict_as_tf_serving_tests_expect(server):
    # tensorflow_model_server_test.py / http_rest_api_handler_test.cc: x declared [-1, 1], fed [3]
    assert rest_request(server, "POST", "/v1/models/default:predict", {"instances": [2.0, 3.0, 4.0]}) == (
        200,
        {"predictions": [3.0, 3.5, 4.0]},
    )
    assert rest_request(
        server, "POST", "/v1/models/default/versions/123:predict", {"inputs": {"x": [[2.0], [3.0]]}}
    ) == (200, {"outputs": [[3.0], [3.5]]})
    assert rest_request(
        server, "POST", "/v1/models/default:predict", {"instances": [{"x": 1.0}], "signature_name": "serving_default"}
    )[1] == {"predictions": [2.5]}
    # the TF1 export that tf.saved_model.load cannot read, and the native TF2 one
    assert rest_request(server, "POST", "/v1/models/half_plus_three:predict", {"instances": [2.0, 3.0]})[1] == {
        "predictions": [4.0, 4.5]
    }
    assert rest_request(
        server, "POST", "/v1/models/saved_model_half_plus_two_2_versions:predict", {"instances": [1.0]}
    )[1] == {"predictions": [2.5]}


def test_rest_classify_and_regress(server):
    status, body = rest_request(
        server,
        "POST",
        "/v1/models/default:regress",
        {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}, {"x": 3.0}]},
    )
    assert (status, body) == (200, {"results": [3.0, 3.5]})
    body = rest_request(
        server,
        "POST",
        "/v1/models/default:regress",
        {"signature_name": "regress_x_to_y2", "context": {"x": 4.0}, "examples": [{}]},
    )[1]
    assert body == {"results": [5.0]}
    body = rest_request(
        server, "POST", "/v1/models/default:classify", {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    )[1]
    assert body == {"results": [[["", 3.0]]]}
    # serving_default is not of classify's form (TF Serving checks the method name only when asked to)
    status, body = rest_request(server, "POST", "/v1/models/default:classify", {"examples": [{"x": 2.0}]})
    assert status == 400 and "No classification inputs found in SignatureDef" in body["error"]


def _signature_map(body):
    """The SignatureDefMap of a metadata body: JSON spelling aside (an empty map printed or not), the proto."""
    return json_format.ParseDict(body["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap())


def test_rest_metadata_equals_tf_servings_expected_json(server):
    with open(os.path.join(TESTDATA, "expected_metadata", "half_plus_two_model_metadata.json")) as f:
        assert rest_request(server, "GET", "/v1/models/default/metadata") == (200, json.load(f))  # to the letter
    for model, expected_file in [
        ("saved_model_half_plus_two_2_versions", "saved_model_half_plus_two_tf2_2_versions_metadata.json"),
        ("two_versions", "saved_model_half_plus_two_2_versions_metadata.json"),
    ]:
        with open(os.path.join(TESTDATA, "expected_metadata", expected_file)) as f:
            expected = json.load(f)
        status, body = rest_request(server, "GET", f"/v1/models/{model}/versions/123/metadata")
        assert status == 200 and body["model_spec"] == {**expected["model_spec"], "name": model}
        assert _signature_map(body) == _signature_map(expected)


def test_rest_status_policies_and_labels(server):
    assert rest_request(server, "GET", "/v1/models/default")[1] == {
        "model_version_status": [
            {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    versions = [s["version"] for s in rest_request(server, "GET", "/v1/models/two_versions")[1]["model_version_status"]]
    assert versions == ["124", "123"]  # policy all
    assert [s["version"] for s in rest_request(server, "GET", "/v1/models/latest_only")[1]["model_version_status"]] == [
        "124"
    ]
    # get_model_status_impl.cc answers every version of the model whatever the label
    assert [
        s["version"]
        for s in rest_request(server, "GET", "/v1/models/two_versions/labels/stable")[1]["model_version_status"]
    ] == ["124", "123"]
    assert rest_request(server, "POST", "/v1/models/two_versions/labels/canary:predict", {"instances": [1.0]})[1] == {
        "predictions": [2.5]
    }


def test_rest_keyed_predictions_of_our_export(server):
    texts = ["A gripping, beautifully shot thriller.", "Dull and far too long."]
    status, body = rest_request(
        server,
        "POST",
        "/v1/models/text:predict",
        {"instances": [{"text": t, "key": f"review-{i}"} for i, t in enumerate(texts)]},
    )
    assert status == 200
    assert [row["key"] for row in body["predictions"]] == ["review-0", "review-1"]
    expected = server.text_model.predict(np.array(texts, dtype=object), verbose=0)
    np.testing.assert_allclose([row["probabilities"] for row in body["predictions"]], expected, atol=1e-6)
    assert {row["label"] for row in body["predictions"]} <= {"rotten", "fresh"}
    # b64 strings and the unkeyed signature
    b64 = base64.b64encode(texts[0].encode()).decode()
    body = rest_request(
        server, "POST", "/v1/models/text:predict", {"signature_name": "without_key", "inputs": {"text": [{"b64": b64}]}}
    )[1]
    np.testing.assert_allclose(body["outputs"]["probabilities"][0], expected[0], atol=1e-6)


@pytest.mark.parametrize(
    "path, body, status, message",
    [  # TF Serving's words (http_rest_api_handler.cc, util/json_tensor.cc)
        ("/v1/models/nope:predict", {"instances": [1.0]}, 404, "Servable not found"),
        ("/v1/models/default/versions/7:predict", {"instances": [1.0]}, 404, "Specific(default, 7)"),
        (
            "/v1/models/default/labels/gold:predict",
            {"instances": [1.0]},
            400,
            "Unrecognized servable version label: gold",
        ),
        (
            "/v1/models/default:predict",
            {"instances": [1.0], "signature_name": "nope"},
            400,
            'Serving signature name: "nope" not found in signature def',
        ),
        (
            "/v1/models/default:predict",
            {"instances": [{"y": 1.0}]},
            400,
            "Failed to process element: 0 key: y of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does not have named input: y",
        ),
        (
            "/v1/models/default:predict",
            {"instances": ["one"]},
            400,
            'JSON Value: "one" Type: String is not of expected type: float',
        ),
        ("/v1/models/default:predict", {"instances": [[1.0], [2.0, 3.0]]}, 400, "Expecting tensor size: 1 but got: 2"),
        (
            "/v1/models/default:predict",
            {"instances": [{"b64": "***"}]},
            400,
            "Type: Object is not of expected type: float",
        ),
        (
            "/v1/models/text:predict",
            {"instances": [{"text": {"b64": "***"}, "key": "k"}]},
            400,
            "Unable to base64 decode",
        ),
        (
            "/v1/models/default:predict",
            {"instances": [1.0], "inputs": [1.0]},
            400,
            "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist",
        ),
        (
            "/v1/models/default:predict",
            {"signature_name": "serving_default"},
            400,
            "Missing 'inputs' or 'instances' key",
        ),
        ("/v1/models/default:predict", [1, 2], 400, "JSON Value: [1, 2] Is not object"),
        ("/v1/models/text:predict", {"instances": [{"text": "", "key": "k"}]}, 400, "empty strings"),
        (
            "/v1/models/text:predict",
            {"instances": ["no names"]},
            400,
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map",
        ),
        ("/v1/models/default:explain", {"instances": [1.0]}, 400, "Malformed request: POST /v1/models/default:explain"),
    ],
)
def test_rest_errors(server, path, body, status, message):
    received_status, received = rest_request(server, "POST", path, body)
    assert received_status == status and message in received["error"], received


def test_rest_malformed_json_and_oversized_body(server):
    status, body = rest_request(server, "POST", "/v1/models/default:predict", raw=b"{not json")
    assert status == 400 and "JSON Parse error" in body["error"]
    limit = server.rest_server.max_body_bytes
    server.rest_server.max_body_bytes = 1000
    try:
        status, body = rest_request(server, "POST", "/v1/models/default:predict", {"instances": [1.0] * 1000})
    finally:
        server.rest_server.max_body_bytes = limit
    assert status == 400 and "exceeds the limit of 1000 bytes" in body["error"]
    assert rest_request(server, "POST", "/v1/models/default:predict", {"instances": [1.0]})[0] == 200  # still serving


def test_rest_body_shorter_than_its_content_length_is_refused_not_waited_for_forever(server):
    def send_short_body(close_write):
        with socket.create_connection(("127.0.0.1", server.rest_port), timeout=10) as connection:
            connection.sendall(b'POST /v1/models/default:predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"inst')
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
    assert rest_request(server, "POST", "/v1/models/default:predict", {"instances": [1.0]})[0] == 200  # still serving


def test_rest_reads_bodies_sent_in_chunks_as_libevent_does(server):
    """A client that streams its body (http.client or requests with an iterable) sends it chunked, without a
    Content-Length; TF Serving's HTTP library reads it. Malformed chunks are refused and the connection closed."""

    def post_in_pieces(pieces):
        connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
        try:
            connection.request("POST", "/v1/models/default:predict", body=iter(pieces), encode_chunked=True)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    assert post_in_pieces([b'{"instances"', b": [[1.0], ", b"[2.0]]}"]) == (200, {"predictions": [[2.5], [3.0]]})
    limit = server.rest_server.max_body_bytes
    server.rest_server.max_body_bytes = 1000
    try:
        # ~1.5 MB in 1,000 chunks: the client is still sending long after the limit is passed
        status, body = post_in_pieces([b'{"instances": ['] + [b"1.0, " * 300] * 1000 + [b"1.0]}"])
    finally:
        server.rest_server.max_body_bytes = limit
    assert status == 400 and "exceeds the limit of 1000 bytes" in body["error"]
    for chunks in (b"zz\r\n{}\r\n0\r\n\r\n", b"10\r\n{}\r\n"):  # not a size; a chunk shorter than its size
        with socket.create_connection(("127.0.0.1", server.rest_port), timeout=10) as connection:
            connection.sendall(
                b"POST /v1/models/default:predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
            )
            connection.shutdown(socket.SHUT_WR)
            answer = b""
            while piece := connection.recv(4096):
                answer += piece
        assert answer.startswith(b"HTTP/1.1 400") and b"Connection: close" in answer and b"chunked" in answer, answer
    assert rest_request(server, "POST", "/v1/models/default:predict", {"instances": [1.0]})[0] == 200  # still serving


def test_rest_api_timeout_answers_504_and_keeps_serving(server):
    body = {"instances": [{"text": "a long and winding review " * 40, "key": str(i)} for i in range(5000)]}
    timeout = server.rest_server.timeout_ms
    server.rest_server.timeout_ms = 1  # --rest_api_timeout_in_ms=1
    try:
        status, answer = rest_request(server, "POST", "/v1/models/text:predict", body)
    finally:
        server.rest_server.timeout_ms = timeout
    assert status == 504 and "Timed out" in answer["error"], answer
    assert (
        rest_request(server, "POST", "/v1/models/text:predict", {"instances": [{"text": "fine", "key": "k"}]})[0] == 200
    )


# -- REST: TF Serving's routing, messages and numbers ------------------------------------------------


def _http(port, method, path, body=b"", headers=None):
    """One raw request: `(status, headers, body bytes)`; the body may be HTML, empty or not UTF-8."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "method, path, message",
    [  # http_rest_api_handler_test.cc's UnsupportedApiCalls, and the cases of issue 14
        ("GET", "/v1/foo", "Malformed request: GET /v1/foo"),
        ("POST", "/v1/foo", "Malformed request: POST /v1/foo"),
        ("GET", "/v1/models", "Missing model name in request."),
        ("GET", "/v1/models/versions/123", "Missing model name in request."),
        ("GET", "/v1/models/debug/model_name", "Malformed request: GET /v1/models/debug/model_name"),
        ("POST", "/v1/models", "Malformed request: POST /v1/models"),
        ("GET", "/v1/models/foo:predict", "Malformed request: GET /v1/models/foo:predict"),
        ("GET", "/v1/models/foo/version/50:predict", "Malformed request"),
        ("POST", "/v1/models/foo/version/50:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/HELLO:regress", "Malformed request"),
        ("GET", "/v1/models/x/versions/HELLO", "Malformed request: GET /v1/models/x/versions/HELLO"),
        ("GET", "/v1/models/x/versions/50/labels/x", "Malformed request: GET /v1/models/x/versions/50/labels/x"),
        (
            "POST",
            "/v1/models/foo/versions/18446744073709551615:regress",
            "Failed to convert version: 18446744073709551615 to numeric.",
        ),
        ("POST", "/v1/models/foo/metadata", "Malformed request: POST /v1/models/foo/metadata"),
        ("POST", "/v1/models/foo/label/some_label:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/50/labels/some_label:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/some_label:regress", "Malformed request"),
        ("POST", "/v1/models/default:PREDICT", "Malformed request: POST /v1/models/default:PREDICT"),
        ("POST", "/v1/models/default:predict?debug=1", "Malformed request: POST /v1/models/default:predict?debug=1"),
        ("PUT", "/v1/models/default:predict", "Malformed request: PUT /v1/models/default:predict"),
        ("DELETE", "/v1/models/default", "Malformed request: DELETE /v1/models/default"),
        ("PATCH", "/v1/models/default", "Malformed request: PATCH /v1/models/default"),
    ],
)
def test_rest_malformed_paths_answer_400_with_tf_servings_words(server, method, path, message):
    status, headers, body = _http(server.rest_port, method, path, b'{"instances": [1.0]}')
    assert (status, headers["content-type"]) == (400, "application/json")
    assert json.loads(body) == {"error": message} or message in json.loads(body)["error"], body
    assert rest_request(server, "GET", "/v1/models/default")[0] == 200  # still serving


def test_rest_paths_are_case_insensitive_and_names_percent_decoded(server):
    assert rest_request(server, "POST", "/V1/Models/default:predict", {"instances": [1.0]}) == (
        200,
        {"predictions": [2.5]},
    )
    assert rest_request(
        server,
        "POST",
        "/v1/MODELS/two_versions/LABELS/stable:regress",
        {"signature_name": "regress_x_to_y", "examples": [{"x": 1.0}]},
    ) == (200, {"results": [2.5]})
    status, body = rest_request(server, "GET", "/V1/MODELS/default/VERSIONS/123/metadata")
    assert status == 200 and body["model_spec"]["version"] == "123" and "signature_def" in body["metadata"]
    # the pattern takes "/METADATA", the handler compares "metadata": TF Serving answers the model's status
    assert "model_version_status" in rest_request(server, "GET", "/v1/models/default/METADATA")[1]
    assert rest_request(server, "POST", "/v1/models/de%66ault:predict", {"instances": [1.0]}) == (
        200,
        {"predictions": [2.5]},
    )
    # the query is part of what the patterns read: here, of the model name
    assert rest_request(server, "GET", "/v1/models/default?verbose=1") == (
        404,
        {"error": "Could not find any versions of model default?verbose=1"},
    )


def test_rest_requests_libevent_answers_itself(server):
    for method, path, status, phrase in [
        ("GET", "/", 404, "Not Found"),  # no handler outside /v1/ (http_server.cc's dispatcher)
        ("GET", "/v1", 404, "Not Found"),
        ("POST", "/v2/models/default:predict", 404, "Not Found"),
        ("GET", '/v1/models/"default"', 400, "Bad Request"),  # evhttp_uri_parse refuses the target
        ("BREW", "/v1/models/default", 501, "Not Implemented"),  # a method evhttp_server.cc does not allow
        ("TRACE", "/v1/models/default", 501, "Not Implemented"),
    ]:
        received, headers, body = _http(server.rest_port, method, path)
        assert (received, headers["content-type"], headers["connection"]) == (status, "text/html", "close"), path
        assert body.decode() == (
            f"<HTML><HEAD>\n<TITLE>{status} {phrase}</TITLE>\n</HEAD><BODY>\n<H1>{phrase}</H1>\n</BODY></HTML>\n"
        )
    # a CORS preflight: 200 with an http(s) Origin, else FAILED_PRECONDITION's 400; no body either way
    assert _http(server.rest_port, "OPTIONS", "/v1/models/default:predict", headers={"Origin": "https://a.b"})[::2] == (
        200,
        b"",
    )
    assert _http(server.rest_port, "OPTIONS", "/v1/models/default:predict")[::2] == (400, b"")
    status, headers, body = _http(server.rest_port, "HEAD", "/v1/models/default")
    assert (status, body) == (400, b"")  # the handler's Malformed request, without its body


@pytest.mark.parametrize(
    "path, body, message",
    [  # the messages http_rest_api_handler_test.cc and json_tensor_test.cc pin
        ("default:predict", b"", "JSON Parse error: The document is empty"),
        ("default:predict", b"instances = [1, 2]", "JSON Parse error: Invalid value. at offset: 0"),
        ("default:predict", b'{"instances": ["x", "y"]}', "not of expected type: float"),
        (
            "default/labels/Version_Nonexistent:predict",
            b'{"instances": ["x", "y"]}',
            "Unrecognized servable version label: Version_Nonexistent",
        ),
        ("default:predict", b'{"signature_name": 100}', "'signature_name' key must be a string value."),
        ("default:predict", b'{"signature_name": 5, "instances": [[1,2],[3,4],[5,6,7]]}', "must be a string value"),
        (
            "default:predict",
            b'{"instances": [[1,2],[3,4],[5,6,7]], "inputs": [[1,2],[3,4],[5,6,7]]}',
            "Not formatted correctly",
        ),
        ("default:predict", b'{"instances": [[1,2],[3,4],[5,6,7]]}', "Expecting tensor size"),
        ("default:predict", b'{"instances": [[1,2],[3,4],[[5,6]]]}', "Expecting shape"),
        ("default:predict", b'{"instances": [1, [1]]}', "Expecting shape"),
        ("default:predict", b'{"instances": [[1,2],["a", "b"]]}', "not of expected type"),
        (
            "text:predict",
            b'{"signature_name": "without_key", "instances": [["baz", "bar"], {"text": ["baz", "bat"]}]}',
            "Expecting value/list but got object at item 1 of input list",
        ),
        ("text:predict", b'{"instances": [{"text": "a", "key": "k"}, [1, 20, 30]]}', "Expecting object but got list"),
        ("default:predict", b'{"instances": [true]}', "JSON Value: true Type: True is not of expected type: float"),
        (
            "default:regress",
            b'{"signature_name": ["hello"], "examples": [{"names": ["foo", "bar"]}]}',
            "'signature_name' key must be a string",
        ),
        ("default:regress", b'{"context": [{"names": ["foo", "bar"]}]}', "Example must be JSON object"),
        ("default:regress", b'{"examples": {"names": ["foo", "bar"]}}', "list/array"),
        ("default:regress", b'{"examples": [[{"names": ["foo", "bar"]}]]}', "Example must be JSON object"),
        (
            "default:regress",
            b'{"examples": [{"names": [10, null]}]}',
            "names has element with unexpected JSON type: Null",
        ),
        ("default:regress", b'{"examples": [{"names": [10, 10.0]}]}', "feature: names expecting type: int64"),
        (
            "default:regress",
            b'{"examples": [{"names": [10, {"test": 10}]}]}',
            "names has element with unexpected JSON type: Object",
        ),
        (
            "default:regress",
            b'{"examples": [{"names": [[10], 20]}]}',
            "names has element with unexpected JSON type: Array",
        ),
        ("default:regress", b'{"examples": [{"names": [20, 18446744073709551603]}]}', "Only int64_t is supported"),
        ("default:classify", b'{"examples": []}', "'examples' value is an empty array"),
    ],
)
def test_rest_errors_tf_servings_tests_pin(server, path, body, message):
    status, headers, answer = _http(server.rest_port, "POST", f"/v1/models/{path}", body)
    assert status == 400 and message in json.loads(answer)["error"], answer


def test_model_status_by_label_is_every_version_over_rest_and_grpc(server, stubs):
    """get_model_status_impl.cc reads only the model spec's name and version: a label narrows nothing."""
    _, model = stubs

    def grpc_status(**spec):
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = spec.pop("name")
        if "version" in spec:
            request.model_spec.version.value = spec["version"]
        if "label" in spec:
            request.model_spec.version_label = spec["label"]
        try:
            return "OK", [(s.version, s.state) for s in model.GetModelStatus(request, timeout=30).model_version_status]
        except grpc.RpcError as error:
            return error.code().name, error.details()

    available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    for label in ("stable", "canary", "no_such_label"):
        status, body = rest_request(server, "GET", f"/v1/models/two_versions/labels/{label}")
        assert status == 200 and [s["version"] for s in body["model_version_status"]] == ["124", "123"]
        assert grpc_status(name="two_versions", label=label) == ("OK", [(124, available), (123, available)])
    status, body = rest_request(server, "GET", "/v1/models/two_versions/versions/123")
    assert status == 200 and [s["version"] for s in body["model_version_status"]] == ["123"]
    assert grpc_status(name="two_versions", version=123) == ("OK", [(123, available)])
    assert rest_request(server, "GET", "/v1/models/two_versions/versions/7") == (
        404,
        {"error": "Could not find version 7 of model two_versions"},
    )
    assert grpc_status(name="two_versions", version=7) == (
        "NOT_FOUND",
        "Could not find version 7 of model two_versions",
    )
    assert rest_request(server, "GET", "/v1/models/nope/labels/stable") == (
        404,
        {"error": "Could not find any versions of model nope"},
    )
    assert grpc_status(name="nope") == ("NOT_FOUND", "Could not find any versions of model nope")
    with pytest.raises(grpc.RpcError) as raised:
        model.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(), timeout=30)
    assert (raised.value.code(), raised.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")


@pytest.fixture(scope="module")
def dtypes_server(tmp_path_factory):
    """A SavedModel with float64, float32, int64, bool, string and _bytes outputs of one float64 input."""

    class Outputs(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float64, name="x")])
        def serve(self, x):
            finite = tf.where(tf.math.is_finite(x), x, tf.zeros_like(x))
            return {
                "double": x + 0.1,
                "float": tf.cast(x, tf.float32),
                "float_third": tf.cast(x, tf.float32) / 3,
                "int": tf.cast(finite, tf.int64),
                "flag": x > 0,
                "text": tf.strings.as_string(x, precision=1),
                "text_bytes": tf.strings.as_string(x, precision=1),
            }

    base = tmp_path_factory.mktemp("dtypes")
    module = Outputs()
    tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.serve})
    running = ModelServer([ModelConfig("dtypes", str(base))], grpc_port=None, rest_port=0, poll_seconds=0)
    yield running
    running.stop()


def test_rest_numbers_as_tf_serving_writes_them(server, dtypes_server):
    # float32: six significant digits when they read back as the same float32 (json_tensor.cc's WriteDecimal)
    status, _, body = _http(server.rest_port, "POST", "/v1/models/default:predict", b'{"instances": [1.1, 2.0]}')
    assert (status, body) == (200, b'{\n    "predictions": [2.55, 3.0\n    ]\n}')  # not 2.549999952316284
    body = _http(
        server.rest_port,
        "POST",
        "/v1/models/default:regress",
        b'{"signature_name": "regress_x_to_y", "examples": [{"x": 1.1}]}',
    )[2]
    assert json.loads(body) == {"results": [2.55]} and b"2.55]" in body
    body = _http(
        server.rest_port,
        "POST",
        "/v1/models/default:classify",
        b'{"signature_name": "classify_x_to_y", "examples": [{"x": 1.1}]}',
    )[2]
    assert json.loads(body) == {"results": [[["", 2.55]]]}
    # NaN and the infinities, in and out, as bare tokens; rapidjson also reads Inf, -Inf and -NaN
    status, _, body = _http(
        server.rest_port,
        "POST",
        "/v1/models/default:predict",
        b'{"instances": [NaN, Infinity, -Infinity, Inf, -Inf, -NaN]}',
    )
    assert (status, body) == (
        200,
        b'{\n    "predictions": [NaN, Infinity, -Infinity, Infinity, -Infinity, NaN\n    ]\n}',
    )

    x = [
        1.0,
        9000000.0,
        999999.0,
        0.5,
        0.0003,
        0.00003,
        555557.5,
        2.0**-20,
        0.1,
        float("nan"),
        float("inf"),
        -float("inf"),
    ]
    status, _, body = _http(
        dtypes_server.rest_port, "POST", "/v1/models/dtypes:predict", json.dumps({"inputs": {"x": x}}).encode()
    )
    assert status == 200, body
    outputs = json.loads(body)["outputs"]
    # json_tensor_test.cc's six-digit cases read back as their six digits, not as the float32's float64
    assert outputs["float"][:7] == [1.0, 9e6, 999999.0, 0.5, 0.0003, 3e-05, 555557.5]
    # else nine digits, max_digits10 of float32: 9.53674316e-07, longer than the shortest (9.536743e-07)
    assert outputs["float"][7:9] == [9.53674316e-07, 0.1]
    assert outputs["float_third"][0] == 0.333333343 and b"0.333333343," in body
    assert (
        b'"float": [1.0, 9000000.0, 999999.0, 0.5, 0.0003, 3e-05, 555557.5, 9.53674316e-07, 0.1, NaN, Infinity, '
        b"-Infinity]"
    ) in body
    # float64: what TF Serving's %.17g reads back as is the float64 itself
    assert (
        outputs["double"][:9] == [v + 0.1 for v in x[:9]]
        and b'"double": [1.1, 9000000.1, 999999.1, 0.6, 0.1003,' in body
    )
    assert [outputs["int"], outputs["flag"]] == [
        [1, 9000000, 999999, 0, 0, 0, 555557, 0, 0, 0, 0, 0],
        [True] * 9 + [False, True, False],
    ]
    assert outputs["text"][:2] == ["1.0", "9000000.0"] and outputs["text"][-3:] == ["nan", "inf", "-inf"]
    assert outputs["text_bytes"][:2] == [{"b64": base64.b64encode(text).decode()} for text in (b"1.0", b"9000000.0")]
    # row format: one object per example
    body = json.loads(_http(dtypes_server.rest_port, "POST", "/v1/models/dtypes:predict", b'{"instances": [1.1]}')[2])
    assert body["predictions"] == [
        {
            "double": 1.1 + 0.1,
            "flag": True,
            "float": 1.1,
            "float_third": 0.366666675,
            "int": 1,
            "text": "1.1",
            "text_bytes": {"b64": base64.b64encode(b"1.1").decode()},
        }
    ]


def _tf_serving_float32_text(value):
    """json_tensor.cc's WriteDecimal for a float32, done exactly: "%.6g" if that decimal rounds to it, else "%.9g"."""
    value = np.float32(value)
    with np.errstate(over="ignore"):  # the largest float32's next one up is inf
        below, above = np.nextafter(value, np.float32(-np.inf)), np.nextafter(value, np.float32(np.inf))
    exact = fractions.Fraction(float(value))
    low = (fractions.Fraction(float(below)) + exact) / 2
    high = (exact + fractions.Fraction(float(above))) / 2 if np.isfinite(above) else exact + (exact - low)
    text = "%.6g" % float(value)
    decimal = fractions.Fraction(text)
    even = int(value.view(np.uint32)) % 2 == 0
    return text if low < decimal < high or (even and decimal in (low, high)) else "%.9g" % float(value)


def test_float32_values_read_back_as_tf_servings_text_at_every_magnitude():
    """The vectorised arithmetic of rest_json.written_floats against WriteDecimal one value at a time."""
    from serving import rest_json

    bits = np.random.default_rng(14).integers(0, 2**32, size=20_000, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    special = np.array(
        [
            2.55,
            1 / 3,
            0.1,
            9e6,
            999999,
            0.5,
            3e-4,
            3e-5,
            555557.5,
            1.001953125,
            2**-14,
            100000.5,
            1e-45,
            1.17549435e-38,
            3.4028235e38,
            -0.0,
            16777217,
            1234567936,
            2**-20,
        ],
        dtype=np.float32,
    )
    values = np.concatenate([values[np.isfinite(values)], special])
    expected = [float(_tf_serving_float32_text(v)) for v in values]
    written = rest_json.written_floats(values)
    assert written.dtype == np.float64
    mismatches = [(v, w, e) for v, w, e in zip(values.tolist(), written.tolist(), expected) if w != e]
    assert not mismatches, mismatches[:5]
    # a response's few values take the text's way: the same floats
    few = np.concatenate([values[:2000], special])
    written = np.concatenate([rest_json.written_floats(few[i : i + 7]) for i in range(0, len(few), 7)])
    assert written.tolist() == expected[:2000] + expected[-len(special) :]


def test_rest_strings_are_bytes_as_sent(server):
    """rapidjson checks no UTF-8: bytes that are not come back as they were sent, as TF Serving writes them."""
    status, _, body = _http(
        server.rest_port,
        "POST",
        "/v1/models/text:predict",
        b'{"instances": [{"text": "caf\xe9", "key": "k\xff\\u0000"}]}',
    )
    assert status == 200 and b'"key": "k\xff\\u0000"' in body, body
    assert json.loads(body.decode("utf-8", "surrogateescape"))["predictions"][0]["key"] == "k\udcff\x00"
    from serving.client import GrpcClient, RestClient  # both give such keys back as bytes

    inputs = {"text": ["fine"], "key": [b"k\xff"]}  # sent as {"b64": ...}
    rest = RestClient(f"http://127.0.0.1:{server.rest_port}", model="text").predict(inputs)
    grpc_client = GrpcClient(f"127.0.0.1:{server.grpc_port}", model="text")
    try:
        assert rest[0]["key"] == grpc_client.predict(inputs)[0]["key"] == b"k\xff"
    finally:
        grpc_client.close()


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
    assert (
        json_format.MessageToDict(
            signature_map, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        == expected
    )

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "two_versions"
    status = model.GetModelStatus(status_request)
    assert [(s.version, s.state) for s in status.model_version_status] == [
        (124, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
        (123, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
    ]


def test_grpc_output_filter_classify_regress_multi_inference(stubs):
    prediction, _ = stubs
    request = _predict_request(
        "text", {"text": np.array([b"great fun"], dtype=object), "key": np.array([b"k-9"], dtype=object)}
    )
    request.output_filter.append("key")
    response = prediction.Predict(request)
    assert list(response.outputs) == ["key"] and tf.make_ndarray(response.outputs["key"]).tolist() == [b"k-9"]

    examples = [
        tf.train.Example(
            features=tf.train.Features(feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[v]))})
        )
        for v in (2.0, 4.0)
    ]
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
    for signature, method in (
        ("regress_x_to_y", "tensorflow/serving/regress"),
        ("classify_x_to_y", "tensorflow/serving/classify"),
    ):
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
        (
            lambda: _predict_request("default", {"x": np.array([1.0], "float32")}, signature="nope"),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
        (lambda: _predict_request("default", {"x": np.array([b"a"], dtype=object)}), grpc.StatusCode.INVALID_ARGUMENT),
        (
            lambda: _predict_request(
                "text", {"text": np.array([b""], dtype=object), "key": np.array([b"k"], dtype=object)}
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
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
        entry.name, entry.base_path, entry.model_platform = name, tf_serving_model(folder), "tensorflow"
    previous = list(server.manager.configs.values())
    try:
        response = model.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=config))
        assert response.status.error_code == 0
        answer = prediction.Predict(_predict_request("added", {"x": np.array([1.0], "float32")}))
        assert tf.make_ndarray(answer.outputs["y"]).tolist() == [3.5]
        with pytest.raises(grpc.RpcError) as raised:
            prediction.Predict(
                _predict_request(
                    "text", {"text": np.array([b"a"], dtype=object), "key": np.array([b"k"], dtype=object)}
                )
            )
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        server.manager.reload(previous)


# -- lifecycle --------------------------------------------------------------------------------------


def test_version_swap_while_clients_run_fails_no_request(tmp_path):
    base = tmp_path / "model"
    shutil.copytree(tf_serving_model("saved_model_half_plus_two_cpu/00000123"), base / "1")
    running = ModelServer([ModelConfig("swap", str(base))], grpc_port=None, rest_port=0, poll_seconds=0.2)
    answers, failures, stop = [], [], threading.Event()

    def client():
        while not stop.is_set():
            status, body = rest_request(running, "POST", "/v1/models/swap:predict", {"instances": [2.0]})
            (answers if status == 200 else failures).append(body)

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        shutil.copytree(tf_serving_model("saved_model_half_plus_three/00000123"), tmp_path / "staging")
        os.rename(tmp_path / "staging", base / "2")  # atomic, as serving.export_model writes
        wait_for_swap(running.manager, "swap", to_version=2, seconds=60)
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
    shutil.copytree(tf_serving_model("saved_model_half_plus_two_cpu/00000123"), tmp_path / "m" / "1")
    (tmp_path / "m" / "2").mkdir()
    (tmp_path / "m" / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
    running = ModelServer([ModelConfig("m", str(tmp_path / "m"))], grpc_port=None, rest_port=0, poll_seconds=0)
    try:
        statuses = {s["version"]: s for s in rest_request(running, "GET", "/v1/models/m")[1]["model_version_status"]}
        assert statuses["2"]["state"] == "END" and statuses["2"]["status"]["error_code"] != "OK"
        assert statuses["1"]["state"] == "AVAILABLE"
        assert rest_request(running, "POST", "/v1/models/m:predict", {"instances": [2.0]}) == (
            200,
            {"predictions": [3.0]},
        )
    finally:
        running.stop()


@pytest.mark.slow
def test_command_line_serves_and_stops_on_sigterm(tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list { config { name: "hp2" base_path: "%s" model_platform: "tensorflow" } }'
        % tf_serving_model("saved_model_half_plus_two_cpu")
    )
    rest_port_wanted = free_port()  # --rest_api_port=0 disables REST, as in TF Serving
    command = [
        os.path.join(os.path.dirname(sys.executable), "recipes-model-server"),
        "--port=0",
        f"--rest_api_port={rest_port_wanted}",
        f"--model_config_file={config}",
    ]
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    )
    rest_port = None
    for line in process.stderr:
        if "Exporting HTTP/REST API at:" in line:
            rest_port = int(line.rsplit(":", 1)[1].split()[0])
            break
    assert rest_port == rest_port_wanted
    assert rest_port, "the server did not start"
    with urllib.request.urlopen(
        urllib.request.Request(f"http://127.0.0.1:{rest_port}/v1/models/hp2:predict", data=b'{"instances": [2.0]}'),
        timeout=30,
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
        assert GrpcClient(f"127.0.0.1:{server.grpc_port}", model="default", version=123).predict({"x": [[1.0]]}) == [
            {"y": [2.5]}
        ]
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

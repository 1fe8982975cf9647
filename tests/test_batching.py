"""Dynamic batching: keys never mix, padding changes nothing, a full queue says 503 and recovers."""

import concurrent.futures
import os

import numpy as np
import pytest
from test_model_server import TESTDATA, _rest, _testdata

import recipes
import serving
from models import text
from serving.batching import BatchingParameters
from serving.client import ClientError, GrpcClient, RestClient
from serving.manager import ModelConfig
from serving.server import ModelServer

pytestmark = pytest.mark.skipif(not os.path.isdir(TESTDATA), reason="../shared/tfserving_testdata is not here")
DEPLOY = os.path.join(os.path.dirname(__file__), os.pardir, "serving", "deploy")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    recipes.set_seed(0)
    reviews = recipes.datasets.load_rotten_tomatoes()
    model = text.bag_of_words_classifier(reviews.text[:500], 2, class_names=["rotten", "fresh"], max_tokens=2000)
    model.fit(reviews.text.to_numpy()[:500], reviews.label.to_numpy()[:500], epochs=1, verbose=0)
    base = tmp_path_factory.mktemp("batching") / "text"
    serving.export_model(model, base)
    return model, str(base), reviews.text.to_numpy()


def _serve(base, parameters):
    return ModelServer(
        [ModelConfig("text", base), ModelConfig("default", _testdata("saved_model_half_plus_two_cpu"))],
        grpc_port=0, rest_port=0, poll_seconds=0, batching=parameters,
    )  # fmt: skip


def test_parameters_file_format():
    cpu = BatchingParameters.from_text(open(os.path.join(DEPLOY, "batching_parameters.txt")).read())
    assert (cpu.max_batch_size, cpu.batch_timeout_micros, cpu.num_batch_threads) == (128, 0, 2)
    gpu = BatchingParameters.from_text(open(os.path.join(DEPLOY, "batching_parameters_gpu.txt")).read())
    assert gpu.allowed_batch_sizes == (64, 128, 256, 512) and gpu.pad_variable_length_inputs
    with pytest.raises(ValueError, match="end with max_batch_size"):
        BatchingParameters.from_text("max_batch_size { value: 10 }\nallowed_batch_sizes: 4")
    with pytest.raises(ValueError, match="line 1: cannot read"):
        BatchingParameters.from_text("max_batch_sise { value: 10 }")


@pytest.mark.parametrize("allowed_batch_sizes", [(), (4, 16)])
def test_keys_never_mix_across_concurrent_rest_and_grpc_clients(exported, allowed_batch_sizes):
    model, base, texts = exported
    parameters = BatchingParameters(
        max_batch_size=16, batch_timeout_micros=20_000, max_enqueued_batches=100, num_batch_threads=2,
        allowed_batch_sizes=allowed_batch_sizes,
    )  # fmt: skip
    server = _serve(base, parameters)
    rng = np.random.default_rng(0)
    jobs = []
    for client_id in range(12):
        for request_id in range(8):
            rows = rng.integers(0, len(texts), size=int(rng.integers(1, 5)))
            jobs.append((client_id, [f"c{client_id}-r{request_id}-{i}" for i in range(len(rows))], texts[rows]))

    def send(job):
        client_id, keys, batch = job
        client = (RestClient(f"http://127.0.0.1:{server.rest_port}", model="text") if client_id % 2
                  else GrpcClient(f"127.0.0.1:{server.grpc_port}", model="text"))  # fmt: skip
        return client.predict({"text": list(batch)}, keys=keys)

    try:
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(send, jobs))
        batches, rows_run = server.scheduler.batches_run, server.scheduler.rows_run
    finally:
        server.stop()
    for (_, keys, batch), answer in zip(jobs, answers):
        assert [row["key"] for row in answer] == keys
        np.testing.assert_allclose(
            [row["probabilities"] for row in answer], model.predict(batch.astype(object), verbose=0), atol=1e-6
        )
    total_rows = sum(len(keys) for _, keys, _ in jobs)
    assert batches < len(jobs), "no two requests were ever batched together"
    if not allowed_batch_sizes:
        assert rows_run == total_rows


def test_full_queue_answers_503_and_the_server_recovers(exported):
    _, base, texts = exported
    parameters = BatchingParameters(max_batch_size=3000, max_enqueued_batches=1, num_batch_threads=1)
    server = _serve(base, parameters)
    big = {"instances": [{"text": t * 5, "key": str(i)} for i, t in enumerate(np.resize(texts, 3000))]}
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            statuses = [status for status, _ in pool.map(lambda _: _rest(server, "POST", "/v1/models/text:predict", big), range(4))]
        assert 503 in statuses and 200 in statuses, statuses
        status, body = _rest(server, "POST", "/v1/models/text:predict", {"instances": [{"text": "fine", "key": "k"}]})
        assert status == 200 and body["predictions"][0]["key"] == "k"
        with pytest.raises(ClientError) as raised:
            client = GrpcClient(f"127.0.0.1:{server.grpc_port}", model="text", chunk_size=5000)  # one request
            client.predict({"text": ["x"] * 3001}, keys=range(3001))
        assert raised.value.code == "INVALID_ARGUMENT" and "larger than maximum input batch size 3000" in raised.value.message
    finally:
        server.stop()


def test_inputs_of_other_shapes_are_batched_apart_not_failed(exported):
    _, base, _ = exported
    server = _serve(base, BatchingParameters(max_batch_size=8, batch_timeout_micros=50_000, num_batch_threads=1))
    requests = [{"instances": [[1.0], [2.0]]}, {"instances": [1.0, 2.0, 3.0]}, {"instances": [[3.0]]}] * 4
    try:
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda body: _rest(server, "POST", "/v1/models/default:predict", body), requests))
    finally:
        server.stop()
    expected = [[[2.5], [3.0]], [2.5, 3.0, 3.5], [[3.5]]] * 4
    assert answers == [(200, {"predictions": e}) for e in expected]


def test_prometheus_metrics_under_tf_serving_names(exported):
    from serving.metrics import read_monitoring_config

    assert read_monitoring_config(open(os.path.join(DEPLOY, "monitoring.config")).read()) == "/monitoring/prometheus/metrics"
    assert read_monitoring_config("prometheus_config { enable: false }") is None
    with pytest.raises(ValueError, match="prometheus_config"):
        read_monitoring_config("prometheus { enable: true }")

    _, base, _ = exported
    server = ModelServer(
        [ModelConfig("text", base)], grpc_port=0, rest_port=0, poll_seconds=0,
        batching=BatchingParameters(max_batch_size=8, num_batch_threads=1), metrics_path="/monitoring/prometheus/metrics",
    )  # fmt: skip
    try:
        RestClient(f"http://127.0.0.1:{server.rest_port}", model="text").predict({"text": ["good", "bad"]}, keys=["a", "b"])
        GrpcClient(f"127.0.0.1:{server.grpc_port}", model="text").predict({"text": ["fine"]}, keys=["c"])
        assert _rest(server, "POST", "/v1/models/text:predict", {"instances": [{"text": "", "key": "d"}]})[0] == 400
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics") as response:
            text_format = response.read().decode()
    finally:
        server.stop()
    assert ':tensorflow:serving:request_count_total{model_name="text",status="OK"} 2.0' in text_format
    assert ':tensorflow:serving:request_count_total{model_name="text",status="INVALID_ARGUMENT"} 1.0' in text_format
    assert ':tensorflow:serving:request_latency_count{API="predict",entrypoint="REST",model_name="text"} 2.0' in text_format
    assert ':tensorflow:serving:request_latency_count{API="predict",entrypoint="GRPC",model_name="text"} 1.0' in text_format
    assert ':tensorflow:serving:batching_session:batch_size_sum{model_name="text"} 3.0' in text_format

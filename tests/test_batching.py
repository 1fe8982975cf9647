"""Dynamic batching: keys never mix (client threads, client processes, a version swap), padding changes nothing,
a full queue says 503 and recovers."""

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from conftest import TESTDATA, rest_request, tf_serving_model, wait_for_swap

import recipes
import serving
from models import text
from serving.batching import BatchingParameters
from serving.client import ClientError, GrpcClient, RestClient
from serving.manager import ModelConfig
from serving.server import ModelServer

pytestmark = pytest.mark.skipif(not os.path.isdir(TESTDATA), reason="../shared/tfserving_testdata is not here")
HERE = os.path.dirname(__file__)
DEPLOY = os.path.join(HERE, os.pardir, "serving", "deploy")


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
        [ModelConfig("text", base), ModelConfig("default", tf_serving_model("saved_model_half_plus_two_cpu"))],
        grpc_port=0,
        rest_port=0,
        poll_seconds=0,
        batching=parameters,
    )


def test_parameters_file_format():
    cpu = BatchingParameters.from_text(open(os.path.join(DEPLOY, "batching_parameters.txt")).read())
    assert (cpu.max_batch_size, cpu.batch_timeout_micros, cpu.num_batch_threads) == (128, 0, 2)
    gpu = BatchingParameters.from_text(open(os.path.join(DEPLOY, "batching_parameters_gpu.txt")).read())
    assert gpu.allowed_batch_sizes == (64, 128, 256, 512) and gpu.pad_variable_length_inputs
    with pytest.raises(ValueError, match="end with max_batch_size"):
        BatchingParameters.from_text("max_batch_size { value: 10 }\nallowed_batch_sizes: 4")
    with pytest.raises(ValueError, match="line 1: cannot read"):
        BatchingParameters.from_text("max_batch_sise { value: 10 }")


@pytest.mark.slow
@pytest.mark.parametrize("allowed_batch_sizes", [(), (4, 16)])
def test_keys_never_mix_across_concurrent_rest_and_grpc_clients(exported, allowed_batch_sizes):
    model, base, texts = exported
    parameters = BatchingParameters(
        max_batch_size=16,
        batch_timeout_micros=20_000,
        max_enqueued_batches=100,
        num_batch_threads=2,
        allowed_batch_sizes=allowed_batch_sizes,
    )
    server = _serve(base, parameters)
    rng = np.random.default_rng(0)
    jobs = []
    for client_id in range(12):
        for request_id in range(8):
            rows = rng.integers(0, len(texts), size=int(rng.integers(1, 5)))
            jobs.append((client_id, [f"c{client_id}-r{request_id}-{i}" for i in range(len(rows))], texts[rows]))

    def send(job):
        client_id, keys, batch = job
        client = (
            RestClient(f"http://127.0.0.1:{server.rest_port}", model="text")
            if client_id % 2
            else GrpcClient(f"127.0.0.1:{server.grpc_port}", model="text")
        )
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


def _keyed_jobs(rng, client, count, texts, max_rows):
    """`count` keyed requests of 1..max_rows rows of `texts`, alternately over REST and gRPC, with unique keys."""
    jobs = []
    for request in range(count):
        rows = rng.integers(0, len(texts), size=int(rng.integers(1, max_rows + 1)))
        keys = [f"{client}-r{request}-{i}-é😀" for i in range(len(rows))]
        jobs.append(
            {
                "protocol": ("rest", "grpc")[request % 2],
                "rows": rows.tolist(),
                "keys": keys,
                "texts": [str(t) for t in texts[rows]],
            }
        )
    return jobs


def _check_keyed(answer, job, expected):
    assert [row["key"] for row in answer] == job["keys"], "keys mixed or out of order"
    np.testing.assert_allclose([row["probabilities"] for row in answer], expected[job["rows"]], atol=1e-6)
    assert [row["label"] for row in answer] == [["rotten", "fresh"][i] for i in expected[job["rows"]].argmax(axis=1)]


@pytest.mark.slow
def test_keys_never_mix_across_client_processes_and_threads(exported, tmp_path):
    """Two client processes and the test's own threads, REST and gRPC, keyed rows of 1..12 into one batched server."""
    model, base, texts = exported
    texts = texts[:300]
    expected = model.predict(texts.astype(object), verbose=0)  # unbatched: one Keras call on every row
    parameters = BatchingParameters(
        max_batch_size=16,
        batch_timeout_micros=20_000,
        max_enqueued_batches=100,
        num_batch_threads=2,
        allowed_batch_sizes=(4, 8, 16),
    )
    server = _serve(base, parameters)
    rng = np.random.default_rng(1)
    processes, jobs, logs = [], {}, {}
    try:
        for client in ("process-1", "process-2"):
            jobs[client] = _keyed_jobs(rng, client, 16, texts, 12)
            (tmp_path / f"{client}.json").write_text(json.dumps(jobs[client]))
            logs[client] = tmp_path / f"{client}.log"
            with open(logs[client], "w") as log:
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            os.path.join(HERE, "_batched_client.py"),
                            f"http://127.0.0.1:{server.rest_port}",
                            f"127.0.0.1:{server.grpc_port}",
                            str(tmp_path / f"{client}.json"),
                            "3",
                        ],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=log,
                        text=True,
                    )
                )
        for client, process in zip(logs, processes):
            assert process.stdout.readline().strip() == "ready", logs[client].read_text()[-3000:]
        jobs["threads"] = _keyed_jobs(rng, "threads", 24, texts, 12)
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()

        def send(job):
            client = (
                RestClient(f"http://127.0.0.1:{server.rest_port}", model="text")
                if job["protocol"] == "rest"
                else GrpcClient(f"127.0.0.1:{server.grpc_port}", model="text")
            )
            return client.predict({"text": job["texts"]}, keys=job["keys"])

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = {"threads": list(pool.map(send, jobs["threads"]))}
        for client, process in zip(logs, processes):
            out, _ = process.communicate(timeout=120)
            assert process.returncode == 0, logs[client].read_text()[-3000:]
            results = [json.loads(line) for line in out.splitlines()]
            assert [r.get("error") for r in results] == [None] * len(jobs[client]), results
            answers[client] = [r["answer"] for r in results]
        batches = server.scheduler.batches_run
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        server.stop()
    for client, client_jobs in jobs.items():
        for job, answer in zip(client_jobs, answers[client], strict=True):
            _check_keyed(answer, job, expected)
    requests = sum(len(client_jobs) for client_jobs in jobs.values())
    assert batches < requests, f"{batches} batches for {requests} requests: no two requests were batched together"


def test_grpc_requests_with_deadlines_batch_together(exported):
    """A deadline (here 30 s) reaches the server as whole seconds: timeouts to the millisecond made every request
    a queue of its own, so that gRPC requests were never batched together."""
    _, base, _ = exported
    server = _serve(base, BatchingParameters(max_batch_size=64, batch_timeout_micros=100_000, num_batch_threads=1))
    client = GrpcClient(f"127.0.0.1:{server.grpc_port}", model="default", timeout=30)
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda i: client.predict({"x": [[float(i)]]}), range(32)))  # sent as float32
        batches = server.scheduler.batches_run
        request = client.predict_request({"x": [[1.0]]})
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1.0]])))  # float64: refused before any batch
        with pytest.raises(grpc.RpcError) as raised:
            client.stub.Predict(request, timeout=30)
        assert (raised.value.code(), raised.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expects arg[0] to be float but double is provided",
        )
    finally:
        client.close()
        server.stop()
    assert answers == [[{"y": [i / 2 + 2]}] for i in range(32)]
    assert batches <= 8, f"{batches} batches for 32 concurrent requests"


@pytest.mark.slow
def test_version_swap_while_clients_run_with_batching_fails_no_request(exported, tmp_path):
    """A new version appears while REST and gRPC clients send keyed rows to a batched server: no request fails, keys
    never mix, and each client's answers come from version 1, then from version 2."""
    model, base, texts = exported
    texts = texts[:200]
    swap = tmp_path / "text"
    shutil.copytree(os.path.join(base, "1"), swap / "1")
    recipes.set_seed(1)
    newer = text.bag_of_words_classifier(texts, 2, class_names=["rotten", "fresh"], max_tokens=500)  # untrained
    by_version = {1: model.predict(texts.astype(object), verbose=0), 2: newer.predict(texts.astype(object), verbose=0)}
    assert not np.allclose(by_version[1], by_version[2], atol=1e-3)
    parameters = BatchingParameters(
        max_batch_size=16, batch_timeout_micros=5_000, max_enqueued_batches=100, num_batch_threads=2
    )
    server = ModelServer(
        [ModelConfig("text", str(swap))], grpc_port=0, rest_port=0, poll_seconds=0.2, batching=parameters
    )
    answers, failures, stop = {c: [] for c in range(6)}, [], threading.Event()

    def run(client_id):
        client = (
            RestClient(f"http://127.0.0.1:{server.rest_port}", model="text")
            if client_id % 2
            else GrpcClient(f"127.0.0.1:{server.grpc_port}", model="text")
        )
        rng = np.random.default_rng(client_id)
        request = 0
        while not stop.is_set():
            job = _keyed_jobs(rng, f"client-{client_id}-{request}", 1, texts, 6)[0]
            try:
                answers[client_id].append((job, client.predict({"text": job["texts"]}, keys=job["keys"])))
            except Exception as error:
                failures.append(f"client {client_id}: {type(error).__name__}: {error}")
            request += 1

    threads = [threading.Thread(target=run, args=(c,)) for c in answers]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        serving.export_model(newer, swap, version=2)  # written beside and renamed into place
        wait_for_swap(server.manager, "text", to_version=2, seconds=120)
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        batches = server.scheduler.batches_run
        server.stop()
    assert failures == []
    for client_id, client_answers in answers.items():
        versions = []
        for job, answer in client_answers:
            assert [row["key"] for row in answer] == job["keys"]
            probabilities = np.array([row["probabilities"] for row in answer])
            matches = [v for v, e in by_version.items() if np.allclose(probabilities, e[job["rows"]], atol=1e-6)]
            assert len(matches) == 1, f"client {client_id}: rows from neither version, or from both in one answer"
            versions += matches
        assert versions[0] == 1 and versions[-1] == 2 and versions == sorted(versions), (client_id, versions)
    requests = sum(len(a) for a in answers.values())
    assert batches < requests, f"{batches} batches for {requests} requests"


def test_a_bad_request_does_not_fail_the_requests_batched_with_it(exported):
    _, base, _ = exported
    server = _serve(base, BatchingParameters(max_batch_size=8, batch_timeout_micros=300_000, num_batch_threads=1))
    bodies = [{"instances": [{"text": t, "key": k}]} for t, k in (("good", "a"), (" ", "bad"), ("fine", "c"))]
    try:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda body: rest_request(server, "POST", "/v1/models/text:predict", body), bodies))
    finally:
        server.stop()
    assert [status for status, _ in answers] == [200, 400, 200], answers
    assert "empty strings at rows:] [0]" in answers[1][1]["error"]


def test_a_request_of_zero_rows_is_answered_with_padding(exported):
    _, base, _ = exported
    server = _serve(base, BatchingParameters(max_batch_size=8, allowed_batch_sizes=(4, 8), num_batch_threads=1))
    try:
        assert rest_request(server, "POST", "/v1/models/default:predict", {"inputs": []}) == (200, {"outputs": []})
    finally:
        server.stop()


def test_full_queue_answers_503_and_the_server_recovers(exported):
    _, base, texts = exported
    parameters = BatchingParameters(max_batch_size=3000, max_enqueued_batches=1, num_batch_threads=1)
    server = _serve(base, parameters)
    big = {"instances": [{"text": t * 5, "key": str(i)} for i, t in enumerate(np.resize(texts, 3000))]}
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            statuses = [
                status
                for status, _ in pool.map(
                    lambda _: rest_request(server, "POST", "/v1/models/text:predict", big), range(4)
                )
            ]
        assert 503 in statuses and 200 in statuses, statuses
        status, body = rest_request(
            server, "POST", "/v1/models/text:predict", {"instances": [{"text": "fine", "key": "k"}]}
        )
        assert status == 200 and body["predictions"][0]["key"] == "k"
        with pytest.raises(ClientError) as raised:
            client = GrpcClient(f"127.0.0.1:{server.grpc_port}", model="text", chunk_size=5000)  # one request
            client.predict({"text": ["x"] * 3001}, keys=range(3001))
        assert (
            raised.value.code == "INVALID_ARGUMENT"
            and "larger than maximum input batch size 3000" in raised.value.message
        )
    finally:
        server.stop()


def test_inputs_of_other_shapes_are_batched_apart_not_failed(exported):
    _, base, _ = exported
    server = _serve(base, BatchingParameters(max_batch_size=8, batch_timeout_micros=50_000, num_batch_threads=1))
    requests = [{"instances": [[1.0], [2.0]]}, {"instances": [1.0, 2.0, 3.0]}, {"instances": [[3.0]]}] * 4
    try:
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = list(
                pool.map(lambda body: rest_request(server, "POST", "/v1/models/default:predict", body), requests)
            )
    finally:
        server.stop()
    expected = [[[2.5], [3.0]], [2.5, 3.0, 3.5], [[3.5]]] * 4
    assert answers == [(200, {"predictions": e}) for e in expected]


def test_prometheus_metrics_under_tf_serving_names(exported):
    from serving.metrics import read_monitoring_config

    assert (
        read_monitoring_config(open(os.path.join(DEPLOY, "monitoring.config")).read())
        == "/monitoring/prometheus/metrics"
    )
    assert read_monitoring_config("prometheus_config { enable: false }") is None
    with pytest.raises(ValueError, match="prometheus_config"):
        read_monitoring_config("prometheus { enable: true }")

    _, base, _ = exported
    server = ModelServer(
        [ModelConfig("text", base)],
        grpc_port=0,
        rest_port=0,
        poll_seconds=0,
        batching=BatchingParameters(max_batch_size=8, num_batch_threads=1),
        metrics_path="/monitoring/prometheus/metrics",
    )
    try:
        RestClient(f"http://127.0.0.1:{server.rest_port}", model="text").predict(
            {"text": ["good", "bad"]}, keys=["a", "b"]
        )
        GrpcClient(f"127.0.0.1:{server.grpc_port}", model="text").predict({"text": ["fine"]}, keys=["c"])
        assert (
            rest_request(server, "POST", "/v1/models/text:predict", {"instances": [{"text": "", "key": "d"}]})[0] == 400
        )
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics") as response:
            text_format = response.read().decode()
    finally:
        server.stop()
    assert ':tensorflow:serving:request_count_total{model_name="text",status="OK"} 2.0' in text_format
    assert ':tensorflow:serving:request_count_total{model_name="text",status="INVALID_ARGUMENT"} 1.0' in text_format
    assert (
        ':tensorflow:serving:request_latency_count{API="predict",entrypoint="REST",model_name="text"} 2.0'
        in text_format
    )
    assert (
        ':tensorflow:serving:request_latency_count{API="Predict",entrypoint="GRPC",model_name="text"} 1.0'
        in text_format
    )
    assert ':tensorflow:serving:batching_session:batch_size_sum{model_name="text"} 3.0' in text_format


@pytest.mark.parametrize("grpc_max_threads", [4, 32])
def test_concurrent_grpc_calls_reach_the_scheduler_together_up_to_grpc_max_threads(grpc_max_threads):
    """32 concurrent one-row gRPC Predict calls: with 32 gRPC threads they reach the batch scheduler together and
    share a few batches; with 4, at most 4 calls are under way at once, as in TF Serving (whose gRPC threads wait
    for their batch), so every batch has at most 4 rows."""
    timeout_micros = 500_000 if grpc_max_threads == 32 else 50_000
    parameters = BatchingParameters(max_batch_size=32, batch_timeout_micros=timeout_micros, num_batch_threads=1)
    server = ModelServer(
        [ModelConfig("default", tf_serving_model("saved_model_half_plus_two_cpu"))],
        grpc_port=0,
        rest_port=None,
        poll_seconds=0,
        batching=parameters,
        grpc_max_threads=grpc_max_threads,
    )
    client = GrpcClient(f"127.0.0.1:{server.grpc_port}", model="default", timeout=60)
    try:
        client.input_dtypes()
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda i: client.predict({"x": [[float(i)]]}), range(32)))
        batches, rows = server.scheduler.batches_run, server.scheduler.rows_run
    finally:
        client.close()
        server.stop()
    assert answers == [[{"y": [i / 2 + 2]}] for i in range(32)]
    assert rows == 32
    if grpc_max_threads == 32:
        assert batches <= 4, f"{batches} batches for 32 concurrent calls"
    else:
        assert batches >= 8, f"{batches} batches for 32 calls, at most 4 of them under way at once"


def test_calls_past_their_deadline_or_cancelled_free_their_place_and_the_server_goes_on():
    """With one gRPC thread and a 1.5 s batch timeout, a call with a 0.2 s deadline ends DEADLINE_EXCEEDED and a
    cancelled one CANCELLED, while their rows wait in the queue; the next call is answered, with the right value."""
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    parameters = BatchingParameters(max_batch_size=8, batch_timeout_micros=1_500_000, num_batch_threads=1)
    server = ModelServer(
        [ModelConfig("default", tf_serving_model("saved_model_half_plus_two_cpu"))],
        grpc_port=0,
        rest_port=None,
        poll_seconds=0,
        batching=parameters,
        grpc_max_threads=1,
    )
    client = GrpcClient(f"127.0.0.1:{server.grpc_port}", model="default")
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(client.channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(client.predict_request({"x": [[1.0]]}), timeout=0.2)
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        cancelled = stub.Predict.future(client.predict_request({"x": [[2.0]]}), timeout=30)
        time.sleep(0.2)
        assert cancelled.cancel() and cancelled.code() == grpc.StatusCode.CANCELLED
        response = stub.Predict(client.predict_request({"x": [[3.0]]}), timeout=30)
        assert list(response.outputs["y"].float_val) == [3.5]
    finally:
        client.close()
        server.stop()

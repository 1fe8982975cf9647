"""`recipes tune-batching` and the load generator under it, against real server processes."""

import json
import os
import shutil

import numpy as np
import pytest
from tensorflow_serving.apis import predict_pb2

import recipes
import serving
from models import text
from recipes.cli import main
from serving.batching import BatchingParameters
from serving.client import ClientError
from serving.load import HttpTarget, ServerProcess, grpc_frame, run_h2load, run_load

MONITORING = os.path.join(os.path.dirname(__file__), os.pardir, "serving", "deploy", "monitoring.config")


@pytest.fixture(scope="module")
def text_export(tmp_path_factory):
    recipes.set_seed(0)
    reviews = recipes.datasets.load_rotten_tomatoes()[:300]
    model = text.bag_of_words_classifier(reviews.text, 2, class_names=["rotten", "fresh"], max_tokens=2000)
    model.fit(reviews.text.to_numpy(), reviews.label.to_numpy(), epochs=1, verbose=0)
    root = tmp_path_factory.mktemp("tune")
    serving.export_model(model, root / "text")
    rows = root / "reviews.jsonl"
    rows.write_text("".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(reviews.text[:50])))
    return str(root / "text"), str(rows), list(reviews.text[:50])


@pytest.mark.slow
def test_load_reports_keyed_answers_over_both_protocols(text_export):
    base, _, texts = text_export
    server = ServerProcess([f"--model_base_path={base}", "--model_name=text"])
    try:
        for protocol in ("grpc", "rest"):
            address = server.grpc_address if protocol == "grpc" else server.rest_address
            report = run_load(
                address,
                "text",
                {"text": texts},
                protocol=protocol,
                concurrency=4,
                rows_per_request=3,
                seconds=0.5,
                warmup_seconds=0.2,
                server_pid=server.process.pid,
            )
            assert report.errors == {} and report.requests > 0
            assert 0 < report.p50_ms <= report.p99_ms
            # the CPU each side used while measured: both worked, neither more than every core all the time
            assert 0 < report.client_cores <= os.cpu_count() and 0 < report.server_cores <= os.cpu_count()
        # another framework's JSON endpoint, as bench_peers drives it: here TF Serving's row format
        rows = HttpTarget(
            "/v1/models/text:predict",
            lambda columns: {"instances": [dict(zip(columns, row)) for row in zip(*columns.values())]},
            lambda answer: [prediction["key"] for prediction in answer["predictions"]],
        )

        def rest_load(target):
            return run_load(
                server.rest_address,
                "text",
                {"text": texts},
                protocol="rest",
                concurrency=2,
                rows_per_request=2,
                seconds=0.3,
                warmup_seconds=0,
                http_target=target,
            )

        report = rest_load(rows)
        assert report.errors == {} and report.requests > 0
        wrong = HttpTarget(rows.path, rows.body, lambda answer: answer["outputs"]["key"])  # not where the keys are
        report = rest_load(wrong)
        assert report.requests == 0 and set(report.errors) == {"no keys"}
        report = run_load(server.grpc_address, "nope", {"text": texts}, concurrency=2, seconds=0.3, warmup_seconds=0)
        assert report.requests == 0 and set(report.errors) == {"NOT_FOUND"}
        assert report.server_cpu_seconds is None and report.server_cores is None  # no server_pid given
        assert server.peak_memory_bytes() > 50 * 2**20
    finally:
        server.stop()
    with pytest.raises(ValueError, match="protocol"):
        run_load("127.0.0.1:1", "text", {"text": texts}, protocol="http")
    with pytest.raises(ValueError, match="without 'key'"):
        run_load("127.0.0.1:1", "text", {"text": texts, "key": texts})


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (Debian's nghttp2-client) is not installed")
def test_h2load_sends_grpc_predict_load_that_the_server_answers(text_export):
    base, _, texts = text_export
    server = ServerProcess([f"--model_base_path={base}", "--model_name=text", f"--monitoring_config_file={MONITORING}"])
    try:
        report = run_h2load(
            server.grpc_address,
            "text",
            {"text": texts},
            concurrency=4,
            seconds=0.5,
            warmup_seconds=0.2,
            server_pid=server.process.pid,
        )
        assert report.requests > 0 and report.failed == 0 and report.mean_ms > 0
        assert report.throughput == report.requests / 0.5 and 0 < report.server_cores <= os.cpu_count()
        assert server.request_counts("text")["OK"] > report.requests  # h2load's, its warm-up's and the checked one
        with pytest.raises(ClientError) as raised:
            run_h2load(server.grpc_address, "nope", {"text": texts}, seconds=0.2, warmup_seconds=0)
        assert raised.value.code == "NOT_FOUND"
    finally:
        server.stop()


def test_grpc_frame_is_the_message_behind_its_flag_and_length():
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "text"
    frame = grpc_frame(request)
    assert frame[0] == 0 and int.from_bytes(frame[1:5], "big") == len(frame) - 5
    assert predict_pb2.PredictRequest.FromString(frame[5:]) == request


@pytest.mark.slow
def test_tune_batching_sweeps_and_writes_parameters_the_server_reads(text_export, tmp_path, capsys):
    base, rows, _ = text_export
    out = tmp_path / "batching"
    status = main(
        [
            "tune-batching",
            "--model-path",
            base,
            rows,
            "--key",
            "id",
            "--directory",
            str(out),
            "--clients",
            "8",
            "--seconds",
            "0.5",
            "--max-batch-sizes",
            "2",
            "8",
            "--timeouts-ms",
            "1",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    for label in ("no batching", "size 2, 0 ms", "size 8, 0 ms", "ms", "chose size"):
        assert label in printed
    chosen = BatchingParameters.from_text((out / "batching_parameters.txt").read_text())
    assert chosen.max_batch_size in (2, 8) and chosen.num_batch_threads >= 1
    table = (out / "batching_sweep.csv").read_text().splitlines()
    assert table[0] == "max_batch_size,batch_timeout_ms,requests_per_s,p50_ms,p99_ms"
    assert [line.split(",")[:2] for line in table[1:]] == [
        ["", ""],
        ["2", "0"],
        ["8", "0"],
        [str(chosen.max_batch_size), "1"],
    ]
    assert all(float(line.split(",")[2]) > 0 for line in table[1:])
    assert (out / "batching_sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in out.iterdir()) == [
        "batching_parameters.txt",
        "batching_sweep.csv",
        "batching_sweep.png",
    ]


def test_tune_batching_refuses_bad_arguments(text_export, tmp_path, capsys):
    base, rows, _ = text_export
    assert main(["tune-batching", "--model-path", base, rows, "--clients", "0"]) == 2
    assert "`clients` must be an int >= 1. Received: clients=0" in capsys.readouterr().err
    assert main(["tune-batching", "--model-path", base, rows, "--timeouts-ms", "1", "-2"]) == 2
    assert (
        "`timeouts_ms[1]` must be a finite number in [0, inf]. Received: timeouts_ms[1]=-2.0" in capsys.readouterr().err
    )
    assert main(["tune-batching", "--model-path", str(tmp_path), rows]) == 2
    assert "SavedModel" in capsys.readouterr().err
    np.testing.assert_equal(list(tmp_path.iterdir()), [])

"""serving.cost and `recipes cost`: the cost arithmetic on given throughputs and prices, and a real measurement."""

import json
import math

import pandas as pd
import pytest

import recipes
import serving
from models import text
from recipes.cli import main
from recipes.cli.cost import parse_prices
from serving.cost import BUILTIN_PRICES, PRICES_DATE, cost_report, measure_throughput, price_table

# Per replica: throughput grows with the batch size, and so does the latency of a call.
MEASURED = [
    {"device": "cpu", "batch_size": 1, "rows_per_s": 200, "p50_ms": 4, "p99_ms": 5},
    {"device": "cpu", "batch_size": 32, "rows_per_s": 1600, "p50_ms": 18, "p99_ms": 25},
    {"device": "cpu", "batch_size": 128, "rows_per_s": 2000, "p50_ms": 60, "p99_ms": 80},
]
PRICES = [
    {"machine": "cpu-4", "device": "cpu", "vcpus": 4, "usd_per_hour": 0.2},  # 2 replicas of 2 cores
    {"machine": "cpu-16", "device": "cpu", "vcpus": 16, "usd_per_hour": 0.76},  # 8 replicas
    {"machine": "gpu-1", "device": "gpu", "gpus": 1, "vcpus": 4, "accelerator": "T4", "usd_per_hour": 0.72},
]


def _report(**kwargs):
    return cost_report(MEASURED, PRICES, cores_per_replica=2, **kwargs)


def _row(report, machine):
    return report.table.set_index("machine").loc[machine]


def test_cost_per_million_machines_and_cheapest_on_cpu_alone():
    report = _report()
    # cpu-16 at batch 128: 8 x 2000 = 16,000 rows/s = 57.6 M rows/h for $0.76; cpu-4: 4,000 rows/s, 14.4 M/h for $0.20
    assert _row(report, "cpu-16").cost_per_million == pytest.approx(0.76 / 57.6)
    assert _row(report, "cpu-4").cost_per_million == pytest.approx(0.2 / 14.4)
    assert (_row(report, "cpu-4").replicas, _row(report, "cpu-4").rows_per_s) == (2, 4000)
    assert report.cheapest["machine"] == "cpu-16" and report.cheapest["batch_size"] == 128
    gpu = _row(report, "gpu-1")
    assert gpu.source == "not measured" and gpu.status == "not measured" and math.isnan(gpu.cost_per_million)
    assert any(note.startswith("No GPU was measured and no GPU throughput supplied") for note in report.notes)
    assert (report.verdict, report.ok) == ("pass", True)
    assert report.summary.startswith("Cheapest per prediction: cpu-16 (CPU, batch 128, measured)")
    assert str(report).startswith("PASS: Cheapest per prediction: cpu-16")
    assert report.advice == (
        "to price the GPU machine types, measure on a GPU machine (serving.measure_throughput, `recipes cost`) "
        "and pass its rows/s as gpu_throughput= (--gpu-throughput)",
    )

    # 10,000 rows/s: 3 x cpu-4 ($0.60/h) beat 1 x cpu-16 ($0.76/h), the rounding up makes the difference
    report = _report(target_rps=10_000)
    assert (_row(report, "cpu-4").machines, _row(report, "cpu-16").machines) == (3, 1)
    assert report.cheapest["machine"] == "cpu-4" and report.cheapest["usd_per_hour_total"] == pytest.approx(0.6)
    assert list(report.table.machine) == ["cpu-4", "cpu-16", "gpu-1"]

    # p99 <= 30 ms rules batch 128 out: batch 32 gives 3,200 and 12,800 rows/s, so 4 x cpu-4 ($0.80) or 1 x cpu-16
    report = _report(target_rps=10_000, max_latency_ms=30)
    assert _row(report, "cpu-4").batch_size == 32 and _row(report, "cpu-4").machines == 4
    assert _row(report, "cpu-4").cost_per_million == pytest.approx(0.2 / (3200 * 3600 / 1e6))
    assert report.cheapest["machine"] == "cpu-16" and report.cheapest["usd_per_hour_total"] == pytest.approx(0.76)
    assert report.summary.startswith("Cheapest for 10,000 rows/s with p99 <= 30 ms: 1 x cpu-16 (CPU, batch 32")
    points = report.points[report.points.machine == "cpu-4"].set_index("batch_size")
    assert list(points.meets_latency) == [True, True, False]
    assert list(points.machines) == [25, 4, 3]  # 400, 3,200 and 4,000 rows/s for 10,000


def test_a_supplied_gpu_throughput_competes_and_an_unknown_latency_never_wins():
    gpu = dict(gpu_throughput=20_000, gpu_latency_ms=10)
    report = _report(target_rps=10_000, max_latency_ms=30, **gpu)
    assert report.cheapest["machine"] == "gpu-1" and report.cheapest["source"] == "supplied"
    assert report.cheapest["batch_size"] is None and report.cheapest["machines"] == 1
    assert report.cheapest["cost_per_million"] == pytest.approx(0.72 / 72)  # 20,000 rows/s = 72 M rows/h
    assert any(
        note.startswith("No GPU was measured: GPU machine types use the supplied 20,000") for note in report.notes
    )

    assert _report(target_rps=10_000, **gpu).cheapest["machine"] == "cpu-4"  # $0.60 < $0.72 without a latency limit

    report = _report(target_rps=10_000, max_latency_ms=8, **gpu)  # the GPU's 10 ms is too slow: batch 1 on CPUs
    assert _row(report, "gpu-1").status == "p99 above target"
    assert report.cheapest["machine"] == "cpu-4" and report.cheapest["machines"] == 25
    assert report.cheapest["usd_per_hour_total"] == pytest.approx(5.0)

    report = _report(max_latency_ms=30, gpu_throughput=20_000)  # cheapest per million, but its p99 is unknown
    assert _row(report, "gpu-1").status == "latency unknown"
    assert report.cheapest["machine"] == "cpu-16"
    assert any("cannot be checked against the p99 target" in note for note in report.notes)

    report = _report(max_latency_ms=3, **gpu)
    assert report.cheapest is None and (report.verdict, report.ok) == ("fail", False)
    assert report.summary == "No machine type meets p99 <= 3 ms: the lowest p99 is 5.0 ms (CPU, batch 1)"
    assert report.advice == ("raise max_latency_ms (--max-latency-ms), or serve a smaller model or a faster device",)

    report = cost_report(MEASURED, PRICES[2:], max_latency_ms=30, gpu_throughput=20_000)  # a GPU of unknown p99
    assert (report.verdict, report.cheapest) == ("error", None)
    assert report.summary.startswith("No machine type is known to meet p99 <= 30 ms")
    assert report.advice[0].startswith("pass gpu_latency_ms= (--gpu-latency-ms)")
    report = cost_report(MEASURED, PRICES[2:])
    assert report.verdict == "error" and report.summary.startswith("No machine type can be priced")


def test_measured_gpu_rows_price_gpu_machines(tmp_path):
    measured = MEASURED + [
        {"device": "gpu", "batch_size": 256, "rows_per_s": 36_000, "p99_ms": 12, "device_name": "T4"}
    ]
    report = cost_report(measured, PRICES, cores_per_replica=2, target_rps=10_000, max_latency_ms=30)
    assert report.cheapest["machine"] == "gpu-1" and report.cheapest["source"] == "measured"
    assert report.cheapest["batch_size"] == 256
    assert any(note.startswith("GPU: measured on T4") for note in report.notes)
    with pytest.raises(ValueError, match="the measurements have GPU rows"):
        cost_report(measured, PRICES, cores_per_replica=2, gpu_throughput=1000)
    markdown = report.to_markdown()
    assert (
        markdown.startswith("**PASS**: Cheapest for 10,000 rows/s") and "| gpu-1 | gpu | 1 | 0.72 | 256 |" in markdown
    )
    as_json = json.loads(json.dumps(report.to_dict()))
    assert (as_json["verdict"], as_json["ok"], as_json["cheapest"]["machine"]) == ("pass", True, "gpu-1")
    assert [row["machine"] for row in as_json["table"]] == list(report.table.machine) and "points" not in as_json
    assert report.plot(tmp_path / "cost.png") == str(tmp_path / "cost.png")
    assert (tmp_path / "cost.png").read_bytes()[:4] == b"\x89PNG"


def test_prices_built_in_from_files_and_overridden(tmp_path):
    table = price_table()
    assert list(table.machine) == [row["machine"] for row in BUILTIN_PRICES]
    assert table.attrs["date"] == PRICES_DATE and "aws.amazon.com" in table.attrs["source"]
    assert set(table.device) == {"cpu", "gpu"}
    cheaper = price_table(overrides={"g4dn.xlarge": 0.2})
    assert (
        cheaper.set_index("machine").usd_per_hour["g4dn.xlarge"] == 0.2
        and "g4dn.xlarge=$0.2/h" in cheaper.attrs["source"]
    )
    report = cost_report(MEASURED, cheaper, cores_per_replica=2, gpu_throughput=1000)
    assert _row(report, "g4dn.xlarge").cost_per_million == pytest.approx(0.2 / 3.6)
    assert parse_prices(["g4dn.xlarge=0.2", " c6i.large =0.05"]) == {"g4dn.xlarge": 0.2, "c6i.large": 0.05}

    pd.DataFrame(PRICES).to_csv(tmp_path / "prices.csv", index=False)
    from_csv = price_table(tmp_path / "prices.csv", overrides={"cpu-4": 0.1})
    assert list(from_csv.machine) == ["cpu-4", "cpu-16", "gpu-1"] and from_csv.attrs["source"].startswith("prices.csv")
    report = cost_report(MEASURED, from_csv, cores_per_replica=2)
    assert _row(report, "cpu-4").cost_per_million == pytest.approx(0.1 / 14.4)
    assert "Prices (undated): prices.csv; overridden: cpu-4=$0.1/h; approximate" in str(report)

    json_rows = [{"machine": "box", "device": "cpu", "replicas": 3, "usd_per_hour": 0.9}]
    (tmp_path / "prices.json").write_text(
        json.dumps({"date": "2025-01-02", "source": "our contract", "machines": json_rows})
    )
    report = cost_report(MEASURED, str(tmp_path / "prices.json"))  # replicas given: no cores_per_replica needed
    assert report.cheapest["machine"] == "box" and report.cheapest["rows_per_s"] == 6000
    assert report.notes[-1] == "Prices (2025-01-02): our contract; approximate, check before deciding."


def test_bad_input_raises_clear_errors(tmp_path):
    with pytest.raises(
        ValueError, match=r"machines of the price table \['c6i\.large'.*Received: unknown machine 'm5\.large'"
    ):
        price_table(overrides={"m5.large": 0.1})
    with pytest.raises(ValueError, match=r"price of 'c6i\.large' must be a number of USD per hour > 0. Received: -1"):
        price_table(overrides={"c6i.large": -1})
    with pytest.raises(ValueError, match=r"price of 'cpu-4' must be .* Received: -0\.2"):
        cost_report(MEASURED, [{**PRICES[0], "usd_per_hour": -0.2}], cores_per_replica=2)
    with pytest.raises(ValueError, match=r"`device` must be one of \['cpu', 'gpu'\]. Received: 'tpu'"):
        price_table([{"machine": "x", "device": "tpu", "replicas": 1, "usd_per_hour": 1}])
    with pytest.raises(ValueError, match="a GPU machine needs `gpus` >= 1"):
        price_table([{"machine": "x", "device": "gpu", "usd_per_hour": 1}])
    with pytest.raises(ValueError, match="--price must be NAME=USD_PER_HOUR"):
        parse_prices(["g4dn.xlarge"])
    with pytest.raises(ValueError, match=r"measurement 1: `batch_size` must be an int >= 1. Received: 0"):
        cost_report([{**MEASURED[0], "batch_size": 0}], PRICES, cores_per_replica=2)
    with pytest.raises(ValueError, match=r"`rows_per_s` must be a number > 0. Received: -5"):
        cost_report([{**MEASURED[0], "rows_per_s": -5}], PRICES, cores_per_replica=2)
    with pytest.raises(ValueError, match=r"lack the columns \['p99_ms'\]"):
        cost_report([{"device": "cpu", "batch_size": 1, "rows_per_s": 5}])
    with pytest.raises(ValueError, match="do not say how many cores"):
        cost_report(MEASURED, PRICES)
    with pytest.raises(ValueError, match=r"`target_rps` must be a finite number in \(0, inf\). Received: target_rps=0"):
        cost_report(MEASURED, PRICES, cores_per_replica=2, target_rps=0)
    with pytest.raises(ValueError, match="pass `gpu_throughput` too"):
        cost_report(MEASURED, PRICES, cores_per_replica=2, gpu_latency_ms=5)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """An untrained bag-of-words review classifier (its speed does not depend on its weights) and real reviews."""
    root = tmp_path_factory.mktemp("cost")
    recipes.set_seed(0)
    reviews = recipes.datasets.load_rotten_tomatoes()[:200]
    model = text.bag_of_words_classifier(reviews.text, 2, class_names=["rotten", "fresh"], max_tokens=1000)
    serving.export_model(model, root / "text")
    rows = root / "reviews.jsonl"
    rows.write_text("".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(reviews.text[:40])))
    return str(root / "text"), str(rows), list(reviews.text[:40])


def test_real_measurement_of_an_export(export):
    base, rows, texts = export
    measured = measure_throughput(base, rows, batch_sizes=(64, 1), key="id", seconds=0.3)
    assert list(measured.batch_size) == [1, 64] and set(measured.tf_device) == {"/CPU:0"}
    assert set(measured.device) == {"cpu"} and set(measured.device_name) == {"CPU"}
    assert (measured.rows_per_s > 0).all() and (measured.calls >= 5).all()
    assert (measured.p50_ms <= measured.p99_ms).all() and (measured.cores >= 1).all()

    again = measure_throughput(base, {"text": texts[:3]}, batch_sizes=[8], seconds=0.1, tf_devices=["cpu:0"])
    assert again.batch_size.tolist() == [8] and again.rows_per_s.iloc[0] > 0  # 3 rows cycled to a batch of 8

    report = cost_report(measured, target_rps=1000)
    assert report.cheapest["device"] == "cpu" and report.verdict == "pass"
    assert set(report.table.source[report.table.device == "gpu"]) == {"not measured"}


def test_measurement_refuses_bad_input(export, tmp_path):
    base, rows, _ = export
    with pytest.raises(ValueError, match=r"`batch_sizes\[0\]` must be an int >= 1. Received: batch_sizes\[0\]=0"):
        measure_throughput(base, rows, batch_sizes=(0, 8))
    with pytest.raises(ValueError, match=r"`x` lacks the inputs \['text'\]"):
        measure_throughput(base, {"review": ["good"]}, batch_sizes=[1])
    (tmp_path / "bad.csv").write_text("id,review\n1,good\n")
    with pytest.raises(ValueError, match=r"lacks the columns \['text'\]"):
        measure_throughput(base, tmp_path / "bad.csv", key="id", batch_sizes=[1])
    with pytest.raises(ValueError, match=r"TensorFlow sees no device '/GPU:7'"):
        measure_throughput(base, rows, key="id", batch_sizes=[1], tf_devices=["/GPU:7"])


@pytest.mark.slow
def test_cli_measures_prices_and_writes_its_files(export, tmp_path, capsys):
    base, rows, _ = export
    out = tmp_path / "cost"
    arguments = ["cost", "--model-path", base, rows, "--key", "id", "--batch-sizes", "1,16", "--seconds", "0.2"]
    status = main(
        [
            *arguments,
            "--price",
            "c6i.large=0.05",
            "--gpu-throughput",
            "50000",
            "--gpu-latency-ms",
            "20",
            "--target-rps",
            "2000",
            "--max-latency-ms",
            "500",
            "--directory",
            str(out),
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "TensorFlow sees no GPU" in printed or "TensorFlow sees 1 GPU" in printed
    assert "PASS: Cheapest for 2,000 rows/s with p99 <= 500 ms" in printed and "c6i.large=$0.05/h" in printed
    assert sorted(p.name for p in out.iterdir()) == ["cost.csv", "cost.png", "measurements.csv"]
    table = pd.read_csv(out / "cost.csv")
    assert set(table.machine) == {row["machine"] for row in BUILTIN_PRICES}
    assert table.set_index("machine").usd_per_hour["c6i.large"] == 0.05
    assert pd.read_csv(out / "measurements.csv").batch_size.tolist() == [1, 16]
    assert (out / "cost.png").read_bytes()[:4] == b"\x89PNG"

    # --json: the report alone on stdout; a latency no machine meets exits 1, for a CI job to gate on
    assert main([*arguments, "--max-latency-ms", "0.001", "--directory", str(out), "--json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert (report["verdict"], report["ok"], report["cheapest"]) == ("fail", False, None)
    assert report["summary"].startswith("No machine type meets p99 <= 0.001 ms")
    assert "TensorFlow sees" in captured.err  # the progress went to stderr

    assert main(["cost", "--model-path", base, rows, "--batch-sizes", "0,8"]) == 2
    assert "--batch-sizes must be comma-separated ints >= 1" in capsys.readouterr().err
    assert main(["cost", "--model-path", base, rows, "--price", "nope=1"]) == 2
    assert "Received: unknown machine 'nope'" in capsys.readouterr().err
    assert main(["cost", "--model-path", base, rows, "--gpu-latency-ms", "5"]) == 2
    assert "pass `gpu_throughput` too" in capsys.readouterr().err

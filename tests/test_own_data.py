"""Your own data, end to end, through the real `recipes` command: train --data, export, serve, predict.

The files are written by the tests from the shipped data, in shapes unlike the shipped ones (tests/conftest.py):
a CSV of Rotten Tomatoes reviews with other column names and string labels, a folder of Fashion-MNIST items as
PNG and JPEG (and a GIF and a BMP) at mixed sizes, a folder of espeak-ng clips of 0.6-1.4 s (one at 22.05 kHz),
a weather CSV with ISO dates and missing values. Each is trained on briefly with `recipes train --data`, its
export served by recipes-model-server on 127.0.0.1 and queried over REST and gRPC with keys, and predicted
offline with `recipes predict` over a file of the same format. Bad input is a message and exit status 2,
before anything is written.
"""

import base64
import copy
import csv
import json
import os
import re
import urllib.request

import numpy as np
import pandas as pd
import pytest
from _recipes_command import recipes_command
from conftest import weather_frame
from PIL import Image

from recipes.cli import main
from serving.client import GrpcClient, RestClient
from serving.contract import KEY
from serving.manager import ModelConfig
from serving.server import ModelServer

TINY = ("--total-examples", "96", "--num-checkpoints", "2", "--batch-size", "16", "--quiet")
SCORE = r"^\[{name}\] test (accuracy|mean absolute error): ([\d.]+) vs ([\d.]+) for the (majority class|mean)$"


def _train(tmp_path, name, *data_options):
    """`recipes train --data ... --name NAME`: its export folder, after checking what it printed."""
    exports, runs = tmp_path / "exports", tmp_path / "runs"
    result = recipes_command(
        "train", *data_options, "--name", name, "--export-dir", exports, "--directory", runs, *TINY
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = re.search(SCORE.format(name=name), result.stdout, re.M)
    assert found, result.stdout
    score, baseline = float(found.group(2)), float(found.group(3))
    assert np.isfinite(score) and np.isfinite(baseline)
    if found.group(1) == "accuracy":
        assert 0 <= score <= 1 and 0 < baseline <= 1
    simple = rf"^\[{name}\] simple model \(.+ \+ (logistic|ridge) regression\) test {found.group(1)}: [\d.]+$"
    assert re.search(simple, result.stdout, re.M), result.stdout
    assert re.search(rf"^\[{name}\] .* exported to {re.escape(str(exports / name / '1'))}$", result.stdout, re.M)
    assert os.listdir(exports / name) == ["1"]
    return exports / name


def _serve(export, check):
    """Serves `export` on 127.0.0.1 and calls `check(rest, grpc, rest_url)`."""
    server = ModelServer([ModelConfig(export.name, str(export))], grpc_port=0, rest_port=0, poll_seconds=0)
    try:
        url = f"http://127.0.0.1:{server.rest_port}"
        check(RestClient(url, model=export.name), GrpcClient(f"127.0.0.1:{server.grpc_port}", model=export.name), url)
    finally:
        server.stop()


def _query(rest, grpc, inputs, keys, class_names=None):
    """The same keyed request over REST and gRPC: every answer carries its key, and both protocols agree."""
    answers = {}
    for protocol, client in (("rest", rest), ("grpc", grpc)):
        answers[protocol] = client.predict(inputs, keys=keys)
        assert [answer[KEY] for answer in answers[protocol]] == keys, protocol
        for answer in answers[protocol]:
            if class_names is None:
                assert np.isfinite(answer["prediction"])
            else:
                assert answer["label"] in class_names
                assert len(answer["probabilities"]) == len(class_names)
                assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-4)
                assert answer["label"] == class_names[int(np.argmax(answer["probabilities"]))]
    assert [a["label" if class_names else "prediction"] for a in answers["rest"]] == [
        a["label" if class_names else "prediction"] for a in answers["grpc"]
    ]
    return answers["rest"]


def _rest_rows(url, name, rows, signature_name="serving_default"):
    """Rows sent as they stand in TF Serving's row format, `{"instances": [...]}`; a table's rows of the training
    file, target and all, go to the export's `row` signature (`serving_default` takes them without the target)."""
    body = json.dumps({"signature_name": signature_name, "instances": rows}).encode()
    request = urllib.request.Request(f"{url}/v1/models/{name}:predict", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["predictions"]


def _to_row_signature(client):
    """The same client (and channel), asking the export's `row` signature."""
    row_client = copy.copy(client)
    row_client.signature_name = "row"
    return row_client


def _predict(export, input_path, output, *options):
    assert (
        main(["predict", "--model-path", str(export), str(input_path), "--output", str(output), *options, "--quiet"])
        == 0
    )
    with open(output, newline="") as f:
        return list(csv.DictReader(f))


# -- the parser's names are recipes.tasks's -----------------------------------------------------------------------


def test_the_command_line_names_what_recipes_tasks_names():
    import recipes.tasks
    from recipes.cli import tasks

    assert tasks.SHIPPED == recipes.tasks.SHIPPED and tasks.MODALITIES == recipes.tasks.MODALITIES
    assert tasks.PROBLEMS == recipes.tasks.PROBLEMS and tasks.COLUMN_TYPES == recipes.tasks.COLUMN_TYPES


def test_every_training_command_takes_a_task_the_same_way(weather_csv):
    from recipes.cli import build_parser
    from recipes.cli.tasks import task_argv, task_from_args

    parser = build_parser()
    data = [
        "--data",
        str(weather_csv),
        "--target",
        "sky",
        "--date",
        "day",
        "--split-dates",
        "2014-07-01",
        "2015-01-01",
        "--column-type",
        "wind=number",
        "--model",
        "linear",
    ]
    for command in ("train", "doctor", "overfit-check", "mode-check", "search"):
        args = parser.parse_args([command, *data])
        assert (args.data, args.target, args.split_dates, args.column_type) == (
            str(weather_csv),
            "sky",
            ["2014-07-01", "2015-01-01"],
            [("wind", "number")],
        ), command
    args = parser.parse_args(["train", *data])
    task = task_from_args(args)
    assert (task.name, task.modality, task.problem, task.date) == ("weather", "table", "classification", "day")
    assert parser.parse_args(["train", *task_argv(args)]) == args  # the workers' command line names the same task
    assert task_from_args(parser.parse_args(["train", "tabular", "--model", "regressor"])).problem == "regression"
    for argv, message in (
        (["train"], "a task is needed: a shipped data set"),
        (["train", "text", "--data", str(weather_csv)], "give a shipped task or --data, not both"),
        (["train", "vision", "--group", "x"], "--group applies to --data, not to the shipped task 'vision'"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            task_from_args(parser.parse_args(argv))


# -- bad input: exit status 2, a message, no traceback, nothing written ---------------------------------------------


def _refused(tmp_path, capsys, *arguments):
    exports, runs = tmp_path / "exports", tmp_path / "runs"
    status = main(["train", *map(str, arguments), "--export-dir", str(exports), "--directory", str(runs), "--quiet"])
    error = capsys.readouterr().err
    assert status == 2, error
    assert error.startswith("recipes train: error: ") and "Traceback" not in error
    assert not exports.exists() and not runs.exists()
    return error


def test_bad_data_is_refused_before_anything_is_written(tmp_path, capsys, reviews_csv, weather_csv):
    error = _refused(tmp_path, capsys, "--data", reviews_csv, "--target", "label")
    assert "`target` names a column 'label'" in error and "['review_id', 'film', 'review', 'verdict']" in error
    one = tmp_path / "one.csv"
    pd.DataFrame({"x": np.arange(30.0), "y": ["a"] * 30}).to_csv(one, index=False)
    assert "a classifier needs at least two classes" in _refused(tmp_path, capsys, "--data", one, "--target", "y")
    rare = tmp_path / "rare.csv"
    pd.DataFrame({"x": np.arange(30.0), "y": ["a"] * 29 + ["b"]}).to_csv(rare, index=False)
    assert "'b' (1)" in _refused(tmp_path, capsys, "--data", rare, "--target", "y")
    (tmp_path / "empty").mkdir()
    assert "is empty; expected one folder per class" in _refused(tmp_path, capsys, "--data", tmp_path / "empty")
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("words,y\nfine,a\nd\u00e9j\u00e0 vu,b\n".encode("latin-1"))
    assert "is not UTF-8 text: byte 0xe9" in _refused(tmp_path, capsys, "--data", latin, "--target", "y")
    weather = weather_frame()
    weather.loc[1000, "day"] = "2014-02-30"
    weather.to_csv(tmp_path / "bad_day.csv", index=False)
    error = _refused(
        tmp_path,
        capsys,
        "--data",
        tmp_path / "bad_day.csv",
        "--target",
        "sky",
        "--date",
        "day",
        "--split-dates",
        "2014-07-01",
        "2015-01-01",
    )
    assert "'2014-02-30' at row 1001" in error
    error = _refused(tmp_path, capsys, "--data", weather_csv, "--target", "sky", "--model", "cnn")
    assert "--model for weather must be one of ('classifier', 'linear'). Received: 'cnn'" in error


@pytest.mark.slow
def test_unreadable_files_and_mixed_rates_through_the_real_command(tmp_path, audio_folder):
    folder = tmp_path / "images"
    for name in ("Bag", "Trouser"):
        (folder / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((10, 10), 40 * i, np.uint8)).save(folder / name / f"{i}.png")
    (folder / "Bag" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    exports, runs = tmp_path / "exports", tmp_path / "runs"
    for data, message in (
        (folder, "1 of 9 files in"),
        (audio_folder, "have different sample rates: 16000 Hz (30 clips"),
    ):
        result = recipes_command("train", "--data", data, "--export-dir", exports, "--directory", runs)
        assert result.returncode == 2 and result.stdout == "", result.stderr[-2000:]
        assert "recipes train: error: " in result.stderr and message in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr and ("Bag/broken.jpg: " in result.stderr or data == audio_folder)
        assert not exports.exists() and not runs.exists()


# -- end to end -----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_reviews_csv_with_other_column_names_and_string_labels(reviews_csv, tmp_path):
    export = _train(
        tmp_path, "reviews", "--data", reviews_csv, "--target", "verdict", "--group", "film", "--features", "review"
    )
    reviews = pd.read_csv(reviews_csv).iloc[:4]
    classes = ["negative", "positive"]

    def check(rest, grpc, url):
        keys = list(reviews.review_id)
        _query(rest, grpc, {"review": list(reviews.review)}, keys, classes)  # the column's own name
        rows = [{**row, KEY: row["review_id"]} for row in reviews.to_dict(orient="records")]
        predictions = _rest_rows(url, "reviews", rows, "row")  # rows of the training CSV as they stand
        assert [p[KEY] for p in predictions] == keys and {p["label"] for p in predictions} <= set(classes)
        # over gRPC too, with the target or without it (filled from the signature's default)
        row_grpc = _to_row_signature(grpc)
        for columns in (list(reviews.columns), ["review_id", "film", "review"]):
            answers = row_grpc.predict(reviews[columns].to_dict(orient="list"), keys=keys)
            assert [a["label"] for a in answers] == [p["label"] for p in predictions]

    _serve(export, check)
    new = tmp_path / "new_reviews.csv"
    pd.read_csv(reviews_csv).iloc[100:140].to_csv(new, index=False)
    rows = _predict(export, new, tmp_path / "predictions.csv", "--key", "review_id")
    assert [row["review_id"] for row in rows] == list(pd.read_csv(new).review_id)
    assert {row["label"] for row in rows} <= set(classes)


@pytest.mark.slow
def test_weather_csv_with_iso_dates_and_missing_values(weather_csv, tmp_path):
    export = _train(
        tmp_path,
        "weather",
        "--data",
        weather_csv,
        "--target",
        "sky",
        "--date",
        "day",
        "--split-dates",
        "2014-07-01",
        "2015-01-01",
    )
    weather = pd.read_csv(weather_csv)
    classes = sorted(weather.sky.unique())
    full = weather.dropna().iloc[-3:]

    def check(rest, grpc, url):
        keys = [f"day-{day}" for day in full.day]
        inputs = {column: list(full[column]) for column in ("day", "rain_mm", "high_c", "low_c", "wind")}
        answers = _query(rest, grpc, inputs, keys, classes)
        assert {answer["label"] for answer in answers} <= set(classes)
        rows = [{**row, KEY: row["day"]} for row in full.to_dict(orient="records")]
        by_row = _rest_rows(url, "weather", rows, "row")  # with its target, sky
        assert [p[KEY] for p in by_row] == list(full.day)
        without = [{name: value for name, value in row.items() if name != "sky"} for row in rows]
        assert [p["label"] for p in _rest_rows(url, "weather", without)] == [p["label"] for p in by_row]
        row_grpc = _to_row_signature(grpc)
        assert [a["label"] for a in row_grpc.predict(full.to_dict(orient="list"), keys=keys)] == [
            p["label"] for p in by_row
        ]

    _serve(export, check)
    serving = tmp_path / "serving.csv"
    weather.iloc[-40:].to_csv(serving, index=False)  # with its missing values, as the training file has them
    rows = _predict(export, serving, tmp_path / "predictions.csv", "--key", "day")
    assert [row["day"] for row in rows] == list(weather.day.iloc[-40:])
    assert {row["label"] for row in rows} <= set(classes)


@pytest.mark.slow
def test_image_folder_of_png_and_jpeg_at_mixed_sizes(image_folder, tmp_path):
    export = _train(tmp_path, "clothes", "--data", image_folder, "--model", "linear")
    classes = ["Bag", "Sneaker", "Trouser"]
    files = sorted(p for p in image_folder.rglob("*") if p.suffix in (".png", ".jpg"))[::5]
    assert {p.suffix for p in files} == {".png", ".jpg"}
    assert len({Image.open(p).size for p in files}) > 1

    def check(rest, grpc, url):
        keys = [str(p.relative_to(image_folder)) for p in files]
        _query(rest, grpc, {"image": [p.read_bytes() for p in files]}, keys, classes)
        rows = [{"image": {"b64": base64.b64encode(p.read_bytes()).decode()}, KEY: k} for p, k in zip(files, keys)]
        assert [p[KEY] for p in _rest_rows(url, "clothes", rows)] == keys

    _serve(export, check)
    rows = _predict(export, image_folder, tmp_path / "predictions.csv")
    expected = sorted(
        str(p.relative_to(image_folder))
        for p in image_folder.rglob("*")
        if p.suffix in (".png", ".jpg", ".gif", ".bmp")
    )
    assert sorted(row[KEY] for row in rows) == expected
    right = np.mean([row["label"] == row[KEY].split("/")[0] for row in rows])
    assert 0 <= right <= 1


@pytest.mark.slow
def test_audio_folder_of_clips_of_any_length_one_at_22k(audio_folder, tmp_path):
    export = _train(
        tmp_path,
        "spoken",
        "--data",
        audio_folder,
        "--sample-rate",
        "16000",
        "--group",
        r"^(.+)_\w+\.wav$",
        "--model",
        "linear",
    )
    classes = ["one", "two", "zero"]
    files = sorted(audio_folder.rglob("*.wav"))
    picked = [files[0], files[-1], audio_folder / "two" / "en-us-m1_at22k.wav"]

    def check(rest, grpc, url):
        keys = [str(p.relative_to(audio_folder)) for p in picked]
        _query(rest, grpc, {"audio": [p.read_bytes() for p in picked]}, keys, classes)  # WAV bytes, any length

    _serve(export, check)
    rows = _predict(export, audio_folder, tmp_path / "predictions.csv")
    assert sorted(row[KEY] for row in rows) == sorted(str(p.relative_to(audio_folder)) for p in files)
    assert {row["label"] for row in rows} <= set(classes)

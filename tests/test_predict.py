"""`recipes predict`: batch prediction of real exports over CSV and JSON Lines, resumed after a real kill."""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import recipes
import serving
from models import audio, tabular, text, vision
from recipes.cli import main
from serving import predict_file, version_folder

RECIPES = os.path.join(os.path.dirname(sys.executable), "recipes")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A bag-of-words review classifier (a base path) and a weather regressor on raw dates (a version folder)."""
    root = tmp_path_factory.mktemp("exports")
    recipes.set_seed(0)
    reviews = recipes.datasets.load_rotten_tomatoes()
    x, y = reviews.text.to_numpy()[:500], reviews.label.to_numpy()[:500]
    model = text.bag_of_words_classifier(x, 2, class_names=["rotten", "fresh"], max_tokens=2000)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    serving.export_model(model, root / "text")
    frame = recipes.datasets.load_seattle_weather().iloc[:400]
    model = tabular.regressor(frame, "temp_max", date_columns=["date"])
    x, y = tabular.to_xy(model, frame, "temp_max")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    return {"text": str(root / "text"), "weather": serving.export_model(model, root / "weather")}


@pytest.fixture(scope="module")
def media_exports(tmp_path_factory):
    """Image and waveform classifiers, seeded and untrained: their raw inputs are encoded bytes and float vectors."""
    root = tmp_path_factory.mktemp("media")
    recipes.set_seed(0)
    image_model = vision.linear_classifier((28, 28), 10, class_names=recipes.datasets.FASHION_MNIST_CLASSES)
    audio_model = audio.mfcc_linear_classifier(10, class_names=recipes.datasets.DIGIT_WORDS)
    return {
        "vision": serving.export_model(image_model, root / "vision"),
        "audio": serving.export_model(audio_model, root / "audio"),
    }


def _reviews(rows):
    """Real reviews keyed by id, with keys and texts that need CSV quoting (commas, quotes, newlines)."""
    reviews = recipes.datasets.load_rotten_tomatoes()
    frame = pd.DataFrame(
        {
            "key": [f"review-{i:05d}" for i in range(rows)],
            "text": reviews.text.to_numpy()[:rows],
            "movie_name": reviews.movie_name.to_numpy()[:rows],  # not an input: ignored
        }
    )
    frame.loc[3, "key"] = 'comma, "quotes"'
    frame.loc[5, ["key", "text"]] = ["two\nlines", 'A "quoted"\nmulti-line review, with commas.']
    frame.loc[7, "key"] = " clé ü "
    return frame


def _weather():
    frame = recipes.datasets.load_seattle_weather().iloc[:300].reset_index(drop=True)
    frame.insert(0, "day", [f"day-{i}" for i in range(len(frame))])
    return frame


def _write_jsonl(path, records):
    with open(path, "w") as f:
        f.writelines(json.dumps(record) + "\n" for record in records)


def _read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def _signature(path, **inputs):
    """What the export's `serving_default` returns for these rows, in one call."""
    function = tf.saved_model.load(version_folder(path)).signatures["serving_default"]
    return {name: value.numpy() for name, value in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def test_csv_round_trip_equals_the_signature(exports, tmp_path, capsys):
    frame = _reviews(700)
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    summary = predict_file(exports["text"], tmp_path / "reviews.csv", tmp_path / "out.csv", batch_size=64)
    assert (summary.rows_written, summary.rows_skipped) == (700, 0)
    assert "700/700" in capsys.readouterr().err  # the progress bar counts rows, not lines (a text has a newline)
    assert summary.model_path == os.path.join(exports["text"], "1")  # the base path's highest version
    out = pd.read_csv(tmp_path / "out.csv", dtype={"key": str}, keep_default_na=False)
    assert list(out.columns) == ["key", "label", "probability_rotten", "probability_fresh"]
    assert out.key.tolist() == frame.key.tolist()  # unchanged, in input order, none lost or repeated
    expected = _signature(exports["text"], text=frame.text.to_numpy(object), key=frame.key.to_numpy(object))
    np.testing.assert_allclose(out[["probability_rotten", "probability_fresh"]], expected["probabilities"], atol=1e-6)
    assert out.label.tolist() == [label.decode() for label in expected["label"]]


def test_jsonl_round_trip_with_raw_dates_and_integer_keys(exports, tmp_path):
    frame = _weather()
    records = [{"id": 1000 + i, **row} for i, row in enumerate(frame.drop(columns="day").to_dict("records"))]
    _write_jsonl(tmp_path / "weather.jsonl", records)
    summary = predict_file(
        exports["weather"], tmp_path / "weather.jsonl", tmp_path / "out.jsonl", key="id", batch_size=64, verbose=0
    )
    assert summary.rows_written == len(frame)
    out = _read_jsonl(tmp_path / "out.jsonl")
    assert [list(row) for row in out[:1]] == [["id", "prediction"]]
    assert [row["id"] for row in out] == [1000 + i for i in range(len(frame))]  # integers stay integers
    inputs = {c: frame[c].to_numpy("float32") for c in ("precipitation", "temp_min", "wind")}
    expected = _signature(
        exports["weather"],
        **inputs,
        date=frame.date.to_numpy(object),
        weather=frame.weather.to_numpy(object),
        key=np.array([str(r["id"]) for r in records], object),
    )
    np.testing.assert_allclose([row["prediction"] for row in out], expected["prediction"], atol=1e-6)


def test_formats_can_differ_and_without_key_carries_the_key(exports, tmp_path):
    frame = _weather()
    frame.to_csv(tmp_path / "weather.csv", index=False)
    predict_file(exports["weather"], tmp_path / "weather.csv", tmp_path / "a.jsonl", key="day", verbose=0)
    predict_file(
        exports["weather"],
        tmp_path / "weather.csv",
        tmp_path / "b.jsonl",
        key="day",
        signature="without_key",
        verbose=0,
    )
    assert _read_jsonl(tmp_path / "a.jsonl") == _read_jsonl(tmp_path / "b.jsonl")
    frame = _reviews(50)
    _write_jsonl(tmp_path / "reviews.jsonl", frame[["key", "text"]].to_dict("records"))
    predict_file(exports["text"], tmp_path / "reviews.jsonl", tmp_path / "reviews.csv", verbose=0)
    predict_file(exports["text"], tmp_path / "reviews.jsonl", tmp_path / "reviews.jsonl.out.jsonl", verbose=0)
    csv_out = pd.read_csv(tmp_path / "reviews.csv", dtype={"key": str}, keep_default_na=False)
    jsonl_out = _read_jsonl(tmp_path / "reviews.jsonl.out.jsonl")
    assert csv_out.key.tolist() == [row["key"] for row in jsonl_out] == frame.key.tolist()
    np.testing.assert_allclose(csv_out.iloc[:, 2:].to_numpy(), [row["probabilities"] for row in jsonl_out], atol=1e-7)


@pytest.mark.slow
def test_images_as_b64_and_waveforms_as_lists(media_exports, tmp_path):
    images, _ = recipes.datasets.load_fashion_mnist("test")
    pngs = [tf.io.encode_png(image[..., None]).numpy() for image in images[:12]]
    keys = [f"image-{i}" for i in range(12)]
    records = [{"key": k, "image": {"b64": base64.b64encode(png).decode()}} for k, png in zip(keys, pngs)]
    _write_jsonl(tmp_path / "images.jsonl", records)
    predict_file(media_exports["vision"], tmp_path / "images.jsonl", tmp_path / "out.jsonl", batch_size=5, verbose=0)
    out = _read_jsonl(tmp_path / "out.jsonl")
    expected = _signature(media_exports["vision"], image=np.array(pngs, object), key=np.array(keys, object))
    assert [row["key"] for row in out] == keys
    np.testing.assert_allclose([row["probabilities"] for row in out], expected["probabilities"], atol=1e-6)
    assert [row["label"] for row in out] == [label.decode() for label in expected["label"]]

    waveforms, _, _ = recipes.datasets.load_spoken_digits(num_per_digit=1)
    keys = [f"clip-{i}" for i in range(len(waveforms))]
    _write_jsonl(tmp_path / "clips.jsonl", [{"key": k, "waveform": w.tolist()} for k, w in zip(keys, waveforms)])
    pd.DataFrame({"key": keys, "waveform": [json.dumps(w.tolist()) for w in waveforms]}).to_csv(
        tmp_path / "clips.csv", index=False
    )
    for source in ("clips.jsonl", "clips.csv"):
        predict_file(media_exports["audio"], tmp_path / source, tmp_path / f"{source}.jsonl", batch_size=4, verbose=0)
    out = _read_jsonl(tmp_path / "clips.jsonl.jsonl")
    assert out == _read_jsonl(tmp_path / "clips.csv.jsonl")
    expected = _signature(media_exports["audio"], waveform=waveforms, key=np.array(keys, object))
    np.testing.assert_allclose([row["probabilities"] for row in out], expected["probabilities"], atol=1e-6)
    records = [{"key": k, "waveform": w.tolist()} for k, w in zip(keys, waveforms)]
    records[5]["waveform"] = records[5]["waveform"][:8000]  # an 8 kHz clip
    _write_jsonl(tmp_path / "short.jsonl", records)
    with pytest.raises(ValueError, match=r"the shape \[16000\] but row 6 \(key 'clip-5'\) has \[8000\]"):
        predict_file(media_exports["audio"], tmp_path / "short.jsonl", tmp_path / "short.out.jsonl", verbose=0)


@pytest.mark.slow
def test_killed_run_resumes_without_duplicates_or_losses(exports, tmp_path, capsys):
    frame = _reviews(1200)
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    predict_file(exports["text"], tmp_path / "reviews.csv", tmp_path / "clean.csv", batch_size=4, verbose=0)
    output = tmp_path / "out.csv"
    command = [
        RECIPES,
        "predict",
        "--model-path",
        exports["text"],
        str(tmp_path / "reviews.csv"),
        "--output",
        str(output),
        "--batch-size",
        "4",
        "--quiet",
    ]
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=ENV)
    deadline = time.monotonic() + 120
    while not (output.exists() and output.read_bytes().count(b"\n") > 100):  # 25 batches of 4 rows written
        assert process.poll() is None, f"it ended before it could be killed:\n{(tmp_path / 'stderr.txt').read_text()}"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed = output.read_bytes()
    assert 100 < killed.count(b"\n") < len(frame)  # interrupted half-way

    assert main(command[1:]) == 0  # the same command again (in this process, to save TensorFlow's start-up)
    written, done = map(int, re.search(r"wrote (\d+) rows to .* after (\d+) rows", capsys.readouterr().out).groups())
    assert 100 <= done < len(frame) and written + done == len(frame)
    assert output.read_bytes() == (tmp_path / "clean.csv").read_bytes()  # same batches: byte for byte


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_trailing_partial_line_is_cut_and_the_rest_is_predicted(exports, tmp_path, fmt):
    frame = _reviews(100)
    if fmt == "csv":
        frame.to_csv(tmp_path / "in.csv", index=False)
    else:
        _write_jsonl(tmp_path / "in.jsonl", frame[["key", "text"]].to_dict("records"))
    source, output = tmp_path / f"in.{fmt}", tmp_path / f"out.{fmt}"
    predict_file(exports["text"], source, tmp_path / f"clean.{fmt}", batch_size=16, verbose=0)
    clean = (tmp_path / f"clean.{fmt}").read_bytes()
    lines = clean.split(b"\n")
    header = len(lines[0]) + 1 if fmt == "csv" else 0
    multiline_key = b"two\nlines" if fmt == "csv" else b"two\\nlines"  # a newline in CSV quotes ends no row
    row_41 = clean.rindex(b"\n", 0, clean.index(b"review-00040")) + 1
    cuts = {
        "in the header": (5, 0),
        "after the header": (header, 0),
        "in row 6's multi-line key": (clean.index(multiline_key) + 4, 5),
        "in row 40": (clean.index(b"review-00039") + 20, 39),
        "after row 40": (row_41, 40),
    }
    if fmt == "jsonl":  # no header: the first two cuts are an empty output and a partial first row
        del cuts["in the header"], cuts["after the header"]
    for where, (cut, complete_rows) in cuts.items():
        output.write_bytes(clean[:cut])
        summary = predict_file(exports["text"], source, output, batch_size=16, verbose=0)
        assert (summary.rows_skipped, summary.rows_written) == (complete_rows, 100 - complete_rows), where
        assert output.read_bytes() == clean, where
    summary = predict_file(exports["text"], source, output, batch_size=16, verbose=0)
    assert (summary.rows_skipped, summary.rows_written) == (100, 0)  # already complete: nothing to do
    assert output.read_bytes() == clean


def test_a_bad_row_is_named_and_the_batches_before_it_stay(exports, tmp_path):
    frame = _weather()
    frame.to_csv(tmp_path / "good.csv", index=False)
    predict_file(exports["weather"], tmp_path / "good.csv", tmp_path / "clean.csv", key="day", batch_size=10, verbose=0)
    bad = frame.copy()
    bad.loc[22, "date"] = "31/10/2019"  # day/month: the graph rejects it
    bad.to_csv(tmp_path / "bad.csv", index=False)
    output = tmp_path / "out.csv"
    rejected = r"row 23 \(key 'day-22'\) was rejected by the model: .*could not parse.*31/10/2019"
    with pytest.raises(ValueError, match=rejected):
        predict_file(exports["weather"], tmp_path / "bad.csv", output, key="day", batch_size=10, verbose=0)
    assert output.read_bytes() == (tmp_path / "clean.csv").read_bytes()[: len(output.read_bytes())]
    assert pd.read_csv(output).day.tolist() == [f"day-{i}" for i in range(20)]  # two whole batches
    bad.loc[22, "date"] = frame.date[22]
    bad["temp_min"] = bad["temp_min"].astype(object)
    bad.loc[40, "temp_min"] = "warm"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    uncastable = r"row 41 \(key 'day-40'\): column 'temp_min' must be a float32 number. Received: 'warm'"
    with pytest.raises(ValueError, match=uncastable):
        predict_file(exports["weather"], tmp_path / "bad.csv", output, key="day", batch_size=10, verbose=0)
    summary = predict_file(exports["weather"], tmp_path / "good.csv", output, key="day", batch_size=10, verbose=0)
    assert summary.rows_skipped == 40
    assert output.read_bytes() == (tmp_path / "clean.csv").read_bytes()


def test_errors_say_what_was_expected_and_leave_the_output_alone(exports, tmp_path):
    frame = _reviews(40)
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    model = exports["text"]
    frame.rename(columns={"text": "review"}).to_csv(tmp_path / "renamed.csv", index=False)
    missing = r"lacks the columns \['text'\].*found the columns \['key', 'review', 'movie_name'\]"
    with pytest.raises(ValueError, match=missing):
        predict_file(model, tmp_path / "renamed.csv", tmp_path / "x.csv", verbose=0)
    with pytest.raises(ValueError, match=r"lacks the columns \['id'\]"):
        predict_file(model, tmp_path / "reviews.csv", tmp_path / "x.csv", key="id", verbose=0)
    _write_jsonl(tmp_path / "rows.jsonl", [{"key": "a", "text": "Fine."}, {"key": "b", "review": "Dull."}])
    missing = r"row 2 \(line 2, key 'b'\).*lacks the fields \['text'\].*found the fields \['key', 'review'\]"
    with pytest.raises(ValueError, match=missing):
        predict_file(model, tmp_path / "rows.jsonl", tmp_path / "x.jsonl", verbose=0)
    with pytest.raises(ValueError, match=r"input file must end in \.csv.*Received: '.*reviews\.txt'"):
        predict_file(model, tmp_path / "reviews.txt", tmp_path / "x.csv", verbose=0)
    with pytest.raises(ValueError, match=r"output file must end in \.csv.*\.parquet"):
        predict_file(model, tmp_path / "reviews.csv", tmp_path / "x.parquet", verbose=0)
    with pytest.raises(ValueError, match="no signature 'classify'; its signatures are"):
        predict_file(model, tmp_path / "reviews.csv", tmp_path / "x.csv", signature="classify", verbose=0)
    with pytest.raises(ValueError, match=r"must hold a SavedModel \(saved_model.pb\)"):
        predict_file(tmp_path, tmp_path / "reviews.csv", tmp_path / "x.csv", verbose=0)

    output = tmp_path / "out.csv"
    predict_file(model, tmp_path / "reviews.csv", output, verbose=0)
    clean = output.read_bytes()
    output.write_bytes(clean[:-10])  # an interrupted run's output
    with pytest.raises(ValueError, match="exists and is not empty; continue it"):
        predict_file(model, tmp_path / "reviews.csv", output, resume=False, verbose=0)
    other = frame.assign(key=[f"other-{i}" for i in range(40)])
    other.to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(
        ValueError,
        match="does not continue this input: its row 1 has the key 'review-00000' but the "
        "input's row 1 has the key 'other-0'",
    ):
        predict_file(model, tmp_path / "other.csv", output, verbose=0)
    frame.iloc[:10].to_csv(tmp_path / "shorter.csv", index=False)
    with pytest.raises(ValueError, match="has 39 rows but the input has only 10"):
        predict_file(model, tmp_path / "shorter.csv", output, verbose=0)
    frame.assign(day=frame.key).to_csv(tmp_path / "as_weather.csv", index=False)
    other_model = r"has the columns \['key', 'label', .*this model and key write \['day', 'prediction'\]"
    with pytest.raises(ValueError, match=other_model):
        predict_file(exports["weather"], tmp_path / "as_weather.csv", output, key="day", verbose=0)
    assert output.read_bytes() == clean[:-10]  # none of the refused runs touched it
    summary = predict_file(model, tmp_path / "other.csv", output, overwrite=True, verbose=0)
    assert (summary.rows_written, summary.rows_skipped) == (40, 0)
    assert pd.read_csv(output).key.tolist() == other.key.tolist()


def test_cli_prints_a_summary_and_reports_errors(exports, tmp_path, capsys):
    _reviews(30).to_csv(tmp_path / "reviews.csv", index=False)
    arguments = ["predict", "--model-path", exports["text"], str(tmp_path / "reviews.csv"), "--quiet"]
    assert main([*arguments, "--output", str(tmp_path / "out.jsonl")]) == 0
    assert re.fullmatch(r"wrote 30 rows to \S+out\.jsonl \(model \S+/text/1\)\n", capsys.readouterr().out)
    assert main([*arguments, "--output", str(tmp_path / "out.jsonl"), "--no-resume"]) == 2
    assert "recipes predict: error: the output file" in capsys.readouterr().err
    assert main([*arguments, "--output", str(tmp_path / "out.jsonl"), "--overwrite", "--batch-size", "7"]) == 0
    assert len(_read_jsonl(tmp_path / "out.jsonl")) == 30
    capsys.readouterr()
    assert main([*arguments[:-1], "--output", str(tmp_path / "again.csv"), "--verbose", "2"]) == 0
    assert re.fullmatch(r"predict: 30 rows in \d+\.\d s\n", capsys.readouterr().err)
    with pytest.raises(SystemExit):
        main([*arguments, "--output", str(tmp_path / "again.csv"), "--verbose", "3"])
    assert "argument --verbose: must be auto, 0, 1 or 2. Received: '3'" in capsys.readouterr().err

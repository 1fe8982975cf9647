"""recipes.tasks on real files written from the shipped data, in shapes unlike the shipped ones.

A CSV of Rotten Tomatoes reviews with other column names and string labels, the Seattle weather as a CSV with
ISO dates and missing values (and as JSON Lines and Parquet), a folder of Fashion-MNIST items as PNG, JPEG,
GIF and BMP of mixed sizes and colour modes, a folder of espeak-ng clips of 0.6-1.4 s (one at 22.05 kHz), a
folder of .txt reviews. Each is read into a Task, split repeatably, and trained on briefly with recipes.fit;
every kind of bad input is a ValueError before training.
"""

import importlib.util
import wave

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import reviews_frame, weather_frame, write_wav
from PIL import Image

import recipes
from recipes.tasks import Task, shipped

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None


# -- helpers ------------------------------------------------------------------------------------------------


def _values(dataset, field=None):
    """The examples of a dataset as a sorted list of hashable values (one input field of a table)."""
    out = []
    for x, _ in dataset:
        value = x[field] if field is not None else x
        out.append(value.numpy().tobytes() if value.dtype != tf.string else value.numpy())
    return sorted(out)


def _train_briefly(task, tmp_path, model=None, **options):
    model = task.build_model(model, **options)
    result = recipes.fit(
        model,
        task.train_data,
        validation_data=task.validation_data,
        batch_size=16,
        total_examples=64,
        num_checkpoints=2,
        directory=tmp_path / "run",
        verbose=0,
    )
    assert len(result.history["loss"]) == 2 and np.all(np.isfinite(result.history["val_loss"]))
    score = task.score(model, batch_size=64)
    assert np.isfinite(score)
    return model, score


# -- tables -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_reviews_csv_is_a_text_task_split_by_film_and_trains(reviews_csv, tmp_path):
    task = Task.from_path(reviews_csv, target="verdict", group="film", features=["review"])
    assert (task.modality, task.problem, task.name) == ("text", "classification", "reviews")
    assert task.class_names == ("negative", "positive")
    assert task.column_types == {"review": "text"}
    assert sum(task.num_examples.values()) == 600
    data = reviews_frame()
    film_of = dict(zip(data.review, data.film))
    films = {
        split: {film_of[t.decode()] for t in _values(task.dataset(split))} for split in ("train", "validation", "test")
    }
    assert not films["train"] & films["test"] and not films["train"] & films["validation"]
    _, accuracy = _train_briefly(task, tmp_path)
    assert 0 <= accuracy <= 1 and 0 < task.baseline() < 1


def test_review_columns_inferred_without_features(reviews_csv):
    task = Task.from_path(reviews_csv, target="verdict", key="review_id")
    # Two features left (film, review): a table, the review free text, the film a category.
    assert task.modality == "table"
    assert task.column_types == {"film": "category", "review": "text"}
    assert "key 'review_id'" in task.split


@pytest.mark.slow
def test_split_is_repeatable_and_old_rows_keep_their_side_when_rows_are_appended(reviews_csv, tmp_path):
    first = Task.from_path(reviews_csv, target="verdict", group="film", features=["review"])
    again = Task.from_path(reviews_csv, target="verdict", group="film", features=["review"])
    before = {split: _values(first.dataset(split)) for split in ("train", "validation", "test")}
    assert before == {split: _values(again.dataset(split)) for split in ("train", "validation", "test")}
    grown = tmp_path / "grown.csv"
    more = reviews_frame(900)
    more.iloc[list(range(600)) + list(range(600, 900))].to_csv(grown, index=False)
    after = Task.from_path(grown, target="verdict", group="film", features=["review"])
    for split in ("train", "validation", "test"):
        assert set(before[split]) <= set(_values(after.dataset(split)))
    # By row number (no key): appended rows get new numbers, old rows keep theirs.
    plain = Task.from_path(reviews_csv, target="verdict", features=["review"])
    plain_after = Task.from_path(grown, target="verdict", features=["review"])
    for split in ("train", "validation", "test"):
        assert set(_values(plain.dataset(split))) <= set(_values(plain_after.dataset(split)))
    other_seed = Task.from_path(reviews_csv, target="verdict", features=["review"], seed=1)
    assert _values(other_seed.dataset("test")) != _values(plain.dataset("test"))


@pytest.mark.slow
def test_weather_csv_with_iso_dates_and_missing_values(weather_csv, tmp_path):
    task = Task.from_path(weather_csv, target="sky", date="day", split_dates=["2014-07-01", "2015-01-01"])
    assert task.modality == "table" and task.problem == "classification"
    assert task.column_types == {
        "day": "date (%Y-%m-%d)",
        "rain_mm": "number",
        "high_c": "number",
        "low_c": "number",
        "wind": "number",
    }
    assert task.num_examples == {"train": 912, "validation": 184, "test": 365}  # as the shipped split by date
    weather = weather_frame()
    means = task.fill_values
    assert means["rain_mm"] == pytest.approx(weather.rain_mm.iloc[:912].mean(), rel=1e-6)
    x, y = next(iter(task.train_data.skip(3)))  # row 3 has no rain_mm: the model fills it with the training mean
    assert x["day"].numpy() == b"2012-01-04" and np.isnan(x["rain_mm"].numpy())
    model = task.build_model()
    assert model.get_layer("fill_rain_mm").value == pytest.approx(means["rain_mm"])
    assert task.class_names[int(y)] == weather.sky[3]
    assert task.baseline() == pytest.approx(np.mean(weather.sky.iloc[-365:] == "sun"))
    _train_briefly(task, tmp_path)


@pytest.mark.slow
def test_weather_regression_is_inferred_from_a_numeric_target(weather_csv, tmp_path):
    task = Task.from_path(weather_csv, target="high_c", date="day", split_dates=["2014-07-01", "2015-01-01"])
    assert task.problem == "regression" and task.models == ("regressor", "linear")
    assert task.column_types["sky"] == "category" and task.metric == "mean_absolute_error"
    high = weather_frame().high_c.to_numpy()
    assert task.baseline() == pytest.approx(np.mean(np.abs(high[-365:] - high[:912].mean())), rel=1e-5)
    model, mae = _train_briefly(task, tmp_path, "linear")
    assert model.output_shape == (None, 1)
    overridden = Task.from_path(weather_csv, target="high_c", column_types={"wind": "category", "sky": "text"})
    assert overridden.column_types["wind"] == "category" and overridden.column_types["sky"] == "text"
    stars = pd.DataFrame({"words": ["good", "bad", "fine", "great"] * 25, "stars": [4, 1, 3, 5] * 25})
    stars.to_csv(tmp_path / "stars.csv", index=False)
    assert Task.from_path(tmp_path / "stars.csv", target="stars").problem == "classification"  # few integers
    forced = Task.from_path(tmp_path / "stars.csv", target="stars", problem="regression")
    assert forced.problem == "regression" and forced.modality == "table"


def test_jsonl_and_parquet_read_as_the_csv(weather_csv, tmp_path):
    weather = weather_frame()
    jsonl = tmp_path / "weather.jsonl"
    weather.to_json(jsonl, orient="records", lines=True)
    split = dict(target="sky", date="day", split_dates=["2014-07-01", "2015-01-01"])
    from_csv = Task.from_path(weather_csv, **split)
    from_jsonl = Task.from_path(jsonl, **split)
    assert from_jsonl.column_types == from_csv.column_types and from_jsonl.num_examples == from_csv.num_examples
    first = [next(iter(t.test_data)) for t in (from_csv, from_jsonl)]
    for name in from_csv.features:
        assert first[0][0][name].numpy() == first[1][0][name].numpy()
    assert int(first[0][1]) == int(first[1][1])
    parquet = tmp_path / "weather.parquet"
    if not HAS_PYARROW:
        parquet.write_bytes(b"PAR1 not written: pyarrow is not installed")
        with pytest.raises(ValueError, match="Parquet file needs the `pyarrow` package"):
            Task.from_path(parquet, **split)
        return
    frame = weather.assign(day=pd.to_datetime(weather.day))  # Parquet stores dates as timestamps
    frame.to_parquet(parquet)
    from_parquet = Task.from_path(parquet, **split)
    assert from_parquet.column_types["day"] == "date (stored as dates)"
    assert from_parquet.num_examples == from_csv.num_examples
    x, _ = next(iter(from_parquet.test_data))
    assert x["day"].numpy() == b"2015-01-01"


@pytest.mark.parametrize(
    "written, column_type, seen",
    [
        (["31.10.2019 14:30", "01.11.2019 08:00"], "date (%d.%m.%Y %H:%M)", b"31.10.2019 14:30"),
        (["10/31/2019", "11/1/2019"], "date (%m/%d/%Y)", b"10/31/2019"),
        (["31/10/2019", "01/11/2019"], "date (%d/%m/%Y)", b"31/10/2019"),
        (["2019-10-31T14:30:00Z", "2019-11-01T08:00:00Z"], "date (%Y-%m-%dT%H:%M:%SZ)", b"2019-10-31T14:30:00Z"),
        (["Oct 31, 2019", "Nov 1, 2019"], "date (%b %d, %Y)", b"Oct 31, 2019"),
    ],
)
def test_date_formats_are_recognised(tmp_path, written, column_type, seen):
    rows = 40
    frame = pd.DataFrame(
        {"when": (written * rows)[:rows], "size": np.arange(rows) % 7, "kind": ["a", "b"] * (rows // 2)}
    )
    frame.to_csv(tmp_path / "dates.csv", index=False)
    task = Task.from_path(tmp_path / "dates.csv", target="kind", fractions=(0.5, 0.25, 0.25))
    assert task.column_types["when"] == column_type and task.column_types["size"] == "number"
    values = {x["when"].numpy() for x, _ in task.dataset("train")}
    assert seen in values  # the dates as written: the model's DateFeatures parses them in the column's format
    x, _ = next(iter(task.train_data.batch(64)))
    assert task.build_model().predict(x, verbose=0).shape == (len(x["when"]), 2)  # the model parses every one
    date_format = column_type[len("date (") : -1]
    parsed = recipes.layers.DateFeatures(date_format)(tf.constant([seen])).numpy()[0]
    assert parsed[:7].argmax() == 3 and parsed[7:19].argmax() == 9  # Thursday, October


# -- folders ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_image_folder_of_mixed_formats_sizes_and_colour_modes(image_folder, tmp_path):
    task = Task.from_path(image_folder, fractions=(0.6, 0.2, 0.2))
    assert task.modality == "image" and task.class_names == ("Bag", "Sneaker", "Trouser")
    assert sum(task.num_examples.values()) == 42  # the .md notes are not images
    assert task.color_mode == "rgb" and len(task.image_size) == 2
    for x, y in task.train_data.take(3):
        assert x.shape == (*task.image_size, 3) and x.dtype == tf.uint8
    _train_briefly(task, tmp_path, "cnn")
    grey = Task.from_path(image_folder, fractions=(0.6, 0.2, 0.2), color_mode="grayscale", image_size=28)
    x, _ = next(iter(grey.test_data))
    assert x.shape == (28, 28, 1)
    assert grey.build_model("linear").input_shape == (None, 28, 28, 1)


@pytest.mark.slow
def test_audio_folder_of_clips_of_any_length_resampled_to_one_rate(audio_folder, tmp_path):
    task = Task.from_path(audio_folder, sample_rate=16000, group=r"^(.+)_\w+\.wav$")
    assert task.modality == "audio" and task.class_names == ("one", "two", "zero")
    assert task.num_samples == 22400  # the longest clip, 1.4 s at 16 kHz
    assert "1 clip resampled from other rates" in task.inputs["audio"] and task.column_types == {}
    lengths = {x.shape[0] for x, _ in task.dataset("train")}
    assert lengths == {22400}
    with wave.open(str(audio_folder / "two" / "en-us-m1_at22k.wav")) as clip:
        assert clip.getframerate() == 22050
    _train_briefly(task, tmp_path, "cnn")


def test_resampling_keeps_a_tone_and_removes_what_the_new_rate_cannot_hold():
    from recipes.tasks.waveforms import resample

    seconds = np.arange(22050) / 22050
    tone = np.sin(2 * np.pi * 440 * seconds)
    above = 0.3 * np.sin(2 * np.pi * 9500 * seconds)  # above 8 kHz: must not alias into the 16 kHz clip
    resampled = resample((tone + above).astype("float32"), 22050, 16000).numpy()
    assert resampled.shape == (16000,)
    expected = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert np.max(np.abs(resampled[200:-200] - expected[200:-200])) < 5e-3


def test_text_folder(text_folder, tmp_path):
    task = Task.from_path(text_folder)
    assert task.modality == "text" and task.class_names == ("negative", "positive")
    x, _ = next(iter(task.train_data))
    assert x.dtype == tf.string and len(x.numpy()) > 10
    _train_briefly(task, tmp_path)


# -- the shipped data sets ----------------------------------------------------------------------------------


def test_shipped_tasks_split_as_before():
    text = shipped("text")
    reviews = recipes.datasets.load_rotten_tomatoes()
    train, val, test = recipes.repeatable_split(reviews.movie_name, (0.8, 0.1, 0.1))
    assert text.num_examples == {"train": len(train), "validation": len(val), "test": len(test)}
    assert _values(text.test_data) == sorted(t.encode() for t in reviews.text.to_numpy()[test])
    assert text.modality == "text" and text.class_names == recipes.datasets.ROTTEN_TOMATOES_CLASSES
    tabular = shipped("tabular")
    weather = recipes.datasets.load_seattle_weather()
    parts = recipes.split_by_date(weather.date, ["2014/07/01", "2015/01/01"])
    assert list(tabular.num_examples.values()) == [len(p) for p in parts]
    assert shipped("tabular", target="temp_max").problem == "regression"
    with pytest.raises(ValueError, match=r"`name` must be one of \('text', 'audio', 'vision', 'tabular'\)"):
        shipped("images")


def test_shipped_full_data_sets_for_the_benchmarks():
    full = shipped("text", full=True)
    reviews = recipes.datasets.load_rotten_tomatoes(full=True)
    train, val, test = recipes.repeatable_split(reviews.movie_name, (0.8, 0.1, 0.1))
    assert full.num_examples == {"train": len(train), "validation": len(val), "test": len(test)}
    assert len(reviews) == 12_808
    vision = shipped("vision", full=True)
    assert vision.num_examples["train"] + vision.num_examples["validation"] == 60_000
    assert vision.num_examples["test"] == 10_000
    with pytest.raises(ValueError, match=r"`full` applies to 'text' and 'vision'.*Received: name='audio'"):
        shipped("audio", full=True)


# -- bad input: a clear ValueError before any training --------------------------------------------------------


def test_missing_column_names_the_columns_there_are(reviews_csv):
    with pytest.raises(
        ValueError,
        match=r"`target` names a column 'label' that .*reviews.csv does not have; its "
        r"columns are \['review_id', 'film', 'review', 'verdict'\]",
    ):
        Task.from_path(reviews_csv, target="label")
    with pytest.raises(ValueError, match=r"`group` names a column 'movie'.*its columns are"):
        Task.from_path(reviews_csv, target="verdict", group="movie")
    with pytest.raises(ValueError, match=r"`target` must name the column to predict; .* has the columns"):
        Task.from_path(reviews_csv)


def test_target_with_one_class_and_class_with_one_example(tmp_path):
    frame = pd.DataFrame({"x": np.arange(30.0), "y": ["a"] * 30})
    frame.to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(ValueError, match=r"at least two classes; the target 'y' of .*one.csv has one class \('a', 30"):
        Task.from_path(tmp_path / "one.csv", target="y")
    frame.loc[29, "y"] = "b"
    frame.to_csv(tmp_path / "rare.csv", index=False)
    with pytest.raises(ValueError, match=r"at least two examples .* has 'b' \(1\)"):
        Task.from_path(tmp_path / "rare.csv", target="y")


def test_empty_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"the folder .*empty is empty; expected one folder per class"):
        Task.from_path(empty)
    (empty / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"holds files but no class folders \(a.png\)"):
        Task.from_path(empty)
    classes = tmp_path / "classes"
    (classes / "cat").mkdir(parents=True)
    (classes / "dog").mkdir()
    with pytest.raises(ValueError, match=r"hold no images .* empty or hold files of other kinds"):
        Task.from_path(classes)
    for i in range(3):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(classes / "cat" / f"{i}.png")
    with pytest.raises(ValueError, match=r"at least two examples .* 'dog' \(0\)"):
        Task.from_path(classes)


def test_unreadable_image_is_named(tmp_path):
    folder = tmp_path / "images"
    for name in ("Bag", "Trouser"):
        (folder / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((10, 10), 40 * i, np.uint8)).save(folder / name / f"{i}.png")
    (folder / "Bag" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(ValueError, match=r"1 of 9 files in .* could not be read as an image .*Bag/broken.jpg: "):
        Task.from_path(folder)


def test_unreadable_wav_and_mixed_sample_rates_are_named(audio_folder, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"different sample rates: 16000 Hz \(30 clips, .*; 22050 Hz \(1 clip, e.g. "
        r"two/en-us-m1_at22k.wav\)\. Pass sample_rate=16000",
    ):
        Task.from_path(audio_folder)
    folder = tmp_path / "clips"
    for name in ("yes", "no"):
        (folder / name).mkdir(parents=True)
        for i in range(2):
            write_wav(folder / name / f"{i}.wav", np.zeros(800), 16000)
    import soundfile

    soundfile.write(folder / "no" / "deep.wav", np.zeros(800), 16000, subtype="PCM_24")
    (folder / "yes" / "junk.wav").write_bytes(b"RIFF\x00\x00\x00\x00not a wave")
    with pytest.raises(
        ValueError,
        match=r"2 of 6 files .* as a WAV clip .*no/deep.wav: Can only read 16-bit WAV "
        r"files, but received 24.*yes/junk.wav: ",
    ):
        Task.from_path(folder)


def test_text_that_is_not_utf8(tmp_path, text_folder):
    frame = reviews_frame(40)
    path = tmp_path / "latin1.csv"
    frame.to_csv(path, index=False)
    path.write_bytes(path.read_bytes() + "rt-x,film,d\u00e9j\u00e0 vu,positive\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.csv is not UTF-8 text: byte 0xe9 at byte \d+ \(line 42\)"):
        Task.from_path(path, target="verdict")
    folder = tmp_path / "texts"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        for i in range(2):
            (folder / name / f"{i}.txt").write_text("fine words here")
    (folder / "b" / "old.txt").write_bytes("na\u00efve".encode("latin-1"))
    with pytest.raises(ValueError, match=r"b/old.txt is not UTF-8 text: byte 0xef at byte 2 \(line 1\)"):
        Task.from_path(folder)


def test_date_that_does_not_parse_is_quoted_with_its_row(tmp_path):
    weather = weather_frame()
    weather.loc[1000, "day"] = "2014-02-30"
    weather.to_csv(tmp_path / "bad_day.csv", index=False)
    with pytest.raises(
        ValueError,
        match=r"date column 'day' has a value that is not a date in its format '%Y-%m-%d' .*"
        r"'2014-02-30' at row 1001",
    ):
        Task.from_path(tmp_path / "bad_day.csv", target="sky", date="day", split_dates=["2014-07-01", "2015-01-01"])
    weather = weather_frame()
    weather.loc[7, "day"] = np.nan
    weather.to_csv(tmp_path / "no_day.csv", index=False)
    with pytest.raises(ValueError, match=r"date column 'day' has no value at row 8"):
        Task.from_path(tmp_path / "no_day.csv", target="sky")


def test_values_beyond_the_sampled_rows_are_checked(tmp_path):
    frame = pd.DataFrame({"n": np.arange(50).astype(str), "y": ["a", "b"] * 25})
    frame.loc[45, "n"] = "forty-five"
    frame.to_csv(tmp_path / "late.csv", index=False)
    with pytest.raises(
        ValueError,
        match=r"column 'n' holds numbers .* row 46 holds 'forty-five'; pass "
        r"column_types=\{'n': 'category'\}",
    ):
        Task.from_path(tmp_path / "late.csv", target="y", sample_size=40)
    frame = pd.DataFrame({"on": [f"2020-01-{d:02d}" for d in range(1, 29)] * 2, "y": ["a", "b"] * 28})
    frame.loc[50, "on"] = "2020-01-32"
    frame.to_csv(tmp_path / "late_day.csv", index=False)
    with pytest.raises(
        ValueError,
        match=r"date column 'on' has a value that is not a date in its format '%Y-%m-%d' "
        r".*'2020-01-32' at row 51",
    ):
        Task.from_path(tmp_path / "late_day.csv", target="y", sample_size=40)


def test_argument_errors(weather_csv, image_folder, tmp_path):
    with pytest.raises(ValueError, match=r"`date` and `split_dates` go together"):
        Task.from_path(weather_csv, target="sky", date="day")
    with pytest.raises(ValueError, match=r"`fractions` must add up to 1"):
        Task.from_path(weather_csv, target="sky", fractions=(0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match=r"`key` and `group` both say how to split"):
        Task.from_path(weather_csv, target="sky", key="day", group="wind")
    with pytest.raises(ValueError, match=r"`target` names table columns, but .* is a folder"):
        Task.from_path(image_folder, target="label")
    with pytest.raises(ValueError, match=r"`model` must be one of \('classifier', 'linear'\)"):
        Task.from_path(weather_csv, target="sky").build_model("cnn")
    with pytest.raises(ValueError, match=r"`column_types\['wind'\]` must be one of"):
        Task.from_path(weather_csv, target="sky", column_types={"wind": "float"})
    with pytest.raises(ValueError, match=r"the test split is empty .* choose `split_dates` inside the dates"):
        Task.from_path(weather_csv, target="sky", date="day", split_dates=["2014-07-01", "2020-01-01"])
    (tmp_path / "notes.txt").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"`path` must be a table \(.csv"):
        Task.from_path(tmp_path / "notes.txt", target="a")


# -- the serving contract: an export of a task's model takes the data's own fields --------------------------------


def _export(model, tmp_path):
    import serving

    path = serving.export_model(model, tmp_path / "export")
    return tf.saved_model.load(path), path


def _keys(answer):
    return [k.decode() for k in answer["key"].numpy()]


def _defaults(path, signature="row"):
    """The inputs a signature has default values for, and those values (TF Serving feeds them to a request
    that leaves the input out)."""
    from tensorflow.python.saved_model.loader_impl import parse_saved_model

    (meta_graph,) = parse_saved_model(path).meta_graphs
    return {name: tf.make_ndarray(proto) for name, proto in meta_graph.signature_def[signature].defaults.items()}


def _served_table_rows(frame):
    """Rows of a table as pandas reads them (NaN where missing), numbers as the float32 the signature declares."""
    return {
        name: frame[name].to_numpy(dtype="float32")
        if pd.api.types.is_numeric_dtype(frame[name])
        else frame[name].to_numpy()
        for name in frame.columns
    }


@pytest.mark.slow
def test_table_export_takes_a_csv_row_as_written(tmp_path):
    weather = weather_frame()
    stamps = pd.to_datetime(weather.day)
    weather["day"] = stamps.dt.strftime("%d.%m.%Y") + " 12:00"  # day first, with a time
    weather.to_csv(tmp_path / "weather.csv", index=False)
    task = Task.from_path(tmp_path / "weather.csv", target="sky", date="day", split_dates=["01.07.2014", "01.01.2015"])
    assert task.column_types["day"] == "date (%d.%m.%Y %H:%M)" and task.serving_names == task.features
    x, _ = next(iter(task.train_data.skip(3)))  # the pipeline keeps the date as written and the missing number
    assert x["day"].numpy() == b"04.01.2012 12:00" and np.isnan(x["rain_mm"].numpy())
    model, _ = _train_briefly(task, tmp_path)
    loaded, path = _export(model, tmp_path)
    signature = loaded.signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {"day", "rain_mm", "high_c", "low_c", "wind", "key"}
    assert _defaults(path, "serving_default") == {} and sorted(loaded.signatures) == [
        "row",
        "serving_default",
        "without_key",
    ]
    # The `row` signature takes a row of the file as it stands: the target too, an input the model ignores,
    # declared as a row holds it, with a default of no rows.
    assert task.optional_inputs == {"sky": "string"}
    defaults = _defaults(path)
    assert list(defaults) == ["sky"] and defaults["sky"].shape == (0,) and defaults["sky"].dtype == object
    row = loaded.signatures["row"]
    assert set(row.structured_input_signature[1]) == {"day", "rain_mm", "high_c", "low_c", "wind", "sky", "key"}
    whole = pd.read_csv(tmp_path / "weather.csv").iloc[:6]
    keys = tf.constant([f"row-{i}" for i in range(6)])
    by_row = row(**{k: tf.constant(v) for k, v in _served_table_rows(whole).items()}, key=keys)
    features = {k: tf.constant(v) for k, v in _served_table_rows(whole.drop(columns=["sky"])).items()}
    for sky in (["fog"] * 6, defaults["sky"]):  # another target, or none: the same answers
        again = row(**features, sky=tf.constant(sky), key=keys)
        np.testing.assert_array_equal(again["probabilities"].numpy(), by_row["probabilities"].numpy())
    np.testing.assert_array_equal(
        signature(**features, key=keys)["probabilities"].numpy(), by_row["probabilities"].numpy()
    )
    # Rows of the training file, read as a client reads it: no type conversion, no filling, the target dropped.
    rows = pd.read_csv(tmp_path / "weather.csv").iloc[:6].drop(columns=["sky"])
    assert rows.day[0] == "01.01.2012 12:00" and rows.rain_mm.isna().any()
    served = signature(
        **{k: tf.constant(v) for k, v in _served_table_rows(rows).items()},
        key=tf.constant([f"row-{i}" for i in range(6)]),
    )
    assert _keys(served) == [f"row-{i}" for i in range(6)]
    in_pipeline = {
        name: np.asarray(rows[name].to_numpy(dtype="float32" if task.column_types[name] == "number" else object))
        for name in task.features
    }
    np.testing.assert_allclose(served["probabilities"].numpy(), model.predict(in_pipeline, verbose=0), atol=1e-6)
    assert {label.decode() for label in served["label"].numpy()} <= set(task.class_names)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"could not parse.*2012-01-01"):
        signature(
            **{k: tf.constant(v) for k, v in _served_table_rows(rows.assign(day="2012-01-01")).items()},
            key=tf.constant(["a"] * 6),
        )


@pytest.mark.slow
def test_regression_and_free_text_columns_export(reviews_csv, weather_csv, tmp_path):
    task = Task.from_path(weather_csv, target="high_c", date="day", split_dates=["2014-07-01", "2015-01-01"])
    model, _ = _train_briefly(task, tmp_path, "linear")
    loaded, path = _export(model, tmp_path / "weather")
    rows = pd.read_csv(weather_csv).iloc[:4].drop(columns=["high_c"])
    served = loaded.signatures["serving_default"](
        **{k: tf.constant(v) for k, v in _served_table_rows(rows).items()}, key=tf.constant(list("abcd"))
    )
    assert _keys(served) == list("abcd") and served["prediction"].shape == (4,)
    assert task.optional_inputs == {"high_c": "float32"}  # a numeric target, as a row holds it
    assert {name: value.dtype.name for name, value in _defaults(path).items()} == {"high_c": "float32"}
    rows = pd.read_csv(weather_csv).iloc[:4]
    by_row = loaded.signatures["row"](
        **{k: tf.constant(v) for k, v in _served_table_rows(rows).items()}, key=tf.constant(list("abcd"))
    )
    np.testing.assert_array_equal(by_row["prediction"].numpy(), served["prediction"].numpy())
    # A table with a free-text column beside a category: the text is weighed word by word, not as one category.
    table = Task.from_path(reviews_csv, target="verdict", key="review_id")
    assert table.column_types == {"film": "category", "review": "text"}
    model, _ = _train_briefly(table, tmp_path / "table")
    assert any(layer.name == "tfidf_review" for layer in model.layers)
    rows = pd.read_csv(reviews_csv).iloc[:3]
    loaded, path = _export(model, tmp_path / "reviews")
    assert table.optional_inputs == {"review_id": "string", "verdict": "string"}  # --key is not a feature
    by_row = loaded.signatures["row"](
        **{k: tf.constant(v) for k, v in _served_table_rows(rows).items()}, key=tf.constant(list("xyz"))
    )
    assert _keys(by_row) == list("xyz") and by_row["probabilities"].shape == (3, 2)
    served = loaded.signatures["serving_default"](
        film=tf.constant(rows.film.to_numpy()), review=tf.constant(rows.review.to_numpy()), key=tf.constant(list("xyz"))
    )
    assert _keys(served) == list("xyz") and served["probabilities"].shape == (3, 2)


@pytest.mark.slow
def test_text_export_takes_the_column_by_its_name(reviews_csv, text_folder, tmp_path):
    task = Task.from_path(reviews_csv, target="verdict", group="film", features=["review"])
    assert task.serving_names == ("review",)
    model, _ = _train_briefly(task, tmp_path)
    loaded, path = _export(model, tmp_path)
    signature = loaded.signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {"review", "key"}
    assert set(loaded.signatures["row"].structured_input_signature[1]) == {
        "review",
        "key",
        "review_id",
        "film",
        "verdict",
    }
    texts = pd.read_csv(reviews_csv).review.to_numpy()[:3]
    served = signature(review=tf.constant(texts), key=tf.constant(["r1", "r2", "r3"]))
    assert _keys(served) == ["r1", "r2", "r3"]
    np.testing.assert_allclose(served["probabilities"].numpy(), model.predict(texts, verbose=0), atol=1e-6)
    assert Task.from_path(text_folder).serving_names == ("text",)


def test_image_export_takes_png_gif_bmp_and_rgba_bytes(image_folder, tmp_path):
    task = Task.from_path(image_folder, fractions=(0.6, 0.2, 0.2))
    model, _ = _train_briefly(task, tmp_path, "linear")
    loaded, _ = _export(model, tmp_path)
    signature = loaded.signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {"image", "key"}
    files = sorted(p for p in image_folder.rglob("*") if p.suffix in (".png", ".gif", ".bmp", ".jpg"))
    chosen = [next(p for p in files if p.suffix == suffix) for suffix in (".png", ".gif", ".bmp", ".jpg")]
    chosen.append(image_folder / "Bag" / "item0.png")  # RGBA
    assert Image.open(chosen[-1]).mode == "RGBA" and Image.open(chosen[1]).mode == "P"
    served = signature(image=tf.constant([p.read_bytes() for p in chosen]), key=tf.constant([p.name for p in chosen]))
    assert _keys(served) == [p.name for p in chosen]
    # The same pixels as the training pipeline decodes: the same answers.
    from recipes.layers.images import decode_image

    pixels = np.stack([decode_image(tf.io.read_file(str(p)), *task.image_size, 3).numpy() for p in chosen])
    np.testing.assert_allclose(served["probabilities"].numpy(), model.predict(pixels, verbose=0), atol=1e-6)


def _wav_bytes(waveform, rate):
    import io

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(waveform, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


@pytest.mark.slow
def test_audio_export_takes_wav_bytes_and_waveforms_of_any_length(audio_folder, tmp_path):
    task = Task.from_path(audio_folder, sample_rate=16000, group=r"^(.+)_\w+\.wav$")
    assert task.serving_names == ("audio",) and task.num_samples == 22400
    model, _ = _train_briefly(task, tmp_path, "linear")
    loaded, _ = _export(model, tmp_path)
    signature = loaded.signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {"audio", "key"}
    short = next(p for p in sorted(audio_folder.rglob("*.wav")) if wave.open(str(p)).getnframes() == 9600)  # 0.6 s
    long_clip = np.sin(np.arange(22400) / 7.0).astype("float32") * 0.3  # 1.4 s
    encoded = [
        short.read_bytes(),
        (audio_folder / "two" / "en-us-m1_at22k.wav").read_bytes(),
        _wav_bytes(long_clip, 16000),
    ]
    served = signature(audio=tf.constant(encoded), key=tf.constant(["a", "b", "c"]))
    assert _keys(served) == ["a", "b", "c"] and served["probabilities"].shape == (3, 3)
    # As trained: clips decoded, resampled and padded as the input pipeline does give the same answers.
    from recipes.tasks.waveforms import fit_length, resample

    decoded = []
    for data in encoded:
        audio, rate = tf.audio.decode_wav(data)
        waveform = tf.reduce_mean(audio, axis=1)
        if int(rate) != 16000:
            waveform = resample(waveform, rate, 16000)
        decoded.append(fit_length(waveform, 22400).numpy())
    np.testing.assert_allclose(served["probabilities"].numpy(), model.predict(np.stack(decoded), verbose=0), atol=1e-5)
    # Float waveforms of other lengths: the `waveform` signature, padded or cropped in the model.
    waveforms = loaded.signatures["waveform"]
    for length in (9600, 16000, 30000):
        answer = waveforms(
            waveform=tf.constant(
                long_clip[None, :length].repeat(2, 0)
                if length <= 22400
                else np.pad(long_clip, (0, length - 22400))[None].repeat(2, 0)
            ),
            key=tf.constant(["x", "y"]),
        )
        assert _keys(answer) == ["x", "y"]
    # The 30,000 samples cropped to the 22,400 trained on (a pure tone: compared with the floats, not the 16-bit WAV).
    np.testing.assert_allclose(
        answer["probabilities"].numpy()[:1], model.predict(long_clip[None], verbose=0), atol=1e-5
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="WAV|RIFF|wav"):
        signature(audio=tf.constant([b"RIFF not a wave"]), key=tf.constant(["bad"]))


@pytest.mark.slow
def test_spoken_digit_arrays_export_takes_waveforms_of_any_length_and_wav(tmp_path):
    waveforms, labels, speakers = recipes.datasets.load_spoken_digits(num_per_digit=4)
    task = Task.from_arrays(
        waveforms,
        labels,
        modality="audio",
        class_names=recipes.datasets.DIGIT_WORDS,
        group=speakers,
        sample_rate=16000,
        fractions=(0.5, 0.25, 0.25),
    )
    assert task.serving_names == ("waveform",)
    model = task.build_model("linear")
    loaded, path = _export(model, tmp_path)
    signature = loaded.signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {"waveform", "key"}
    clip = waveforms[0]
    for length in (9600, 22400):  # 0.6 s and 1.4 s
        cut = np.pad(clip, (0, max(0, length - 16000)))[:length]
        answer = signature(waveform=tf.constant(cut[None]), key=tf.constant(["k"]))
        assert _keys(answer) == ["k"]
        expected = model.predict(np.pad(cut, (0, max(0, 16000 - length)))[None, :16000], verbose=0)
        np.testing.assert_allclose(answer["probabilities"].numpy(), expected, atol=1e-5)
    at22k = recipes.datasets.load_spoken_digits(num_per_digit=1, sample_rate=22050, seed=7)[0][3]
    answer = loaded.signatures["audio"](
        audio=tf.constant([_wav_bytes(at22k, 22050), _wav_bytes(clip[:9600], 16000)]), key=tf.constant(["w1", "w2"])
    )
    assert _keys(answer) == ["w1", "w2"] and answer["probabilities"].shape == (2, 10)


@pytest.mark.slow
def test_export_served_takes_a_csv_row_as_json_with_its_target_or_without(weather_csv, tmp_path):
    import json
    import urllib.error
    import urllib.request

    import serving
    from serving.client import GrpcClient
    from serving.manager import ModelConfig
    from serving.server import ModelServer

    task = Task.from_path(weather_csv, target="sky", date="day", split_dates=["2014-07-01", "2015-01-01"])
    model, _ = _train_briefly(task, tmp_path, "linear")
    serving.export_model(model, tmp_path / "weather")
    server = ModelServer([ModelConfig("weather", str(tmp_path / "weather"))], grpc_port=0, rest_port=0, poll_seconds=0)
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/weather:predict"
    frame = pd.read_csv(weather_csv).iloc[:4]
    assert list(frame.columns) == ["day", "rain_mm", "high_c", "low_c", "wind", "sky"]
    keys = [f"day-{i}" for i in range(4)]

    def rest(frame, **request):
        instances = [{**row, "key": k} for row, k in zip(frame.to_dict(orient="records"), keys)]
        body = json.dumps({**request, "instances": instances}).encode()  # NaN for missing numbers, as json writes
        assert b"NaN" in body and b'"day": "2012-01-01"' in body
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=60) as response:
            return json.loads(response.read())["predictions"]

    def refused(request):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(urllib.request.Request(url, data=json.dumps(request).encode(), method="POST"))
        assert error.value.code == 400
        return json.loads(error.value.read())["error"]

    try:
        answers = {
            "row with its target": rest(frame, signature_name="row"),
            "row without it": rest(frame.drop(columns=["sky"])),
            "grpc, with its target": GrpcClient(
                f"127.0.0.1:{server.grpc_port}", model="weather", signature_name="row"
            ).predict(frame.to_dict(orient="list"), keys=keys),
            # gRPC fills an input the request leaves out from the signature's defaults (predict_util.cc)
            "grpc, without it": GrpcClient(
                f"127.0.0.1:{server.grpc_port}", model="weather", signature_name="row"
            ).predict(frame.drop(columns=["sky"]).to_dict(orient="list"), keys=keys),
        }
        # serving_default declares no target (REST needs every declared input: json_tensor.cc), so it refuses one,
        # and a column no signature declares, in TF Serving's words.
        row = {**frame.iloc[0].to_dict(), "key": "a"}
        assert "does not have named input: sky" in refused({"instances": [row]})
        assert "does not have named input: cloud" in refused(
            {"signature_name": "row", "instances": [{**row, "cloud": 1.0}]}
        )
    finally:
        server.stop()
    for name, predictions in answers.items():
        assert [p["key"] for p in predictions] == keys, name
        assert all(
            p["label"] in task.class_names and len(p["probabilities"]) == len(task.class_names) for p in predictions
        ), name
        assert [p["label"] for p in predictions] == [p["label"] for p in answers["row without it"]], name
        np.testing.assert_allclose(
            [p["probabilities"] for p in predictions],
            [p["probabilities"] for p in answers["row without it"]],
            atol=1e-6,
        )

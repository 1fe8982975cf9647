"""recipes.debug.shift_report on real data: planted shifts of every modality are caught, random splits are not."""

import json

import numpy as np
import pandas as pd
import pytest
from _recipes_command import recipes_command
from conftest import weather_frame

import recipes
from recipes.cli import main as recipes_main
from recipes.debug import shift_report

SPLITS = 20  # random splits per false-alarm test: at most one alarm (5%) allowed


@pytest.fixture(scope="module")
def weather():
    return recipes.datasets.load_seattle_weather()


@pytest.fixture(scope="module")
def reviews():
    return recipes.datasets.load_rotten_tomatoes()


@pytest.fixture(scope="module")
def digits():
    return recipes.datasets.load_digits()[0]


@pytest.fixture(scope="module")
def voices():
    espeak, _, _ = recipes.datasets.load_spoken_digits(num_per_digit=10)  # 100 clips, cached
    flite, _, _ = recipes.datasets.load_spoken_digits(num_per_digit=6, voices="flite")  # 60 clips
    return espeak, flite


def halves(n, seed, size=None):
    order = np.random.default_rng(seed).permutation(n)
    size = size or n // 2
    return order[:size], order[size : 2 * size]


def false_alarms(data, take, size=None):
    """Overall verdicts on `SPLITS` random splits of the same data: how many say "shift"."""
    reports = [shift_report(*(take(data, part) for part in halves(len(data), s, size)), seed=s) for s in range(SPLITS)]
    return sum(report.verdict == "fail" for report in reports), reports


def flagged(report):
    return set(report.shifted)


# -- tabular --------------------------------------------------------------------------------------------------


def test_tabular_random_halves_raise_no_false_alarm(weather):
    alarms, reports = false_alarms(weather, lambda frame, rows: frame.iloc[rows])
    assert alarms <= 1, [str(r) for r in reports if r.verdict == "fail"]
    assert all(0.3 < r.domain_auc < 0.7 for r in reports), [r.domain_auc for r in reports]
    assert str(reports[0]).startswith("PASS: no shift: no feature differs") and reports[0].advice == ()


def test_tabular_planted_shifts_are_caught_and_named(weather, tmp_path):
    train_rows, serving_rows = halves(len(weather), 0)
    train, serving = weather.iloc[train_rows], weather.iloc[serving_rows].copy()
    later = serving.copy()
    later["date"] = (pd.to_datetime(later.date) + pd.DateOffset(years=2)).dt.strftime("%Y/%m/%d")
    report = shift_report(train, later)
    assert report.verdict == "fail" and flagged(report) == {"date"}, report
    row = report.features.iloc[0]
    assert row.feature == "date" and row.test == "KS" and row.psi > 1 and "DateFeatures" in row.action
    assert "-> 2014" in row.change, row.change
    assert str(report).startswith("FAIL: 1 of 6 features shifted")

    units = serving.copy()
    units["temp_max"] = units.temp_max * 9 / 5 + 32  # Fahrenheit in serving, Celsius in training
    units["weather"] = units.weather.replace({"sun": "clear"})  # a renamed category
    units.loc[units.index[::3], "wind"] = np.nan  # a third of the wind readings lost
    report = shift_report(train, units)
    assert flagged(report) == {"temp_max", "weather", "wind: missing"}, report
    rows = report.features.set_index("feature")
    assert rows.loc["weather", "test"] == "chi-square" and "new: 'clear'" in rows.loc["weather", "change"]
    assert "StringLookup" in rows.loc["weather", "action"]
    assert rows.loc["wind: missing", "change"] == "missing 0.0% -> 33.4%"
    assert rows.loc["wind", "finding"] == "no shift"  # the readings left are as before
    assert report.domain_finding == "shift" and report.domain_auc > 0.9
    (temp_max,) = [item for item in report.advice if item.startswith("temp_max: mean")]
    assert "; do: check the pipeline for a unit" in temp_max
    assert report.advice[-1].startswith("domain classifier (leans on: ")

    markdown = report.to_markdown()
    assert markdown.startswith("**FAIL**: 3 of 7 features shifted") and "| temp_max | numeric | KS |" in markdown
    assert "No shift in: " in markdown and "wind" in markdown.split("No shift in: ")[1].splitlines()[0]
    assert "### Random examples" in markdown and markdown.count("| reference |") == 3
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdict"] == "fail" and data["ok"] is False and data["features"][0]["finding"] == "shift"
    assert len(data["examples"]) == 6 and data["modality"] == "table"
    png = report.plot(tmp_path / "shift.png")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_huge_samples_do_not_flag_trivial_shifts():
    images, _ = recipes.datasets.load_fashion_mnist("test")
    reference, current = images[:5000], images[5000:].astype(np.float32)
    report = shift_report(reference, np.minimum(current * 1.04, 255.0))  # 4% more gain: significant, trivial
    row = report.features.set_index("feature").loc["contrast"]
    assert row.p_holm < 1e-6 and row.psi < 0.1 and row.finding == "no shift", report.features
    assert report.domain_p_value < report.alpha and report.domain_auc < 0.6 and report.domain_finding == "no shift"
    assert report.verdict == "pass", report


# -- text -----------------------------------------------------------------------------------------------------


def test_text_random_halves_raise_no_false_alarm(reviews):
    texts = reviews.text.to_numpy()
    alarms, reports = false_alarms(texts, lambda data, rows: data[rows], size=600)
    assert alarms <= 1, [str(r) for r in reports if r.verdict == "fail"]


def test_text_planted_shifts_are_caught(reviews):
    texts = reviews.text.to_numpy()
    train, serving = halves(len(texts), 0)
    spam = np.array([t + " stream it free tonight at moviezone" for t in texts[serving]], dtype=object)
    report = shift_report(texts[train], spam)
    assert flagged(report) == {"length (tokens)", "out-of-vocabulary rate"}, report
    assert [token for token, _ in report.new_tokens[:2]] == ["moviezone", "tonight"] or "moviezone" in dict(
        report.new_tokens
    )
    assert report.domain_auc > 0.95 and "word 'moviezone'" in dict(report.domain_features)
    assert "re-adapt TextVectorization" in str(report) and ", longer" in str(report)

    # another slice of the corpus: rotten reviews against fresh ones, the same lengths and vocabulary
    fresh, rotten = texts[reviews.label == 1], texts[reviews.label == 0]
    report = shift_report(fresh, rotten)
    assert report.verdict == "fail" and report.domain_finding == "shift" and report.domain_auc > 0.7, report
    assert report.features.set_index("feature").loc["length (tokens)", "finding"] == "no shift"
    assert list(report.examples.side) == ["reference"] * 3 + ["current"] * 3
    assert set(report.examples.text) <= set(texts)


# -- images ---------------------------------------------------------------------------------------------------


def test_image_random_halves_raise_no_false_alarm(digits):
    alarms, reports = false_alarms(digits, lambda data, rows: data[rows])
    assert alarms <= 1, [str(r) for r in reports if r.verdict == "fail"]


def test_image_planted_shifts_are_caught(digits, tmp_path):
    train, serving = halves(len(digits), 0)
    night = (digits[serving] * 0.6).astype(np.uint8)  # darkened "night" images
    report = shift_report(digits[train], night)
    assert flagged(report) == {"brightness", "contrast"} and report.domain_auc > 0.95, report
    assert "darker" in report.features.change[report.features.feature == "brightness"].item()
    assert "RandomBrightness" in str(report)
    assert report.examples.example[0].shape == (8, 8)
    assert "example" not in json.loads(json.dumps(report.to_dict()))["examples"][0]
    assert report.plot(tmp_path / "night.png").endswith("night.png")

    scaled = digits[serving].astype(np.float32) / 255  # a serving pipeline that scales, a training one that did not
    report = shift_report(digits[train], scaled)
    assert "brightness" in flagged(report) and "pixel scaling" in str(report)

    colour = np.stack([digits] * 3, axis=-1)
    bgr = colour[serving].copy()
    bgr[..., 2] //= 2  # a colour cast in one channel only
    report = shift_report(colour[train], bgr)
    assert "blue mean" in flagged(report) and {"red mean", "green mean"}.isdisjoint(flagged(report)), report


# -- audio ----------------------------------------------------------------------------------------------------


def test_audio_another_voice_set_is_caught_and_random_halves_are_not(voices):
    espeak, flite = voices
    train, test = halves(len(espeak), 0)
    report = shift_report(espeak[train], espeak[test], sample_rate=16000)
    assert report.verdict == "pass", report

    report = shift_report(espeak[train], flite, sample_rate=16000)
    assert "spectral centroid (Hz)" in flagged(report) and report.domain_finding == "shift", report
    assert "voices, microphones or noise differ" in str(report)

    quiet = [clip * 0.1 for clip in espeak[test]]  # a list of waveforms, 20 dB quieter
    report = shift_report(espeak[train], quiet, sample_rate=16000)
    assert flagged(report) == {"loudness (dBFS)"} and ", quieter" in str(report), report


# -- bad inputs and the command line ----------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors(weather, digits):
    texts = ["a fine film"] * 20
    cases = [
        (dict(reference_data=weather, current_data=texts), "must be of the same modality"),
        (dict(reference_data=weather, current_data=weather, modality="tabular"), "`modality` must be one of"),
        (dict(reference_data=weather, current_data=weather, alpha=1.5), "`alpha` must be a finite number in (0, 1)"),
        (
            dict(reference_data=weather, current_data=weather.drop(columns="wind")),
            "`current_data` lacks the columns ['wind']",
        ),
        (dict(reference_data=weather, current_data=weather.head(5)), "at least 10 examples"),
        (dict(reference_data=texts, current_data=texts[:-1] + [None]), "only strings"),
        (dict(reference_data=np.zeros((20, 100)), current_data=np.zeros((20, 100))), "`modality` must be given"),
        (
            dict(reference_data=np.zeros((20, 100)), current_data=np.zeros((20, 100)), modality="audio"),
            "`sample_rate` is required",
        ),
        (dict(reference_data=digits, current_data=np.stack([digits] * 3, -1)), "same number of channels"),
        (dict(reference_data=weather, current_data=weather.assign(wind="calm")), "numeric in `reference_data` but"),
        (dict(reference_data=weather, current_data=weather, num_examples=-1), "`num_examples` must be an int >= 0"),
        (
            dict(reference_data=weather, current_data=weather, column_types={"wind": "float"}),
            "`column_types['wind']` must be one of ('number', 'category', 'date', 'text')",
        ),
        (
            dict(reference_data=weather, current_data=weather, column_types={"speed": "number"}),
            "`column_types` names a column `reference_data` lacks",
        ),
        (
            dict(reference_data=weather, current_data=weather.assign(wind="calm"), column_types={"wind": "number"}),
            "Column 'wind' holds numbers, but `current_data` holds 'calm'",
        ),
        (
            dict(reference_data=texts, current_data=texts, column_types={"text": "text"}),
            "`column_types` types the columns",
        ),
    ]
    for arguments, message in cases:
        with pytest.raises(ValueError, match=None) as error:
            shift_report(**arguments)
        assert message in str(error.value), (message, str(error.value))


def test_cli_compares_two_csv_files(weather, tmp_path, capsys):
    train, serving = halves(len(weather), 0)
    weather.iloc[train].to_csv(tmp_path / "train.csv", index=False)
    shifted = weather.iloc[serving].assign(wind=lambda frame: frame.wind * 3.6)  # m/s to km/h
    shifted.to_csv(tmp_path / "serving.csv", index=False)
    output = tmp_path / "report"
    arguments = ["shift", "--reference", str(tmp_path / "train.csv"), "--current", str(tmp_path / "serving.csv")]
    assert recipes_main([*arguments, "--directory", str(output)]) == 1  # shifted: not ok
    printed = capsys.readouterr().out
    assert printed.startswith("FAIL: 1 of 6 features shifted") and "\n- wind: mean" in printed
    assert (output / "shift.md").read_text().startswith("# Data shift report\n\n**FAIL**: 1 of 6")
    assert (output / "shift.png").stat().st_size > 10_000

    reviews = recipes.datasets.load_rotten_tomatoes().sample(400, random_state=0)
    reviews.iloc[:200].to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    reviews.iloc[200:].to_json(tmp_path / "b.jsonl", orient="records", lines=True)
    text = [
        "shift",
        "--reference",
        str(tmp_path / "a.jsonl"),
        "--current",
        str(tmp_path / "b.jsonl"),
        "--modality",
        "text",
    ]
    assert recipes_main([*text, "--column", "text", "--directory", str(output)]) == 0
    assert capsys.readouterr().out.startswith("PASS: no shift")
    assert recipes_main([*text, "--column", "review"]) == 2
    assert "has no column 'review'" in capsys.readouterr().err


@pytest.mark.slow
def test_the_real_command_prints_json_and_gates_on_the_verdict(weather, tmp_path):
    train, serving = halves(len(weather), 0)
    weather.iloc[train].to_csv(tmp_path / "train.csv", index=False)
    weather.iloc[serving].assign(wind=lambda frame: frame.wind * 3.6).to_csv(tmp_path / "serving.csv", index=False)
    weather.iloc[serving].to_csv(tmp_path / "same.csv", index=False)
    arguments = ["shift", "--reference", tmp_path / "train.csv", "--directory", tmp_path / "out", "--json"]
    result = recipes_command(*arguments, "--current", tmp_path / "serving.csv")
    assert result.returncode == 1, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["verdict"] == "fail" and report["ok"] is False and report["features"][0]["feature"] == "wind"
    result = recipes_command(*arguments, "--current", tmp_path / "same.csv")
    assert result.returncode == 0 and json.loads(result.stdout)["verdict"] == "pass", result.stderr[-2000:]
    result = recipes_command(*arguments, "--current", tmp_path / "missing.csv")
    assert result.returncode == 2 and result.stdout == ""
    assert "recipes shift: error: --current must be an existing file" in result.stderr
    assert "Traceback" not in result.stderr


# -- labels: label shift, concept shift, the split column --------------------------------------------------------


def by_date(weather):
    """Seattle weather as the shipped task splits it: training to mid-2014, test 2015; `(x, y)` of each."""
    train, _, test = recipes.split_by_date(weather.date, ["2014/07/01", "2015/01/01"])
    return [(weather.iloc[rows].drop(columns="weather"), weather.weather.iloc[rows]) for rows in (train, test)]


def test_a_split_by_date_reports_the_label_shift_and_not_the_date(weather, tmp_path):
    train, test = by_date(weather)
    report = shift_report(train, test, split_column="date")
    labels = report.label_shift
    assert report.verdict == "fail" and labels.finding == "shift" and labels.moved == ["fog", "rain"], report
    assert report.summary.startswith("label shift: 'fog' 17.3% -> 47.4%, 'rain' 27.5% -> 1.4% (chi-square p=")
    assert labels.test == "chi-square" and labels.cramers_v > 0.3 and abs(labels.total_variation - 0.32) < 0.01
    assert report.advice[0].startswith(
        "the class frequencies moved ('fog' 17.3% -> 47.4%, 'rain' 27.5% -> 1.4%): "
        "reweight the training rows by the class-prior ratio"
    )
    assert "class_weight=shift_report(...).label_shift.class_weight" in report.advice[0]
    assert any("correct_probabilities" in item for item in report.advice)
    assert any("relabel" in item for item in report.advice)
    assert labels.class_weight["rain"] < 0.1 < 2 < labels.class_weight["fog"] < 3
    # the date: reported apart, expected to differ; its seasonal parts compared like any feature
    assert report.split_column == "date" and report.expected.feature.tolist() == ["date"]
    assert report.expected.finding.tolist() == ["expected to differ"] and not report.inputs_shifted
    assert {"date: day of year", "date: day of week"} <= set(report.features.feature) and "date" not in report.shifted
    assert report.domain_auc < 0.6 and all("date" != name for name, _ in report.domain_features)
    assert report.concept_shift.finding == "no shift"  # each class's days look as before: the mix moved
    assert report.input_report().verdict == "pass" and report.input_report().label_shift is None
    # without the split column the absolute date is a shift of its own
    assert "date" in shift_report(train, test).shifted

    # class ids (with their names) give a class_weight Keras takes and probabilities moved to the current mix
    ids = shift_report(
        (train[0], train[1].map({"sun": 0, "rain": 1}).fillna(2).astype(int)),
        (test[0], test[1].map({"sun": 0, "rain": 1}).fillna(2).astype(int)),
        class_names=["sun", "rain", "other"],
        split_column="date",
    ).label_shift
    probabilities = ids.correct_probabilities(np.array([[0.4, 0.4, 0.2], [1 / 3, 1 / 3, 1 / 3]]))
    assert np.allclose(probabilities.sum(axis=1), 1) and probabilities[0, 1] < 0.05 and probabilities[0, 2] > 0.3
    assert ids.classes.set_index("name").loc["rain", "class"] == 1
    with pytest.raises(ValueError, match="needs integer class ids"):
        labels.correct_probabilities(np.full((2, 5), 0.2))

    markdown = report.to_markdown()
    assert "### Expected to differ: the split column 'date'" in markdown and "### Labels" in markdown
    assert "| fog | 158 | 173 | 17.3% | 47.4% | +30.1 pts |" in markdown and "### Concept" in markdown
    data = json.loads(json.dumps(report.to_dict()))
    assert data["label_shift"]["verdict"] == "fail" and data["label_shift"]["moved"] == ["fog", "rain"]
    assert data["concept_shift"]["finding"] == "no shift" and data["expected"][0]["feature"] == "date"
    assert set(data["examples"][0]) >= {"side", "index", "date", "label"}
    for part, name in ((report, "shift"), (labels, "labels"), (report.concept_shift, "concept")):
        figure = part.plot(tmp_path / f"{name}.png")
        assert open(figure, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_random_splits_with_labels_raise_no_false_alarm(weather):
    x, y = weather.drop(columns="weather"), weather.weather.to_numpy()
    reports = [shift_report(*((x.iloc[rows], y[rows]) for rows in halves(len(y), s)), seed=s) for s in range(SPLITS)]
    alarms = [r for r in reports if r.verdict == "fail"]
    assert len(alarms) <= 1, [str(r) for r in alarms]
    assert {r.label_shift.finding for r in reports} == {"no shift"}
    assert str(reports[0]).startswith("PASS: no label shift")


def test_a_planted_concept_shift_is_caught_and_a_label_shift_is_not_taken_for_one():
    images, labels = recipes.datasets.load_digits()
    train, test = halves(len(labels), 0)
    reference = (images[train], labels[train])
    swapped = labels[test].copy()
    swapped[labels[test] == 1], swapped[labels[test] == 7] = 7, 1  # one class's labels swapped with another's
    report = shift_report(reference, (images[test], swapped), class_names=[f"digit {i}" for i in range(10)])
    concept = report.concept_shift
    assert report.verdict == "fail" and concept.finding == "shift" and report.label_shift.finding == "no shift", report
    assert not report.inputs_shifted and report.summary.startswith("concept shift: the same inputs get other labels")
    assert set(concept.worse[:2]) == {"digit 1", "digit 7"} and concept.skill_lost > 0.2 and concept.p_holm < 1e-6
    assert concept.current_accuracy < concept.reference_accuracy - 0.1
    pairs = concept.pairs
    assert len(pairs) == 3 and set(pairs.reference_label) | set(pairs.current_label) <= {"digit 1", "digit 7"}, pairs
    assert (images[train][pairs.reference_row.iloc[0]] == pairs.reference_example.iloc[0]).all()
    assert "reweighting rows or classes cannot fix" in report.advice[0] and "concept_shift.pairs" in report.advice[1]
    assert "reference_example" not in json.loads(json.dumps(report.to_dict()))["concept_shift"]["pairs"][0]
    assert "Near-identical inputs with different labels" in report.to_markdown()

    kept = test[(labels[test] != 3) | (np.arange(len(test)) % 10 == 0)]  # one class undersampled to 1 in 10
    report = shift_report(reference, (images[kept], labels[kept]))
    assert report.label_shift.finding == "shift" and report.label_shift.moved == ["3"], report.label_shift
    assert report.concept_shift.finding == "no shift" and report.summary.startswith("label shift: '3' "), report


def test_reviews_with_flipped_labels_are_a_concept_shift(reviews):
    texts, labels = reviews.text.to_numpy(), reviews.label.to_numpy()
    train, test = halves(len(labels), 0, 1000)
    flipped = labels[test].copy()
    rows = np.random.default_rng(0).random(len(test)) < 0.4
    flipped[rows] = 1 - flipped[rows]  # 40% of the current labels flipped: the class mix stays, the rule does not
    report = shift_report((texts[train], labels[train]), (texts[test], flipped), class_names=["rotten", "fresh"])
    assert report.concept_shift.finding == "shift" and report.label_shift.finding == "no shift", report
    assert not len(report.concept_shift.pairs) or isinstance(report.concept_shift.pairs.current_example[0], str)


def test_a_regression_target_is_compared_with_ks(weather):
    x, y = weather.drop(columns="temp_max"), weather.temp_max.to_numpy()
    train, test = halves(len(y), 0)
    report = shift_report((x.iloc[train], y[train]), (x.iloc[test], y[test]))
    assert report.verdict == "pass" and report.label_shift.test == "KS" and report.label_shift.classes is None, report
    assert report.concept_shift.metric == "absolute error" and report.concept_shift.finding == "no shift"
    report = shift_report((x.iloc[train], y[train]), (x.iloc[test], y[test] * 9 / 5 + 32))  # Fahrenheit labels
    assert report.label_shift.finding == "shift" and report.label_shift.change.startswith("target mean 16.")
    assert report.concept_shift.finding == "shift" and any("relabel" in item for item in report.advice), report


def test_bad_labels_raise_clear_errors(weather, digits):
    x, y = weather.drop(columns="weather"), weather.weather
    cases = [
        (dict(reference_data=(x, y), current_data=x), "must both be (x, y) tuples to compare labels"),
        (dict(reference_data=(x, y[:-1]), current_data=(x, y)), "label per example. Received: 1461 inputs and 1460"),
        (dict(reference_data=x, current_data=x, class_names=["a"]), "`class_names` names the classes of labels"),
        (dict(reference_data=(x, y), current_data=(x, y), class_names=["a"]), "names integer class ids"),
        (dict(reference_data=(x, np.zeros(len(y), int)), current_data=(x, y)), "must be of one kind"),
        (
            dict(
                reference_data=(x, np.zeros(len(y), int) + 3),
                current_data=(x, np.zeros(len(y), int)),
                class_names=["a", "b"],
            ),
            "ids [3]",
        ),
        (dict(reference_data=(x, y.where(y != "fog")), current_data=(x, y)), "none missing. Received: nan"),
        (dict(reference_data=x, current_data=x, split_column="day"), "`split_column` must be one of the columns"),
        (dict(reference_data=digits, current_data=digits, split_column="date"), "names a column of a table"),
    ]
    for arguments, message in cases:
        with pytest.raises(ValueError) as error:
            shift_report(**arguments)
        assert message in str(error.value), (message, str(error.value))


def test_cli_compares_the_labels_of_two_files(weather, tmp_path, capsys):
    train, test = by_date(weather)
    train[0].assign(weather=train[1]).to_csv(tmp_path / "train.csv", index=False)
    test[0].assign(weather=test[1]).to_csv(tmp_path / "test.csv", index=False)
    arguments = [
        "shift",
        "--reference",
        str(tmp_path / "train.csv"),
        "--current",
        str(tmp_path / "test.csv"),
        "--directory",
        str(tmp_path / "out"),
    ]
    assert recipes_main([*arguments, "--target", "weather", "--split-column", "date", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["label_shift"]["moved"] == ["fog", "rain"] and data["split_column"] == "date"
    assert data["summary"].startswith("label shift: 'fog'") and data["ok"] is False
    assert recipes_main([*arguments, "--target", "label"]) == 2
    assert "--target: the reference file has no column 'label'" in capsys.readouterr().err


@pytest.mark.slow
def test_the_command_compares_a_serving_file_with_the_task_s_column_types(tmp_path):
    weather = weather_frame()
    weather["day"] = pd.to_datetime(weather.day).dt.strftime("%d/%m/%Y")  # day first: 13/01/2012
    year = weather.day.str[-4:]
    weather[year < "2015"].to_csv(tmp_path / "train.csv", index=False)
    serving = weather[year == "2015"]
    serving.drop(columns="sky").to_csv(tmp_path / "serving.csv", index=False)
    serving.to_csv(tmp_path / "labelled.csv", index=False)
    task = [
        "--target",
        "sky",
        "--date",
        "day",
        "--split-dates",
        "2014-01-01",
        "2014-07-01",
        "--column-type",
        "low_c=category",
    ]
    arguments = ["shift", "--reference", tmp_path / "train.csv", "--directory", tmp_path / "out", "--json"]
    result = recipes_command(*arguments, "--current", tmp_path / "serving.csv", *task)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["column_types"] == {
        "day": "date (%d/%m/%Y)",
        "rain_mm": "number",
        "high_c": "number",
        "low_c": "category",
        "wind": "number",
    }
    # the date: compared as days, reported apart; its seasonal parts compared like any feature
    assert report["split_column"] == "day" and [row["feature"] for row in report["expected"]] == ["day"]
    assert report["expected"][0]["test"] == "KS" and report["expected"][0]["finding"] == "expected to differ"
    features = {row["feature"]: row for row in report["features"]}
    assert {"day: day of year", "day: day of week", "rain_mm", "low_c", "wind: missing"} <= set(features)
    assert features["low_c"]["type"] == "categorical" and features["high_c"]["type"] == "numeric"
    assert report["label_shift"] is None and report["num_current"] == 365

    # without the task options the types are guessed: month-first parsing fails on 13/01/2012, and its three
    # tokens make it text
    result = recipes_command(*arguments, "--current", tmp_path / "serving.csv", "--columns", *serving.columns[:-1])
    guessed = json.loads(result.stdout)
    assert guessed["column_types"]["day"] == "text" and guessed["column_types"]["low_c"] == "number"
    assert guessed["split_column"] is None and "day: length (tokens)" in [row["feature"] for row in guessed["features"]]

    # the target is the labels when the current file has it; a date the task's format does not read is an error
    result = recipes_command(*arguments, "--current", tmp_path / "labelled.csv", *task)
    assert json.loads(result.stdout)["label_shift"]["test"] == "chi-square", result.stderr[-2000:]
    serving.assign(day=serving.day.str.replace("/", "-")).to_csv(tmp_path / "iso.csv", index=False)
    result = recipes_command(*arguments, "--current", tmp_path / "iso.csv", *task)
    assert result.returncode == 2 and "Column 'day' holds dates written '%d/%m/%Y'" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr

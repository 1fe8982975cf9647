"""recipes.debug.shift_report on real data: planted shifts of every modality are caught, random splits are not."""

import json

import numpy as np
import pandas as pd
import pytest
from _recipes_command import recipes_command

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
        (dict(reference_data=weather, current_data=weather.drop(columns="wind")),
         "`current_data` lacks the columns ['wind']"),
        (dict(reference_data=weather, current_data=weather.head(5)), "at least 10 examples"),
        (dict(reference_data=texts, current_data=texts[:-1] + [None]), "only strings"),
        (dict(reference_data=np.zeros((20, 100)), current_data=np.zeros((20, 100))), "`modality` must be given"),
        (dict(reference_data=np.zeros((20, 100)), current_data=np.zeros((20, 100)), modality="audio"),
         "`sample_rate` is required"),
        (dict(reference_data=digits, current_data=np.stack([digits] * 3, -1)), "same number of channels"),
        (dict(reference_data=weather, current_data=weather.assign(wind="calm")), "numeric in `reference_data` but"),
        (dict(reference_data=weather, current_data=weather, num_examples=-1), "`num_examples` must be an int >= 0"),
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
    text = ["shift", "--reference", str(tmp_path / "a.jsonl"), "--current", str(tmp_path / "b.jsonl"), "--modality", "text"]
    assert recipes_main([*text, "--column", "text", "--directory", str(output)]) == 0
    assert capsys.readouterr().out.startswith("PASS: no shift")
    assert recipes_main([*text, "--column", "review"]) == 2
    assert "has no column 'review'" in capsys.readouterr().err


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

"""`recipes.debug.doctor` and the debugging subcommands: real checks, a real report, opened in a real browser."""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from _recipes_command import recipes_command

import recipes
from recipes.cli import main as cli

# What the seeded digits run and the tabular baseline's short run conclude (the same on every run).
DIAGNOSE_FINDING, DIAGNOSE_VERDICT = "good", "pass"  # the CNN with batch normalisation converges
DOCTOR_TABULAR_VERDICT = "fail"

CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium")


@pytest.fixture(scope="module")
def digits_report(tmp_path_factory):
    """The doctor on a digits CNN; the serving inputs are the test images darkened to a third ("night")."""
    from models import vision
    from recipes.debug import default_checks, doctor

    recipes.set_seed(0)
    images, labels = recipes.datasets.load_digits()
    train, val, test = recipes.repeatable_split(np.arange(len(labels)), (0.6, 0.2, 0.2))
    directory = tmp_path_factory.mktemp("doctor")
    report = doctor(
        lambda: vision.cnn_classifier((8, 8), 10),
        (images[train], labels[train]),
        (images[val], labels[val]),
        test_data=(images[test], labels[test]),
        serving_data=images[test] / 3.0,
        checks=default_checks(explain_examples=2),
        directory=directory,
        modality="image",
        total_examples=4000,
        num_checkpoints=4,
    )
    return report, directory


@pytest.mark.slow
def test_every_check_runs_and_gives_a_verdict(digits_report):
    report, _ = digits_report
    verdicts = {check.name: check.verdict for check in report.checks}
    assert verdicts == {
        "overfit_check": "pass",
        "diagnose": DIAGNOSE_VERDICT,
        "mode_check": "pass",
        "input shift (train vs held-out)": "pass",
        "label shift (train vs held-out)": "pass",  # a random split: the same class mix
        "concept shift (train vs held-out)": "pass",
        "input shift (train vs serving)": "fail",  # the darkened images
        "error_analysis (held-out)": "info",
        "explain (top-loss examples)": "info",
    }, [(check.name, check.report.summary) for check in report.checks]
    assert report.checks[1].report.finding == DIAGNOSE_FINDING
    assert report.verdict == "fail" and not report.ok
    assert str(report).startswith("FAIL: 8 of 9 checks ok; look at: ")
    assert report.advice[-1] == f"read the whole report: {report.html_path}"
    assert report.checks[3].report.summary.startswith("training vs test: no shift")
    assert report.checks[4].report.summary.startswith("training vs test: no label shift")
    assert report.checks[5].report.summary.startswith("training vs test: no concept shift")
    data = json.loads(json.dumps(report.to_dict()))
    assert [check["report"]["verdict"] for check in data["checks"]] == list(verdicts.values())
    assert data["checks"][0]["name"] == "overfit_check" and data["checks"][0]["figures"] == ["overfit_check.png"]


@pytest.mark.slow
def test_the_report_puts_verdicts_first_and_links_every_figure(digits_report):
    report, directory = digits_report
    text = open(report.markdown_path, encoding="utf-8").read()
    assert text == report.to_markdown() and text.startswith("# recipes doctor report\n\n**FAIL**: 8 of 9 checks ok")
    table = text.index("| check | verdict |")
    assert table < text.index("## overfit_check: pass")
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert set(figures) == {
        "overfit_check.png",
        "diagnose.png",
        "input_shift_train_vs_held_out.png",
        "label_shift_train_vs_held_out.png",
        "concept_shift_train_vs_held_out.png",
        "input_shift_train_vs_serving.png",
        "error_analysis_held_out.png",
        "explain_top_loss_examples.png",
    }  # (mode_check has no figure)
    for figure in figures:
        with open(os.path.join(directory, figure), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", figure


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium missing: make setup installs chromium-headless-shell")
def test_the_html_report_renders_with_its_images_in_headless_chromium(digits_report, tmp_path):
    report, directory = digits_report
    # The probe page is the report plus a script that records, once the page has loaded, which images decoded.
    probe = os.path.join(directory, "probe.html")
    page = open(report.html_path, encoding="utf-8").read()
    script = (
        "<script>window.addEventListener('load', () => document.body.setAttribute('data-images', "
        "JSON.stringify([...document.images].map(i => [i.getAttribute('src'), i.naturalWidth, i.naturalHeight]))));"
        "</script>"
    )
    with open(probe, "w", encoding="utf-8") as f:
        f.write(page.replace("</body>", script + "</body>"))
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path}",
            "--allow-file-access-from-files",
            "--dump-dom",
            "file://" + os.path.abspath(probe),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    match = re.search(r"data-images=\"([^\"]*)\"", dom)
    assert match, dom[:500]
    images = json.loads(match.group(1).replace("&quot;", '"'))
    assert len(images) >= 5
    broken = [src for src, width, height in images if width == 0 or height == 0]
    assert not broken, f"images that did not load: {broken}"
    assert "<strong>FAIL</strong>: 8 of 9 checks ok" in dom and "<table>" in dom


def test_doctor_checks_its_arguments():
    from recipes.debug import default_checks, doctor

    x, y = np.zeros((10, 3), "float32"), np.zeros(10, "int64")
    with pytest.raises(ValueError, match=r"`train_data` must be an \(x, y\) tuple"):
        doctor(lambda: None, x, (x, y))
    with pytest.raises(ValueError, match=r"`train_data`'s x and y must have the same number of rows"):
        doctor(lambda: None, (x, y[:9]), (x, y))
    with pytest.raises(ValueError, match=r"`num_examples` must be an int >= 0. Received: num_examples=-1"):
        default_checks(explain_examples=-1)
    with pytest.raises(ValueError, match=r"`checks` must hold callables taking a Case. Received: 3"):
        doctor(lambda: None, (x, y), (x, y), checks=[3])
    with pytest.raises(ValueError, match=r"`modality` must be one of \('text', 'image', 'audio', 'table'\)"):
        doctor(lambda: None, (x, y), (x, y), modality="vision")
    with pytest.raises(ValueError, match=r"`split_column` must be a column name \(a string\) or None. Received: "):
        doctor(lambda: None, (x, y), (x, y), split_column=3)


def test_doctor_runs_any_list_of_checks_through_the_report_protocol(tmp_path):
    """The doctor knows no check: a user's own, one that raises and one that does not apply."""
    from recipes.debug import Case, doctor
    from recipes.report import Report

    def enough_data(case):
        assert isinstance(case, Case) and case.held_out_name == "validation"
        rows = len(case.train_data[0])
        return Report("warn", f"{rows} training rows", ["collect more data"])

    def broken(case):
        raise RuntimeError("no luck")

    def not_here(case):
        return None

    class Figure:
        name = "a figure"

        def __call__(self, case):
            class Plotted(Report):
                def plot(self, path):
                    open(path, "wb").write(b"\x89PNG\r\n\x1a\n")
                    return path

            return Plotted("pass", "drawn")

    x, y = np.zeros((10, 3), "float32"), np.zeros(10, "int64")
    report = doctor(
        lambda: None, (x, y), (x, y), checks=[enough_data, broken, not_here, Figure()], directory=tmp_path, verbose=0
    )
    assert [(c.name, c.verdict) for c in report.checks] == [
        ("enough_data", "warn"),
        ("broken", "error"),
        ("a figure", "pass"),
    ]
    assert report.checks[1].report.summary.startswith("RuntimeError: no luck (at test_doctor.py:")
    assert report.checks[2].figures == ["a_figure.png"] and (tmp_path / "a_figure.png").exists()
    assert report.verdict == "fail" and report.summary == "2 of 3 checks ok; look at: enough_data, broken"
    assert report.advice[:2] == ("enough_data: collect more data", "broken: fix what raised, then run the doctor again")
    only_warning = doctor(lambda: None, (x, y), (x, y), checks=[enough_data], directory=tmp_path, verbose=0)
    assert only_warning.verdict == "warn" and only_warning.ok
    json.dumps(report.to_dict())


def test_the_doctor_knows_the_split_and_names_the_label_shift(tmp_path):
    """Seattle weather split by date, as the shipped task splits it: the date differs by design, the labels moved."""
    from recipes.debug import doctor
    from recipes.debug.checks import ShiftCheck

    weather = recipes.datasets.load_seattle_weather()
    names = sorted(weather.weather.unique())
    train, _, test = recipes.split_by_date(weather.date, ["2014/07/01", "2015/01/01"])

    def xy(rows):
        frame = weather.iloc[rows]
        x = {c: frame[c].to_numpy() for c in frame.columns if c != "weather"}
        return x, frame.weather.map(names.index).to_numpy()

    checks = [ShiftCheck("held-out", part) for part in ShiftCheck.PARTS] + [ShiftCheck("serving", "labels")]
    report = doctor(
        lambda: None,
        xy(train),
        xy(test),
        checks=checks,
        directory=tmp_path,
        class_names=names,
        split_column="date",
        verbose=0,
    )
    rows = {check.name: check.report for check in report.checks}
    assert {name: r.verdict for name, r in rows.items()} == {
        "input shift (train vs held-out)": "pass",  # the date is expected to differ: no headline
        "label shift (train vs held-out)": "fail",
        "concept shift (train vs held-out)": "pass",
    }, {name: r.summary for name, r in rows.items()}  # serving: no data, and no labels: does not apply
    inputs = rows["input shift (train vs held-out)"]
    assert list(inputs.expected.feature) == ["date"] and "date" not in inputs.shifted
    assert "expected to differ, the split column: date: dates 2012-01-01..2014-06-30 -> 2015-01-01" in inputs.summary
    assert {"date: day of year", "date: day of week"} <= set(inputs.features.feature)
    labels = rows["label shift (train vs held-out)"]
    assert labels.moved == ["fog", "rain"] and labels.summary.startswith("training vs validation: label shift: 'fog'")
    assert report.summary == "2 of 3 checks ok; look at: label shift (train vs held-out)"
    assert report.advice[0].startswith(
        "label shift (train vs held-out): the class frequencies moved ('fog' 17.3% -> "
        "47.4%, 'rain' 27.5% -> 1.4%): reweight the training rows"
    )
    assert "class_weight=" in report.advice[0]
    text = open(report.markdown_path, encoding="utf-8").read()
    assert "| label shift (train vs held-out) | fail (**look here**) |" in text
    assert "### Expected to differ: the split column 'date'" in text
    with pytest.raises(ValueError, match=r"`part` must be one of \('inputs', 'labels', 'concept'\)"):
        ShiftCheck("held-out", "outputs")


def test_recipes_diagnose_reads_a_fit_run_and_a_csv_log(tmp_path, capsys, model_fn, blob_data):
    (x, y), (x_val, y_val) = blob_data
    run_dir = tmp_path / "run"
    recipes.fit(
        model_fn(),
        (x, y),
        validation_data=(x_val, y_val),
        batch_size=32,
        total_examples=1200,
        num_checkpoints=4,
        directory=run_dir,
        verbose=0,
    )
    assert cli(["diagnose", str(run_dir), "--target-score", "0.9"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS: good: training accuracy "), out
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,val_loss\n" + "".join(f"{i},{1 / (i + 1)},{0.3 + 0.05 * i * i}\n" for i in range(8)))
    assert cli(["diagnose", str(log)]) == 1  # overfitting: a verdict of "fail"
    assert capsys.readouterr().out.startswith("FAIL: overfitting:")
    assert cli(["diagnose", str(tmp_path / "nothing")]) == 2
    assert "neither a checkpoint folder nor a CSV file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # --target names a label column, not the score to reach
        cli(["diagnose", str(log), "--target", "0.9"])
    assert exit_info.value.code == 2 and "unrecognized arguments: --target 0.9" in capsys.readouterr().err


@pytest.mark.slow
def test_recipes_mode_check_and_overfit_check_on_a_baseline(capsys):
    assert cli(["mode-check", "tabular", "--num-examples", "32"]) == 0
    assert capsys.readouterr().out.startswith("PASS")
    status = cli(
        [
            "overfit-check",
            "tabular",
            "--model",
            "linear",
            "--per-class",
            "10",
            "--num-checkpoints",
            "3",
            "--target-score",
            "1.0",
        ]
    )
    out = capsys.readouterr().out
    assert status == 1 and out.startswith("FAIL"), out  # a linear model in 3 checkpoints cannot reach 100%


@pytest.mark.slow
def test_the_real_commands_print_json_and_gate_on_the_verdict(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,val_loss\n" + "".join(f"{i},{1 / (i + 1)},{0.3 + 0.05 * i * i}\n" for i in range(8)))
    result = recipes_command("diagnose", log, "--json")
    assert result.returncode == 1, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert (report["verdict"], report["ok"], report["finding"]) == ("fail", False, "overfitting")
    assert report["advice"][0].startswith("more data: ")

    result = recipes_command("mode-check", "tabular", "--num-examples", "32", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["verdict"] == "pass"

    result = recipes_command(
        "overfit-check",
        "tabular",
        "--model",
        "linear",
        "--per-class",
        "10",
        "--num-checkpoints",
        "3",
        "--target-score",
        "1.0",
        "--json",
        "--output",
        tmp_path / "overfit.png",
    )
    assert result.returncode == 1, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["verdict"] == "fail" and report["checkpoints"] == 3 and (tmp_path / "overfit.png").exists()

    for command in (
        ["diagnose", tmp_path / "nothing"],
        ["mode-check", "tabular", "--model-path", tmp_path / "no.keras"],
        ["doctor", "tabular", "--total-examples", "0"],
    ):
        result = recipes_command(*command, "--json")
        assert result.returncode == 2 and result.stdout == "", (command, result.stdout, result.stderr[-2000:])
        assert f"recipes {command[0]}: error: " in result.stderr and "Traceback" not in result.stderr, command


@pytest.mark.slow
def test_the_real_doctor_command_writes_its_report_as_json(tmp_path):
    result = recipes_command(
        "doctor", "tabular", "--total-examples", "2000", "--num-checkpoints", "2", "--directory", tmp_path, "--json"
    )
    report = json.loads(result.stdout)
    assert result.returncode == (0 if report["ok"] else 1), result.stderr[-3000:]
    assert report["verdict"] == DOCTOR_TABULAR_VERDICT, [(c["name"], c["report"]["summary"]) for c in report["checks"]]
    assert [check["name"] for check in report["checks"]][:3] == ["overfit_check", "diagnose", "mode_check"]
    rows = {check["name"]: check["report"] for check in report["checks"]}
    inputs, labels = rows["input shift (train vs held-out)"], rows["label shift (train vs held-out)"]
    # split by date: the date is reported apart, not headlined; the labels moved, and the advice says what to do
    assert inputs["verdict"] == "pass" and inputs["split_column"] == "date"
    assert inputs["expected"][0]["feature"] == "date"
    assert labels["verdict"] == "fail" and labels["moved"] == ["fog", "rain"], labels["summary"]
    assert "label shift (train vs held-out)" in report["summary"] and "date" not in report["summary"]
    (advice,) = [item for item in report["advice"] if item.startswith("label shift")]
    assert "'rain' 27.5% -> 1.4%" in advice and "class_weight" in advice
    assert "recipes.debug.doctor: overfit_check: " in result.stderr  # progress on stderr, JSON alone on stdout
    assert (tmp_path / "report.html").exists()

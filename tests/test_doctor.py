"""`recipes.debug.doctor` and the debugging subcommands: real checks, a real report, opened in a real browser."""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import recipes
from recipes.cli import main as cli

CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium")


@pytest.fixture(scope="module")
def digits_report(tmp_path_factory):
    """The doctor on a digits CNN; the serving inputs are the test images darkened to a third ("night")."""
    from models import vision
    from recipes.debug import doctor

    recipes.set_seed(0)
    images, labels = recipes.datasets.load_digits()
    train, val, test = recipes.repeatable_split(np.arange(len(labels)), (0.6, 0.2, 0.2))
    output_dir = tmp_path_factory.mktemp("doctor")
    report = doctor(
        lambda: vision.cnn_classifier((8, 8), 10),
        (images[train], labels[train]),
        (images[val], labels[val]),
        test=(images[test], labels[test]),
        serving=images[test] / 3.0,
        output_dir=output_dir,
        kind="image",
        total_examples=4000,
        num_checkpoints=4,
        explain_examples=2,
    )
    return report, output_dir


@pytest.mark.slow
def test_every_check_runs_and_gives_a_verdict(digits_report):
    report, _ = digits_report
    verdicts = {check.name: check.verdict for check in report.checks}
    assert "ERROR" not in verdicts.values(), verdicts
    assert verdicts["overfit_check"] == "PASS"
    assert verdicts["mode_check"] == "PASS"
    assert verdicts["diagnose"] in ("good", "not converged", "underfitting", "overfitting")
    assert verdicts["shift_report (train vs test)"] == "no shift"
    assert verdicts["shift_report (train vs serving)"] == "shift"  # the darkened images
    assert report.verdict == "problems found"
    assert str(report).startswith("problems found")


@pytest.mark.slow
def test_the_report_puts_verdicts_first_and_links_every_figure(digits_report):
    report, output_dir = digits_report
    text = open(report.markdown_path, encoding="utf-8").read()
    table = text.index("| check | verdict |")
    assert table < text.index("## overfit_check")
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {"overfit.png", "curves.png", "shift_serving.png", "confusion.png", "explain.png"} <= set(figures)
    for figure in figures:
        with open(os.path.join(output_dir, figure), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", figure


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium missing: make setup installs chromium-headless-shell")
def test_the_html_report_renders_with_its_images_in_headless_chromium(digits_report, tmp_path):
    report, output_dir = digits_report
    # The probe page is the report plus a script that records, once the page has loaded, which images decoded.
    probe = os.path.join(output_dir, "probe.html")
    page = open(report.html_path, encoding="utf-8").read()
    script = (
        "<script>window.addEventListener('load', () => document.body.setAttribute('data-images', "
        "JSON.stringify([...document.images].map(i => [i.getAttribute('src'), i.naturalWidth, i.naturalHeight]))));"
        "</script>"
    )
    with open(probe, "w", encoding="utf-8") as f:
        f.write(page.replace("</body>", script + "</body>"))
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}",
         "--allow-file-access-from-files", "--dump-dom", "file://" + os.path.abspath(probe)],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    match = re.search(r"data-images=\"([^\"]*)\"", dom)
    assert match, dom[:500]
    images = json.loads(match.group(1).replace("&quot;", '"'))
    assert len(images) >= 5
    broken = [src for src, width, height in images if width == 0 or height == 0]
    assert not broken, f"images that did not load: {broken}"
    assert "problems found" in dom and "<table>" in dom


def test_doctor_checks_its_arguments():
    from recipes.debug import doctor

    x, y = np.zeros((10, 3), "float32"), np.zeros(10, "int64")
    with pytest.raises(ValueError, match=r"`train` must be an \(x, y\) pair"):
        doctor(lambda: None, x, (x, y))
    with pytest.raises(ValueError, match=r"`train`: `x` and `y` must have the same number of rows"):
        doctor(lambda: None, (x, y[:9]), (x, y))
    with pytest.raises(ValueError, match="explain_examples"):
        doctor(lambda: None, (x, y), (x, y), explain_examples=-1)


def test_recipes_diagnose_reads_a_fit_run_and_a_csv_log(tmp_path, capsys, model_fn, blob_data):
    (x, y), (x_val, y_val) = blob_data
    run_dir = tmp_path / "run"
    recipes.fit(
        model_fn(), (x, y), validation_data=(x_val, y_val), batch_size=32, total_examples=1200,
        num_checkpoints=4, directory=run_dir, verbose=0,
    )  # fmt: skip
    assert cli(["diagnose", str(run_dir), "--target", "0.9"]) == 0
    out = capsys.readouterr().out
    assert re.match(r"(good|not converged|underfitting|overfitting):", out), out
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,val_loss\n" + "".join(f"{i},{1 / (i + 1)},{0.3 + 0.05 * i * i}\n" for i in range(8)))
    assert cli(["diagnose", str(log)]) == 0
    assert capsys.readouterr().out.startswith("overfitting:")
    assert cli(["diagnose", str(tmp_path / "nothing")]) == 2
    assert "neither a checkpoint folder nor a CSV file" in capsys.readouterr().err


def test_recipes_mode_check_and_overfit_check_on_a_baseline(capsys):
    assert cli(["mode-check", "tabular", "--rows", "32"]) == 0
    assert capsys.readouterr().out.startswith("PASS")
    status = cli(["overfit-check", "tabular", "--model", "linear", "--per-class", "10", "--epochs", "3", "--target", "1.0"])
    out = capsys.readouterr().out
    assert status == 1 and out.startswith("FAIL"), out  # a linear model in 3 epochs cannot reach 100%

import os
import re
import subprocess
import sys

import pytest

RECIPES = os.path.join(os.path.dirname(sys.executable), "recipes")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def _run(*args, timeout=600):
    return subprocess.run([RECIPES, *args], capture_output=True, text=True, timeout=timeout, env=ENV)


def test_help_lists_every_subcommand_with_its_purpose_and_an_example(capsys):
    from recipes.cli import SUBCOMMANDS, main

    listing = _run("--help").stdout
    for command, (_, purpose) in SUBCOMMANDS.items():
        assert re.search(rf"^\s+{command}\s+{re.escape(purpose[:30])}", listing, re.M), (command, listing)
        with pytest.raises(SystemExit):
            main([command, "--help"])
        page = capsys.readouterr().out
        assert "example:" in page, (command, page[-800:])
        assert re.search(rf"^\s+recipes {command}\b", page.split("example:", 1)[1], re.M), (command, page[-800:])


@pytest.mark.slow
def test_demo_trains_and_exports_the_four_baselines(tmp_path):
    result = _run(
        "demo",
        "--scale",
        "0.34",  # about one pass over the text and vision training splits
        "--quiet",
        "--export-dir",
        str(tmp_path / "exports"),
        "--directory",
        str(tmp_path / "runs"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scores = dict(re.findall(r"^\[(\w+)\] test accuracy: ([\d.]+ vs [\d.]+)", result.stdout, re.M))
    assert sorted(scores) == ["audio", "tabular", "text", "vision"], result.stdout
    for task in ("text", "audio", "vision"):
        accuracy, baseline = map(float, scores[task].split(" vs "))
        assert accuracy > baseline + 0.1, (task, scores[task])
    for task in scores:
        assert os.listdir(tmp_path / "exports" / task) == ["1"]
        assert os.path.exists(tmp_path / "exports" / task / "1" / "assets.extra" / "tf_serving_warmup_requests")
    simple = dict(re.findall(r"^\[(\w+)\] simple model \(.+\) test accuracy: ([\d.]+)$", result.stdout, re.M))
    assert sorted(simple) == sorted(scores), result.stdout
    assert "Summary" in result.stdout
    for task in scores:  # then served by recipes-model-server, queried with keyed raw inputs
        for protocol in ("rest", "grpc"):
            assert re.search(
                rf"^{protocol[:4].upper() if protocol == 'rest' else 'gRPC'}\s+{task}\s+key={protocol}-{task}-0001\s+label='",
                result.stdout,
                re.M,
            ), result.stdout


@pytest.mark.slow
def test_train_regressor_reports_error_against_the_mean(tmp_path):
    result = _run(
        "train",
        "tabular",
        "--model",
        "regressor",
        "--total-examples",
        "4000",
        "--quiet",
        "--export-dir",
        str(tmp_path / "exports"),
        "--directory",
        str(tmp_path / "run"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    error, baseline = map(
        float, re.search(r"test mean absolute error: ([\d.]+) vs ([\d.]+) for the mean", result.stdout).groups()
    )
    assert error < baseline


@pytest.mark.slow
def test_cli_reports_bad_arguments_as_errors(tmp_path):
    result = _run("train", "text", "--model", "resnet", "--directory", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "recipes train: error: --model for text must be one of" in result.stderr
    assert "'resnet'" in result.stderr

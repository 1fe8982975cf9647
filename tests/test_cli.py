import os
import subprocess
import sys

RECIPES = os.path.join(os.path.dirname(sys.executable), "recipes")


def test_help_lists_subcommands_with_examples():
    listing = subprocess.run([RECIPES, "--help"], capture_output=True, text=True, check=True).stdout
    assert "demo" in listing
    demo_help = subprocess.run([RECIPES, "demo", "--help"], capture_output=True, text=True, check=True).stdout
    assert "example:" in demo_help and "--resume" in demo_help


def test_demo_trains_checkpoints_and_beats_the_majority_class(tmp_path):
    run_dir = tmp_path / "demo"
    result = subprocess.run(
        [RECIPES, "demo", "--run-dir", str(run_dir), "--passes", "2", "--num-checkpoints", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "split by movie into" in out and "steps per epoch" in out
    line = next(line for line in out.splitlines() if line.startswith("Test accuracy"))
    accuracy, baseline = float(line.split()[2]), float(line.split()[4])
    assert accuracy > baseline + 0.1, line
    assert any(name.endswith(".keras") for name in os.listdir(run_dir))


def test_cli_reports_bad_arguments_as_errors(tmp_path):
    result = subprocess.run(
        [RECIPES, "demo", "--run-dir", str(tmp_path / "d"), "--passes", "0.001"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    assert "recipes demo: error: `total_examples`" in result.stderr

"""Every benchmark script starts: its imports resolve (a script named like a package once shadowed it)."""

import glob
import os
import subprocess
import sys

import pytest

BENCHMARKS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "*.py")))


def test_there_are_benchmarks():
    assert len(BENCHMARKS) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("script", BENCHMARKS, ids=os.path.basename)
def test_benchmark_script_imports_and_shows_its_usage(script):
    done = subprocess.run(
        [sys.executable, script, "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage:")

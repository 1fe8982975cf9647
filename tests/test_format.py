"""The code is laid out by the configured formatter (`make format`: ruff's, settings in pyproject.toml)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUFF = os.path.join(os.path.dirname(sys.executable), "ruff")


def test_every_python_file_is_formatted():
    done = subprocess.run([RUFF, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"run `make format`:\n{done.stdout}{done.stderr}"

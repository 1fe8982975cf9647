"""The real `recipes` command, run in a subprocess on this checkout: what a CI job or a shell sees."""

import os
import subprocess
import sys

RECIPES = os.path.join(os.path.dirname(sys.executable), "recipes")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def recipes_command(*args, timeout=600):
    """`recipes ARGS...` as a `subprocess.CompletedProcess` with text `stdout` and `stderr`."""
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=path)
    return subprocess.run([RECIPES, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)

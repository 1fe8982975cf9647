"""No exported name of a package is also the name of one of its submodules (unless it is that submodule).

Python sets a package's attribute to a submodule when the submodule is imported, so a lazily exported
function of the same name is then hidden: after `import recipes.debug.explain`, `from recipes.debug import
explain` used to return the module. Every package of the project is checked, found on disk.
"""

import importlib
import os
import pkgutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP_LEVEL = ("recipes", "models", "serving")


def _packages():
    found = []
    for top in TOP_LEVEL:
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            if "__init__.py" in files and "__pycache__" not in folder:
                found.append(os.path.relpath(folder, ROOT).replace(os.sep, "."))
    return sorted(found)


PACKAGES = _packages()


def _exported(package):
    names = getattr(package, "__all__", None)
    return set(names) if names is not None else {name for name in dir(package) if not name.startswith("_")}


def test_the_packages_named_in_issue_16_are_all_checked():
    assert {
        "recipes",
        "recipes.debug",
        "recipes.augment",
        "recipes.datasets",
        "recipes.layers",
        "models",
        "serving",
        "recipes.debug.explanations",
        "recipes.debug.shift",
    } <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_no_exported_name_is_a_submodule_name(name):
    package = importlib.import_module(name)
    submodules = {module.name for module in pkgutil.iter_modules(package.__path__)}
    clashes = []
    for exported in sorted(_exported(package) & submodules):
        value = getattr(package, exported)
        if value is not importlib.import_module(f"{name}.{exported}"):  # a subpackage exported as itself is fine
            clashes.append(exported)
    assert not clashes, f"{name} exports {clashes}, which are also the names of its submodules"


@pytest.mark.slow
def test_importing_a_submodule_leaves_the_exported_functions_alone():
    """In a fresh interpreter: import every submodule of recipes.debug first, then the functions."""
    code = (
        "import importlib, pkgutil, recipes.debug as d\n"
        "for m in pkgutil.iter_modules(d.__path__): importlib.import_module('recipes.debug.' + m.name)\n"
        "from recipes.debug import explain, doctor, shift_report, overfit_check\n"
        "print(all(callable(f) and type(f).__name__ == 'function' for f in (explain, doctor, shift_report, overfit_check)))\n"
    )
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.stdout.strip() == "True", result.stderr[-2000:]

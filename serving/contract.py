"""The serving contract: the names and folders an export writes and every reader of it relies on.

`serving.export_model` writes a model as TF Serving loads it: numbered version folders under the model's
base path (`exports/text/1/saved_model.pb`), a keyed signature that takes the raw inputs plus a string
`key` and returns the `key` unchanged with the predictions, an unkeyed one, and warmup requests. The
server's manager, the clients, offline prediction (`serving.predict_file`) and the cost recipe read the
same names and folders from here. This module imports neither Keras nor TensorFlow, so that a REST client
loads neither.
"""

import os
import re

# The input and output carrying the client's primary key through the keyed signature.
KEY = "key"
# The signature that takes the raw inputs and `KEY`, and the one that takes the raw inputs alone.
KEYED_SIGNATURE = "serving_default"
UNKEYED_SIGNATURE = "without_key"
# A table export's keyed signature that also takes the file's other columns (target, key and group columns),
# ignored: a row of the training file is a request to it as it stands.
ROW_SIGNATURE = "row"
# The files of a SavedModel folder (TF Serving reads either), and the warmup requests it replays on load.
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")

_VERSION = re.compile(r"^\d+$")  # TF Serving's version folders: digits only (`00000123` is version 123)


def is_saved_model(folder):
    """Whether `folder` holds a SavedModel (`saved_model.pb` or `saved_model.pbtxt`)."""
    return any(os.path.isfile(os.path.join(folder, name)) for name in SAVED_MODEL_FILES)


def _numeric_folders(base_path):
    """Version number -> path of every numeric entry of `base_path` (none if it is not a folder)."""
    if not os.path.isdir(base_path):
        return {}
    return {int(name): os.path.join(base_path, name) for name in os.listdir(base_path) if _VERSION.match(name)}


def versions_on_disk(base_path):
    """Version number -> folder, for the numeric folders of `base_path` that hold a SavedModel."""
    return {version: folder for version, folder in _numeric_folders(base_path).items() if is_saved_model(folder)}


def next_version(base_path):
    """1 + the highest numeric version folder in `base_path` (1 for a new model)."""
    return max(_numeric_folders(base_path), default=0) + 1


def version_folder(model_path):
    """The SavedModel folder to load from `model_path`, as TF Serving picks it from a base path.

    Args:
        model_path: A SavedModel version folder (it holds `saved_model.pb`), or a model base path holding
            numeric version folders, of which the highest version holding a SavedModel is taken.

    Returns:
        The absolute path of the version folder.
    """
    model_path = os.path.abspath(os.fspath(model_path))
    if not os.path.isdir(model_path):
        raise ValueError(f"`model_path` must be a SavedModel or export folder. Received: {model_path} does not exist")
    if is_saved_model(model_path):
        return model_path
    versions = versions_on_disk(model_path)
    if not versions:
        raise ValueError(
            "`model_path` must hold a SavedModel (saved_model.pb) or numeric version folders that do, as "
            f"`serving.export_model` writes them. Received: {model_path}, holding {sorted(os.listdir(model_path))[:20]}"
        )
    return versions[max(versions)]

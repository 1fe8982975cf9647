"""serving.contract: the key, the signature names and the version folders, shared by export, server and readers."""

import os
import subprocess
import sys

import pytest

from serving import contract

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_rest_client_loads_neither_keras_nor_tensorflow():
    code = (
        "import sys\n"
        "import serving\n"
        "from serving.client import ClientError, RestClient\n"
        "from serving.contract import KEY, version_folder\n"
        "client = RestClient('http://127.0.0.1:1', model='text')\n"
        "assert client.predict_body({'text': ['fine']})['inputs'] == {'text': ['fine']}\n"
        "assert serving.KEY == KEY == 'key' and serving.KEYED_SIGNATURE == client.signature_name\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'tf_keras'))\n"
        "print(loaded)\n"
    )
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "[]\n"


def _saved_model(folder):
    os.makedirs(folder)
    open(os.path.join(folder, "saved_model.pb"), "wb").close()


def test_version_folders_as_tf_serving_reads_them(tmp_path):
    base = tmp_path / "text"
    assert contract.versions_on_disk(base) == {} and contract.next_version(base) == 1
    _saved_model(base / "2")
    _saved_model(base / "0010")  # version 10, written with leading zeros
    (base / "11").mkdir()  # being copied: no saved_model.pb yet
    _saved_model(base / ".tmp-12-x")  # an export's staging folder: not a version
    assert contract.versions_on_disk(base) == {2: str(base / "2"), 10: str(base / "0010")}
    assert contract.next_version(base) == 12  # never a folder that exists, complete or not
    assert contract.version_folder(base) == str(base / "0010")
    assert contract.version_folder(base / "2") == str(base / "2")
    with pytest.raises(ValueError, match=r"`model_path` must hold a SavedModel \(saved_model.pb\) or numeric"):
        contract.version_folder(base / "11")
    with pytest.raises(ValueError, match="does not exist"):
        contract.version_folder(tmp_path / "missing")

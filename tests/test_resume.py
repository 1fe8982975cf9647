import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import blobs, small_classifier

import recipes

JOB = os.path.join(os.path.dirname(__file__), "_resumable_job.py")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def _recorded_epochs(state_path):
    try:
        with open(state_path) as f:
            return [r["epoch"] for r in json.load(f)["records"]]
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def _kill_after(run_dir, epochs):
    """Runs the job until `epochs` virtual epochs are recorded, then SIGKILLs it.

    The record is written just before the epoch's backup, so the kill tends to
    land while the backup is being written: the worst moment.
    """
    state_path = run_dir / "checkpoints" / "checkpoints.json"
    job = subprocess.Popen([sys.executable, JOB, str(run_dir), "0.05"], cwd=os.path.dirname(JOB), env=ENV)
    deadline = time.monotonic() + 120
    while len(_recorded_epochs(state_path)) < epochs and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.01)
    job.send_signal(signal.SIGKILL)
    job.wait()
    recorded = _recorded_epochs(state_path)
    assert epochs <= len(recorded) < 6, f"the job was not killed mid-run: {recorded}"


@pytest.mark.slow
def test_sigkilled_run_resumes_and_finishes_the_planned_steps(tmp_path):
    _kill_after(tmp_path, 2)
    _kill_after(tmp_path, 4)  # killed again after resuming
    assert not (tmp_path / "steps.txt").exists()

    subprocess.run([sys.executable, JOB, str(tmp_path), "0"], cwd=os.path.dirname(JOB), env=ENV, check=True)
    steps, epochs_in_history = map(int, (tmp_path / "steps.txt").read_text().split())
    assert steps == 6 * 8  # the planned steps, neither more (re-run epochs) nor fewer
    assert epochs_in_history == 6
    state = json.loads((tmp_path / "checkpoints" / "checkpoints.json").read_text())
    assert [r["epoch"] for r in state["records"]] == [1, 2, 3, 4, 5, 6]
    assert state["finished"]
    kept = sorted(name for name in os.listdir(tmp_path / "checkpoints") if name.endswith(".keras"))
    assert len(kept) <= 3 and any(name.startswith("epoch-006-") for name in kept)
    assert not (tmp_path / "checkpoints" / "backup").exists()


def test_epoch_backup_restores_the_newest_complete_backup(tmp_path):
    model = small_classifier()
    model.fit(*blobs(40), epochs=1, verbose=0)
    backup = recipes.EpochBackup(tmp_path)
    backup.set_model(model)
    backup.on_epoch_end(0)
    backup.on_epoch_end(1)
    (tmp_path / "partial-epoch-000003.weights.h5").write_bytes(b"cut short by a kill")
    assert sorted(os.listdir(tmp_path)) == ["epoch-000002.weights.h5", "partial-epoch-000003.weights.h5"]

    fresh = small_classifier()
    assert backup.restore(fresh) == 2
    assert int(fresh.optimizer.iterations) == int(model.optimizer.iterations) == 2
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert recipes.EpochBackup(tmp_path / "none").restore(small_classifier()) == 0

import json
import os
import signal
import subprocess
import sys
import time

JOB = os.path.join(os.path.dirname(__file__), "_resumable_job.py")


def _recorded_epochs(state_path):
    try:
        with open(state_path) as f:
            return [r["epoch"] for r in json.load(f)["records"]]
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def test_sigkilled_run_resumes_and_finishes_the_planned_steps(tmp_path):
    state_path = tmp_path / "checkpoints" / "checkpoints.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    job = subprocess.Popen([sys.executable, JOB, str(tmp_path), "0.05"], cwd=os.path.dirname(JOB), env=env)
    deadline = time.monotonic() + 120
    while len(_recorded_epochs(state_path)) < 2 and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait()
    killed_at = _recorded_epochs(state_path)
    assert 2 <= len(killed_at) < 6, f"the job was not killed mid-run: {killed_at}"
    assert not (tmp_path / "steps.txt").exists()

    subprocess.run([sys.executable, JOB, str(tmp_path), "0"], cwd=os.path.dirname(JOB), env=env, check=True)
    steps, epochs_in_history = map(int, (tmp_path / "steps.txt").read_text().split())
    assert steps == 6 * 8  # the planned steps, neither more (re-run epochs) nor fewer
    assert epochs_in_history == 6
    state = json.loads(state_path.read_text())
    assert [r["epoch"] for r in state["records"]] == [1, 2, 3, 4, 5, 6]
    assert state["finished"]
    kept = sorted(name for name in os.listdir(tmp_path / "checkpoints") if name.endswith(".keras"))
    assert len(kept) <= 3 and any(name.startswith("epoch-006-") for name in kept)

"""`recipes.fit` under tf.distribute: two local workers (MultiWorkerMirroredStrategy) and MirroredStrategy on the CPU.

Run as a script (`python test_distribute.py RUN_DIR [DIE_AT_STEP]`) this file is
the worker job that `run_local_cluster` starts.
"""

import json
import os
import signal
import sys

import numpy as np
import pytest
from conftest import blobs, small_classifier

import recipes
from recipes import distribute

HERE = os.path.dirname(os.path.abspath(__file__))
# 4 virtual epochs of 5 steps of a global batch of 20 (10 per worker).
BATCH, EPOCHS, STEPS = 20, 4, 5
DIE_AT_STEP = 12  # the chief SIGKILLs itself in epoch 3, after the backup of epoch 2


def _worker(run_dir, die_at_step):
    import keras
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    index = strategy.cluster_resolver.task_id

    class Die(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if distribute.is_chief(strategy) and int(self.model.optimizer.iterations.numpy()) == die_at_step:
                os.kill(os.getpid(), signal.SIGKILL)

    recipes.set_seed(0)
    with strategy.scope():
        model = small_classifier()
    result = recipes.fit(
        model,
        blobs(300),
        validation_data=blobs(61, seed=1),  # 31 and 30 examples: uneven shards
        batch_size=BATCH,
        total_examples=BATCH * STEPS * EPOCHS,
        num_checkpoints=EPOCHS,
        directory=os.path.join(run_dir, "checkpoints"),
        keep_best=2,
        early_stopping_patience=3,
        callbacks=[Die()] if die_at_step else [],
        verbose=2,
    )
    np.savez(os.path.join(run_dir, f"weights-{index}.npz"), *model.get_weights())
    report = {
        "steps": int(model.optimizer.iterations.numpy()),
        "steps_per_epoch": result.steps_per_epoch,
        "history": result.history,
        "best_checkpoints": result.best_checkpoints,
        "chief": distribute.is_chief(strategy),
    }
    with open(os.path.join(run_dir, f"worker-{index}.json"), "w") as f:
        json.dump(report, f)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A two-worker run killed mid-epoch (the chief dies), then restarted to the end: `(run_dir, killed, finished)`."""
    run_dir = tmp_path_factory.mktemp("cluster")
    (run_dir / "tmp").mkdir()  # the workers' temporary folders, which a killed worker leaves behind
    options = dict(workers=2, cwd=HERE, timeout=240, stream=None, env={**os.environ, "TMPDIR": str(run_dir / "tmp")})
    with pytest.raises(distribute.ClusterError) as killed:
        distribute.run_local_cluster([__file__, run_dir, DIE_AT_STEP], **options)
    finished = distribute.run_local_cluster([__file__, run_dir], **options)
    return run_dir, killed.value.run, finished


def _reports(run_dir):
    return [json.loads((run_dir / f"worker-{i}.json").read_text()) for i in range(2)]


@pytest.mark.slow
def test_a_killed_worker_stops_the_cluster_with_a_clear_error(cluster):
    _, killed, _ = cluster
    assert killed.failed_worker == 0 and killed.returncodes[0] == -signal.SIGKILL
    assert killed.returncodes[1] != 0  # killed by the launcher, not left waiting in a collective
    assert "FAILED: worker 0 exited with code -9" in str(killed)
    assert "Epoch 3/4" in killed.logs[0] and "Epoch" not in killed.logs[1]  # only the chief logs


@pytest.mark.slow
def test_two_workers_resume_and_finish_the_planned_steps_with_identical_weights(cluster):
    run_dir, _, finished = cluster
    assert finished.ok and finished.returncodes == (0, 0)
    assert "resuming" in finished.logs[0] and "after virtual epoch 2" in finished.logs[0]
    chief, worker = _reports(run_dir)
    assert chief["chief"] and not worker["chief"]
    # The plan is per cluster: 5 steps of the global batch of 20 per virtual epoch, not per worker.
    assert chief["steps_per_epoch"] == STEPS
    assert chief["steps"] == worker["steps"] == EPOCHS * STEPS
    assert chief["history"] == worker["history"]
    assert len(chief["history"]["val_loss"]) == EPOCHS and chief["history"]["val_accuracy"][-1] > 0.9
    weights = [np.load(run_dir / f"weights-{i}.npz") for i in range(2)]
    assert len(weights[0].files) == 4
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name])


@pytest.mark.slow
def test_only_the_chief_writes_the_best_k_checkpoints(cluster):
    run_dir, _, _ = cluster
    chief, worker = _reports(run_dir)
    checkpoints = run_dir / "checkpoints"
    state = json.loads((checkpoints / "checkpoints.json").read_text())
    assert [r["epoch"] for r in state["records"]] == [1, 2, 3, 4] and state["finished"]
    kept = sorted(p.name for p in checkpoints.glob("*.keras"))
    assert len(kept) <= 3 and any(name.startswith("epoch-004-") for name in kept)
    assert chief["best_checkpoints"] == worker["best_checkpoints"]
    assert 1 <= len(chief["best_checkpoints"]) <= 2 and all(os.path.exists(p) for p in chief["best_checkpoints"])
    assert not (checkpoints / "backup").exists()
    leftovers = [name for name in os.listdir(run_dir / "tmp") if name.startswith("recipes-worker-")]
    # The finished run's worker removed its scratch folder; the killed run's worker 1 may have left one, if it
    # got as far as creating it before the launcher stopped it (timing-dependent).
    assert len(leftovers) <= 1, leftovers


def test_run_local_cluster_gives_each_worker_its_tf_config(tmp_path):
    script = tmp_path / "show.py"
    script.write_text(
        "import json, os; c = json.loads(os.environ['TF_CONFIG']); print(c['task']['index'], len(c['cluster']['worker']))"
    )
    run = distribute.run_local_cluster([script], workers=3, timeout=60, stream=None)
    assert run.ok and [log.split() for log in run.logs] == [["0", "3"], ["1", "3"], ["2", "3"]]
    assert str(run).startswith("OK: 3 workers finished")
    ports = {json.loads(c)["cluster"]["worker"][0] for c in distribute.local_tf_configs(2)}
    assert len(ports) == 1


@pytest.mark.slow
def test_run_local_cluster_times_out_instead_of_hanging(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text("import time; print('waiting', flush=True); time.sleep(60)")
    with pytest.raises(distribute.ClusterError, match="ran past its timeout") as error:
        distribute.run_local_cluster([script], workers=2, timeout=2, stream=None)
    assert error.value.run.timed_out and error.value.run.seconds < 30


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(args="train.py"), "non-empty list"),
        (dict(args=["x.py"], workers=0), "workers=0"),
        (dict(args=["x.py"], timeout=0), "timeout=0"),
        (dict(args=["x.py"], stream="file"), "stream='file'"),
    ],
)
def test_run_local_cluster_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        distribute.run_local_cluster(**kwargs)


# -- MirroredStrategy on the CPU, in this process ----------------------------------------------


def _mirrored_model():
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        return strategy, small_classifier()


@pytest.mark.slow
def test_custom_loop_trains_as_keras_fit_does_under_mirrored_strategy():
    # Full-batch steps: every step sees all 40 examples, so the shuffles cannot make the runs differ.
    weights, histories = {}, {}
    for loop in ("keras", "custom"):
        recipes.set_seed(0)
        strategy, model = _mirrored_model()
        result = recipes.fit(
            model,
            blobs(40),
            validation_data=blobs(30, seed=1),
            batch_size=40,
            total_examples=40 * 6,
            num_checkpoints=2,
            strategy=strategy,
            loop=loop,
            verbose=0,
        )
        assert int(model.optimizer.iterations.numpy()) == 6
        weights[loop], histories[loop] = model.get_weights(), result.history
    for a, b in zip(weights["keras"], weights["custom"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert sorted(histories["keras"]) == sorted(histories["custom"])
    for name, values in histories["keras"].items():
        np.testing.assert_allclose(values, histories["custom"][name], rtol=1e-4, atol=1e-5)


class _Crash(Exception):
    pass


@pytest.mark.slow
def test_mirrored_strategy_resumes_a_crashed_run_with_the_planned_steps(tmp_path):
    # The default loop under MirroredStrategy is Keras's model.fit; the two-worker test covers the custom one.
    import keras

    class CrashInEpoch3(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == 2 * STEPS + 2:
                raise _Crash()

    arguments = dict(
        validation_data=blobs(61, seed=1),
        batch_size=BATCH,
        total_examples=BATCH * STEPS * EPOCHS,
        num_checkpoints=EPOCHS,
        directory=tmp_path,
        keep_best=2,
        verbose=0,
    )
    strategy, model = _mirrored_model()
    with pytest.raises(_Crash):
        recipes.fit(model, blobs(300), strategy=strategy, callbacks=[CrashInEpoch3()], **arguments)
    strategy, model = _mirrored_model()
    result = recipes.fit(model, blobs(300), strategy=strategy, **arguments)
    assert int(model.optimizer.iterations.numpy()) == EPOCHS * STEPS
    assert len(result.history["loss"]) == EPOCHS and result.history["val_accuracy"][-1] > 0.9
    assert 1 <= len(result.best_checkpoints) <= 2 and all(os.path.exists(p) for p in result.best_checkpoints)
    assert not (tmp_path / "backup").exists()


def test_fit_checks_the_loop_and_the_global_batch():
    strategy, model = _mirrored_model()
    with pytest.raises(ValueError, match="loop='fast'"):
        recipes.fit(model, blobs(40), batch_size=10, total_examples=100, num_checkpoints=2, loop="fast")
    assert distribute.per_replica_batch_size(10, strategy) == 10
    assert distribute.is_chief(strategy) and not distribute.is_multi_worker(strategy)


# -- GPU readiness, checked on the CPU ----------------------------------------------------------


def test_mixed_precision_switch_keeps_preprocessing_and_output_float32():
    import keras
    from models import vision
    from models.common import dtype_policy

    model = vision.cnn_classifier((8, 8), 2, augment=False, filters=(4,), mixed_precision=True)
    # By type, not by name: Keras numbers layer names per process ("conv2d_12" after other tests).
    dtypes = {type(layer).__name__: layer.compute_dtype for layer in model.layers}
    assert dtypes["Rescaling"] == "float32" and dtypes["Conv2D"] == "float16"
    assert dtypes["ClassProbabilities"] == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert all(w.dtype == "float32" for w in model.weights)
    assert keras.config.dtype_policy().name == "float32"  # restored after building
    images = np.random.default_rng(0).integers(0, 256, size=(16, 8, 8), dtype="uint8")
    history = model.fit(images, np.arange(16) % 2, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(images[:2], verbose=0).dtype == np.float32
    with pytest.raises(ValueError, match="mixed_precision='float16'"):
        with dtype_policy("float16"):
            pass


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)

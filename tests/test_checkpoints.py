import json
import os

import numpy as np
import pytest
from conftest import blobs, small_classifier

import recipes


def _files(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".keras"))


def _epochs_on_disk(directory):
    return sorted(int(name.split("-")[1]) for name in _files(directory))


def _run_epochs(checkpoint, model, values, first_epoch=1):
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    for epoch, value in enumerate(values, start=first_epoch):
        checkpoint.on_epoch_end(epoch - 1, {"loss": value, "val_loss": value})


def test_keeps_best_k_and_last_and_survives_restart(tmp_path):
    model = small_classifier()
    checkpoint = recipes.BestKCheckpoint(tmp_path, monitor="val_loss", keep_best=2)
    _run_epochs(checkpoint, model, [5.0, 3.0, 4.0, 1.0, 2.0, 6.0])
    # best two: epoch 4 (1.0) and 5 (2.0); last: epoch 6
    assert _epochs_on_disk(tmp_path) == [4, 5, 6]
    assert [os.path.basename(p) for p in checkpoint.best_checkpoints] == [
        "epoch-004-val_loss=1.0000.keras",
        "epoch-005-val_loss=2.0000.keras",
    ]
    assert checkpoint.last_checkpoint.endswith("epoch-006-val_loss=6.0000.keras")

    restarted = recipes.BestKCheckpoint(tmp_path, monitor="val_loss", keep_best=2)
    assert restarted.best_checkpoints == checkpoint.best_checkpoints
    assert restarted.history["val_loss"] == [5.0, 3.0, 4.0, 1.0, 2.0, 6.0]
    _run_epochs(restarted, model, [0.5], first_epoch=7)
    assert _epochs_on_disk(tmp_path) == [4, 7]
    assert [os.path.basename(p) for p in restarted.best_checkpoints][0] == "epoch-007-val_loss=0.5000.keras"
    state = json.load(open(tmp_path / "checkpoints.json"))
    assert [r["epoch"] for r in state["records"]] == [1, 2, 3, 4, 5, 6, 7]
    assert [r["epoch"] for r in state["records"] if r["path"]] == [4, 7]


def test_checkpoints_are_full_models(tmp_path):
    import keras

    model = small_classifier()
    model.optimizer.build(model.trainable_variables)
    checkpoint = recipes.BestKCheckpoint(tmp_path, monitor="loss", keep_best=1)
    _run_epochs(checkpoint, model, [1.0])
    restored = keras.saving.load_model(checkpoint.best_checkpoints[0])
    x, _ = blobs(5)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_max_mode_and_crash_leftovers(tmp_path):
    model = small_classifier()
    (tmp_path / "epoch-009-val_accuracy=0.9000.keras").write_text("left by a crash before the record")
    checkpoint = recipes.BestKCheckpoint(tmp_path, monitor="val_accuracy", keep_best=1)
    assert checkpoint.mode == "max"
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    for epoch, value in enumerate([0.5, 0.8, 0.7]):
        checkpoint.on_epoch_end(epoch, {"val_accuracy": value})
    assert _epochs_on_disk(tmp_path) == [2, 3]


def test_restart_with_other_settings_is_refused(tmp_path):
    _run_epochs(recipes.BestKCheckpoint(tmp_path, monitor="val_loss"), small_classifier(), [1.0])
    with pytest.raises(ValueError, match="monitor='val_loss'.*Received: monitor='val_accuracy'"):
        recipes.BestKCheckpoint(tmp_path, monitor="val_accuracy")


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(keep_best=0), "keep_best=0"), (dict(mode="up"), "mode='up'"), (dict(monitor=""), "monitor=''")],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        recipes.BestKCheckpoint(tmp_path, **kwargs)


def test_fit_keeps_best_k_plus_last_on_disk(tmp_path, blob_data):
    (x, y), validation = blob_data
    result = recipes.fit(
        small_classifier(learning_rate=0.2),  # large steps: val_loss goes up and down
        (x, y),
        validation_data=validation,
        batch_size=16,
        total_examples=16 * 6 * 6,
        num_checkpoints=6,
        directory=tmp_path,
        keep_best=2,
        verbose=0,
    )
    val_loss = result.history["val_loss"]
    assert len(val_loss) == 6
    best_two = sorted(range(6), key=lambda i: (val_loss[i], i))[:2]
    kept = sorted({e + 1 for e in best_two} | {6})
    assert _epochs_on_disk(tmp_path) == kept
    assert [int(os.path.basename(p).split("-")[1]) for p in result.best_checkpoints] == [e + 1 for e in best_two]
    assert result.last_checkpoint.endswith(f"epoch-006-val_loss={val_loss[-1]:.4f}.keras")
    assert not os.path.exists(tmp_path / "backup")  # removed when the run finished


def test_finished_run_is_not_trained_again(tmp_path, blob_data):
    train, validation = blob_data
    arguments = dict(
        validation_data=validation,
        batch_size=30,
        total_examples=300,
        num_checkpoints=2,
        directory=tmp_path,
        verbose=0,
    )
    trained = small_classifier()
    first = recipes.fit(trained, train, **arguments)
    again = small_classifier()
    second = recipes.fit(again, train, **arguments)
    # Loaded, weights and optimizer state, not trained again.
    assert int(again.optimizer.iterations) == int(trained.optimizer.iterations) == 10
    assert second.history == first.history
    for a, b in zip(trained.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="already holds a run of 2 epoch"):
        recipes.fit(small_classifier(), train, resume=False, **arguments)


def test_early_stopping_restores_best_weights(tmp_path):
    import keras

    # Training loss falls every epoch, so with mode="max" the first epoch stays the best one.
    result = recipes.fit(
        small_classifier(),
        blobs(200),
        batch_size=20,
        total_examples=20 * 5 * 10,
        num_checkpoints=10,
        directory=tmp_path,
        monitor="loss",
        mode="max",
        early_stopping_patience=2,
        verbose=0,
    )
    assert result.stopped_early and len(result.history["loss"]) == 3
    best = keras.saving.load_model(result.best_checkpoints[0])
    assert os.path.basename(result.best_checkpoints[0]).startswith("epoch-001-")
    state = json.load(open(tmp_path / "checkpoints.json"))
    assert state["finished"] and state["final_epoch"] == 1


def test_early_stopping_without_checkpoints_uses_keras():
    result = recipes.fit(
        small_classifier(),
        blobs(200),
        batch_size=20,
        total_examples=2000,
        num_checkpoints=10,
        monitor="loss",
        mode="max",
        early_stopping_patience=2,
        verbose=0,
    )
    assert result.stopped_early and len(result.history["loss"]) == 3


def test_early_stopping_patience_counts_epochs_before_a_restart(tmp_path):
    model = small_classifier()
    checkpoint = recipes.BestKCheckpoint(tmp_path, monitor="val_loss")
    _run_epochs(checkpoint, model, [1.0, 2.0, 3.0])  # best at epoch 1, then two worse epochs
    restarted = recipes.BestKCheckpoint(tmp_path, monitor="val_loss")
    stopping = recipes.ResumableEarlyStopping(restarted, patience=3)
    _run_epochs(restarted, model, [4.0], first_epoch=4)
    stopping.set_model(model)
    stopping.on_epoch_end(3, {"val_loss": 4.0})
    assert model.stop_training and stopping.stopped_epoch == 4
    assert restarted.final_epoch == 1

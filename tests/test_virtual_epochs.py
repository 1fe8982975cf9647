import numpy as np
import pytest
import tensorflow as tf
from conftest import blobs

import recipes


def test_virtual_steps_per_epoch_arithmetic():
    assert recipes.virtual_steps_per_epoch(14_000_000, 100, 20) == 7000
    assert recipes.virtual_steps_per_epoch(1000, 32, 3) == 1000 // 96
    assert recipes.virtual_steps_per_epoch(96, 32, 3) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        ((50, 32, 3), "total_examples=50"),
        ((1000, 0, 3), "batch_size=0"),
        ((1000, 32, 0), "num_checkpoints=0"),
        ((1000.0, 32, 3), "total_examples=1000.0"),
    ],
)
def test_virtual_steps_per_epoch_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        recipes.virtual_steps_per_epoch(*args)


def test_more_data_does_not_mean_more_steps(model_fn):
    steps = []
    for num_examples in (200, 300):  # the data set grows by 50%
        recipes.set_seed(0)
        model = model_fn()
        result = recipes.fit(
            model, blobs(num_examples), batch_size=20, total_examples=2000, num_checkpoints=4, verbose=0
        )
        assert result.steps_per_epoch == 2000 // (20 * 4)
        assert len(result.history["loss"]) == 4
        steps.append(int(model.optimizer.iterations))
    assert steps == [100, 100]


def test_finite_data_never_runs_out(model_fn):
    # 10 passes over 50 examples: the pipeline repeats instead of ending the epoch early.
    model = model_fn()
    result = recipes.fit(model, blobs(50), batch_size=16, total_examples=500, num_checkpoints=2, verbose=0)
    assert int(model.optimizer.iterations) == 2 * result.steps_per_epoch == 30


def test_fit_accepts_dicts_and_datasets(model_fn):
    x, y = blobs(120)
    dict_model = model_fn()
    recipes.fit(dict_model, ({"features": x}, y), batch_size=10, total_examples=120, num_checkpoints=2, verbose=0)
    assert int(dict_model.optimizer.iterations) == 2 * 6
    dataset_model = model_fn()
    result = recipes.fit(
        dataset_model,
        tf.data.Dataset.from_tensor_slices((x, y)),
        validation_data=tf.data.Dataset.from_tensor_slices((x[:30], y[:30])),
        batch_size=10,
        total_examples=240,
        num_checkpoints=3,
        verbose=0,
    )
    assert int(dataset_model.optimizer.iterations) == 3 * 8
    assert len(result.history["val_loss"]) == 3


def test_fit_learns(model_fn, blob_data):
    (x, y), (x_val, y_val) = blob_data
    model = model_fn()
    result = recipes.fit(
        model, (x, y), validation_data=(x_val, y_val), batch_size=32, total_examples=3000, num_checkpoints=3, verbose=0
    )
    assert result.history["val_accuracy"][-1] > 0.9


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(monitor="val_loss", early_stopping_patience=2), "no `validation_data`"),
        (dict(keep_best=0, directory="unused"), "keep_best=0"),
        (dict(early_stopping_patience=0), "early_stopping_patience=0"),
        (dict(mode="largest"), "mode='largest'"),
        (dict(total_examples=10), "total_examples=10"),
    ],
)
def test_fit_rejects_bad_arguments(model_fn, kwargs, message):
    arguments = dict(batch_size=10, total_examples=100, num_checkpoints=2, monitor="loss", verbose=0)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        recipes.fit(model_fn(), blobs(40), **arguments)


def test_fit_rejects_bad_data(model_fn):
    x, y = blobs(40)
    with pytest.raises(
        ValueError,
        match=r"one row per example in every array. Received lengths: \{'train_data x': 40, 'train_data y': 30\}",
    ):
        recipes.fit(model_fn(), (x, y[:30]), batch_size=10, total_examples=100, num_checkpoints=2, monitor="loss")
    with pytest.raises(ValueError, match="Received: ndarray"):
        recipes.fit(model_fn(), x, batch_size=10, total_examples=100, num_checkpoints=2, monitor="loss")
    with pytest.raises(ValueError, match="infinite"):
        recipes.fit(
            model_fn(),
            tf.data.Dataset.from_tensor_slices((x, y)).repeat(),
            batch_size=10,
            total_examples=100,
            num_checkpoints=2,
            monitor="loss",
        )


def test_fit_rejects_uncompiled_model(model_fn):
    import keras

    inputs = keras.Input(shape=(8,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    with pytest.raises(ValueError, match="must be compiled"):
        recipes.fit(model, blobs(40), batch_size=10, total_examples=100, num_checkpoints=2, monitor="loss")


def test_unlogged_monitor_names_what_was_logged(model_fn, tmp_path):
    with pytest.raises(ValueError, match=r"monitors 'val_auc'.*\['accuracy', 'loss', 'val_accuracy', 'val_loss'\]"):
        recipes.fit(
            model_fn(),
            blobs(40),
            validation_data=blobs(20),
            batch_size=10,
            total_examples=100,
            num_checkpoints=2,
            monitor="val_auc",
            directory=tmp_path,
            verbose=0,
        )


def test_mirrored_strategy_on_cpu(model_fn):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = model_fn()
    result = recipes.fit(
        model, blobs(100), batch_size=10, total_examples=200, num_checkpoints=2, strategy=strategy, verbose=0
    )
    assert int(model.optimizer.iterations.numpy()) == 2 * result.steps_per_epoch == 20
    with pytest.raises(ValueError, match="strategy.scope"):
        recipes.fit(model_fn(), blobs(100), batch_size=10, total_examples=200, num_checkpoints=2, strategy=strategy)
    assert np.isfinite(result.history["loss"]).all()

"""recipes.debug.mode_check on real Keras models and the digits: correct models pass, planted bugs are named."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import recipes
import recipes.debug
from models import vision
from recipes.debug import ModeReport, mode_check


@pytest.fixture(scope="module")
def digits():
    images, labels = recipes.datasets.load_digits()
    return images[:64], labels[:64]


class AlwaysDropout(keras.layers.Layer):
    """Bug: dropout whatever the mode (its call takes no `training`)."""

    def call(self, x):
        return keras.random.dropout(x, 0.5)


class NoisyAugmentation(keras.layers.Layer):
    """Bug: takes `training` but adds its noise at inference too."""

    def call(self, x, training=None):
        return x + keras.random.normal(keras.ops.shape(x), stddev=0.05)


def dense_digits(*, batch_norm=None, frozen=False, extra=None):
    image = keras.Input((8, 8), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1 / 255)(keras.layers.Flatten()(image))
    x = keras.layers.Dense(32, activation="relu", name="hidden")(x)
    if batch_norm is not None:
        norm = keras.layers.BatchNormalization(momentum=batch_norm, name="norm")
        norm.trainable = not frozen
        x = norm(x)
    if extra is not None:
        x = extra(x)
    x = keras.layers.Dropout(0.3, name="dropout")(x)
    model = keras.Model(image, keras.layers.Dense(10, activation="softmax", name="probabilities")(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def weights_equal(before, after):
    return len(before) == len(after) and all(np.array_equal(a, b) for a, b in zip(before, after))


# -- correct models ------------------------------------------------------------------------------------


def test_cnn_classifier_passes_and_is_left_unchanged(digits):
    images, _ = digits
    augment = vision.augmentation(rotation=0.05)  # the default augments nothing on digits: no flips
    model = vision.cnn_classifier((8, 8), 10, augment=augment)  # train-only augmentation, dropout, batch norm
    before = model.get_weights()
    report = mode_check(model, images)
    assert isinstance(report, ModeReport)
    assert report.verdict == "pass" and report.deterministic
    assert report.ok and str(report).startswith("PASS: inference is deterministic (3 calls at training=False)")
    assert report.summary.endswith("; 1 note(s)") and report.advice[0].startswith(f"(note) {model.name}: model(x)")
    # Keras random image layers default to training=True: model(x) without `training` augments. A note says so.
    (note,) = report.findings
    assert note.severity == "note" and note.layer == model.name
    assert "augmentation/random_rotation" in note.problem and "model(x, training=False)" in note.fix
    assert weights_equal(before, model.get_weights())


def test_batch_normalization_that_learns_passes(digits):
    model = dense_digits(batch_norm=0.99)
    before = model.get_weights()
    report = mode_check(model, digits[0])
    assert report.verdict == "pass" and report.batch_norm_layers == 1, report.advice
    assert weights_equal(before, model.get_weights())  # the moving statistics it moved are restored


# -- planted bugs ----------------------------------------------------------------------------------------


def test_custom_dropout_ignoring_training_is_named(digits):
    model = dense_digits(extra=AlwaysDropout(name="always_dropout"))
    report = mode_check(model, digits[0])
    assert report.verdict == "fail" and not report.deterministic
    assert [f.layer for f in report.findings] == ["always_dropout"]
    assert "takes no `training`" in report.findings[0].problem
    assert "`training=None` to AlwaysDropout.call" in report.findings[0].fix
    assert report.advice[0].startswith("always_dropout: ") and report.summary.endswith("; 1 problem(s)")


def test_augmentation_active_at_inference_is_named_inside_its_block(digits):
    augment = keras.Sequential([NoisyAugmentation(name="noise")], name="augmentation")
    model = vision.cnn_classifier((8, 8), 10, augment=augment)
    report = mode_check(model, digits[0])
    assert report.verdict == "fail"
    assert [f.layer for f in report.findings] == ["augmentation/noise"]
    assert "receives training=False" in report.findings[0].problem
    assert "if training:" in report.findings[0].fix


def test_dropout_called_with_training_true_at_build_is_a_note(digits):
    image = keras.Input((8, 8), dtype="uint8")
    x = keras.layers.Dense(16)(keras.layers.Rescaling(1 / 255)(keras.layers.Flatten()(image)))
    x = keras.layers.Dropout(0.5, name="mc_dropout")(x, training=True)
    model = keras.Model(image, keras.layers.Dense(10)(x))
    report = mode_check(model, digits[0])
    # training=False (and predict) override it; model(x) does not.
    assert report.verdict == "pass" and report.deterministic
    (note,) = report.findings
    assert note.severity == "note" and "mc_dropout run as in training" in note.problem


def test_batch_normalization_with_momentum_one_is_named(digits):
    model = dense_digits(batch_norm=1.0)
    before = model.get_weights()
    report = mode_check(model, digits[0])
    assert report.verdict == "fail" and report.deterministic
    assert [f.layer for f in report.findings] == ["norm"]
    assert "momentum=1" in report.findings[0].problem and "momentum=0.99" in report.findings[0].fix
    assert weights_equal(before, model.get_weights())


class NormBlock(keras.layers.Layer):
    """Bug: calls its BatchNormalization with training=False, so it never learns its statistics."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norm = keras.layers.BatchNormalization(name="inner_norm")

    def call(self, x):
        return self.norm(x, training=False)


def test_batch_normalization_kept_in_inference_mode_is_named(digits):
    model = dense_digits(extra=NormBlock(name="block"))
    report = mode_check(model, digits[0])
    assert report.verdict == "fail" and report.batch_norm_layers == 1
    assert [f.layer for f in report.findings] == ["block/inner_norm"]
    assert "inference mode in training" in report.findings[0].problem
    assert "`training=training`" in report.findings[0].fix


def test_frozen_batch_normalization_is_a_note(digits):
    model = dense_digits(batch_norm=0.99, frozen=True)
    report = mode_check(model, digits[0])
    assert report.verdict == "pass"
    assert [(f.layer, f.severity) for f in report.findings] == [("norm", "note")]
    assert report.advice == (f"(note) {report.findings[0]}",)
    assert report.advice[0].startswith("(note) norm: BatchNormalization frozen (trainable=False)")


# -- custom training loops -----------------------------------------------------------------------------


def make_step(model, labels, training):
    optimizer = keras.optimizers.SGD(0.01)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            probabilities = model(x, training=True) if training else model(x)
            loss = loss_fn(labels, probabilities)
        gradients = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(gradients, model.trainable_weights))
        return loss

    return step


@pytest.mark.parametrize("training", [True, False])
def test_training_step_must_pass_training_true(digits, training):
    images, labels = digits
    model = dense_digits(batch_norm=0.99)
    step = make_step(model, labels, training)
    step(images)  # traced before the check: the check still sees the call
    before = model.get_weights()
    report = mode_check(model, images, train_step=step)
    assert weights_equal(before, model.get_weights())
    assert not tf.config.functions_run_eagerly()
    if training:
        assert report.verdict == "pass" and report.findings == [], report.advice
    else:
        assert report.verdict == "fail"
        (finding,) = report.findings
        assert finding.layer == model.name and "training=None" in finding.problem
        assert "Dropout" in finding.problem and "model(x, training=True)" in finding.fix


# -- arguments and exports -----------------------------------------------------------------------------


def test_arguments_are_checked(digits):
    model = dense_digits()
    with pytest.raises(ValueError, match="`repeats` must be an int >= 2. Received: repeats=1"):
        mode_check(model, digits[0], repeats=1)
    with pytest.raises(ValueError, match="`model` must be a keras.Model"):
        mode_check(lambda x: x, digits[0])
    with pytest.raises(ValueError, match="`train_step` must be None or a callable"):
        mode_check(model, digits[0], train_step=3)


def test_the_report_is_json_ready(digits):
    import json

    report = mode_check(dense_digits(extra=AlwaysDropout(name="always_dropout")), digits[0])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdict"] == "fail" and data["ok"] is False and data["deterministic"] is False
    assert data["findings"][0]["layer"] == "always_dropout" and data["findings"][0]["severity"] == "error"
    assert report.plot("unused.png") is None  # no figure


def test_exported_lazily():
    assert recipes.debug.mode_check is mode_check
    assert {"mode_check", "ModeReport"} <= set(recipes.debug.__all__)

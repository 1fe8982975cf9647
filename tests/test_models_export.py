"""Every factory: trains on real data, round-trips through `.keras`, and serves the same answers without Keras."""

import os
import pickle
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import recipes
import serving
from models import audio, tabular, text, vision

# The module's fixture trains and exports every factory's model once: over a minute in all.
pytestmark = pytest.mark.slow

HERE = os.path.dirname(__file__)
ROWS = 6  # rows compared between the Keras model and the served SavedModel


def _text_data():
    reviews = recipes.datasets.load_rotten_tomatoes()
    rows = np.random.default_rng(0).permutation(len(reviews))[:400]
    return reviews.text.to_numpy()[rows], reviews.label.to_numpy()[rows]


def _audio_data():
    waveforms, labels, _ = recipes.datasets.load_spoken_digits(num_per_digit=8)
    return waveforms, labels


def _vision_data():
    images, labels = recipes.datasets.load_fashion_mnist("test")
    return images[:300], labels[:300]


def _tabular_frame():
    return recipes.datasets.load_seattle_weather().iloc[:400]


def _factories():
    """name -> (build(x, y) -> model, data() -> (x, y), raw input dtype as saved_model_cli prints it)."""
    names = ["rotten", "fresh"]
    fashion = recipes.datasets.FASHION_MNIST_CLASSES
    digits = recipes.datasets.DIGIT_WORDS
    return {
        "text_bag_of_words": (lambda x, y: text.bag_of_words_classifier(x, 2, names, max_tokens=2000), _text_data),
        "text_lstm": (lambda x, y: text.lstm_classifier(x, 2, names, max_tokens=2000, units=8), _text_data),
        "text_transformer": (lambda x, y: text.transformer_classifier(x, 2, names, max_tokens=2000), _text_data),
        "audio_mfcc_lstm": (lambda x, y: audio.mfcc_lstm_classifier(10, digits, units=16), _audio_data),
        "audio_mfcc_cnn": (lambda x, y: audio.mfcc_cnn_classifier(10, digits, filters=16), _audio_data),
        "audio_mfcc_linear": (lambda x, y: audio.mfcc_linear_classifier(10, digits), _audio_data),
        "vision_cnn": (lambda x, y: vision.cnn_classifier((28, 28), 10, fashion, filters=(8,)), _vision_data),
        "vision_linear": (lambda x, y: vision.linear_classifier((28, 28), 10, fashion), _vision_data),
        "vision_transfer": (
            lambda x, y: vision.transfer_classifier((28, 28), 10, fashion, input_size=32),
            _vision_data,
        ),
        "tabular_classifier": (None, None),
        "tabular_linear_classifier": (None, None),
        "tabular_regressor": (None, None),
    }


def _tabular(name):
    frame = _tabular_frame()
    if name == "tabular_regressor":
        model, target = tabular.regressor(frame, "temp_max", date_columns=["date"]), "temp_max"
    elif name == "tabular_linear_classifier":
        model, target = tabular.linear_classifier(frame, "weather", date_columns=["date"]), "weather"
    else:
        model, target = tabular.classifier(frame, "weather", date_columns=["date"]), "weather"
    x, y = tabular.to_xy(model, frame, target)
    return model, x, y


def _rows(x, n):
    return {k: v[:n] for k, v in x.items()} if isinstance(x, dict) else x[:n]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Each factory's model after a few training steps, its export, and sample raw inputs."""
    root = tmp_path_factory.mktemp("exports")
    results = {}
    for name, (build, data) in _factories().items():
        recipes.set_seed(0)
        if build is None:
            model, x, y = _tabular(name)
        else:
            x, y = data()
            model = build(x, y)
        trained = recipes.fit(model, (x, y), batch_size=32, total_examples=128, num_checkpoints=1, verbose=0)
        sample = _rows(x, ROWS)
        path = serving.export_model(model, root / name, warmup_inputs=_rows(x, 2))
        results[name] = dict(model=model, x=x, sample=sample, path=path, loss=trained.history["loss"][-1])
    return results


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory):
    """The answers of every export, computed in one fresh process that never imports Keras."""
    folder = tmp_path_factory.mktemp("served")
    jobs = {
        name: (
            r["path"],
            serving.to_serving_inputs(r["model"], r["sample"]),
            np.array([f"id-{i}" for i in range(ROWS)], dtype=object),
        )
        for name, r in trained.items()
    }
    with open(folder / "jobs.pkl", "wb") as f:
        pickle.dump(jobs, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(
        [
            sys.executable,
            os.path.join(HERE, "_serve_without_keras.py"),
            str(folder / "jobs.pkl"),
            str(folder / "out.pkl"),
        ],
        check=True,
        env=env,
        timeout=600,
    )
    with open(folder / "out.pkl", "rb") as f:
        return pickle.load(f)


NAMES = list(_factories())


@pytest.mark.parametrize("name", NAMES)
def test_trains_and_round_trips_through_keras_file(trained, name, tmp_path):
    result = trained[name]
    assert np.isfinite(result["loss"])
    path = tmp_path / "model.keras"
    result["model"].save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        restored.predict(result["sample"], verbose=0), result["model"].predict(result["sample"], verbose=0)
    )


@pytest.mark.parametrize("name", NAMES)
def test_served_answers_equal_the_keras_model(trained, served, name):
    """The training/serving skew test: same raw inputs, same outputs, keys back unchanged."""
    model, sample = trained[name]["model"], trained[name]["sample"]
    expected = model.predict(sample, verbose=0)
    first, second = served[name]
    assert [k.decode() for k in first["key"]] == [f"id-{i}" for i in range(ROWS)]
    for output in first:
        np.testing.assert_array_equal(first[output], second[output])  # no dropout or augmentation at serving
    if "probabilities" in first:
        np.testing.assert_allclose(first["probabilities"], expected, atol=1e-6)
        class_names = model.layers[-1].class_names
        assert [label.decode() for label in first["label"]] == [class_names[i] for i in expected.argmax(axis=1)]
    else:
        np.testing.assert_allclose(first["prediction"], expected[:, 0], atol=1e-5)


RAW_DTYPES = {"text": {"text": "DT_STRING"}, "audio": {"waveform": "DT_FLOAT"}, "vision": {"image": "DT_STRING"}}


@pytest.mark.parametrize("name", ["text_bag_of_words", "audio_mfcc_cnn", "vision_cnn", "tabular_classifier"])
def test_signature_dtypes_are_raw(trained, name):
    shown = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "saved_model_cli"),
            "show",
            "--all",
            "--dir",
            trained[name]["path"],
        ],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    ).stdout
    default = shown.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    inputs = dict(re.findall(r"inputs\['(\w+)'\] tensor_info:\s+dtype: (\w+)", default))
    expected = RAW_DTYPES.get(name.split("_")[0]) or {
        "date": "DT_STRING",
        "precipitation": "DT_FLOAT",
        "temp_max": "DT_FLOAT",
        "temp_min": "DT_FLOAT",
        "wind": "DT_FLOAT",
    }
    assert inputs == {**expected, "key": "DT_STRING"}
    assert "signature_def['without_key']" in shown


def _serve(trained, name, **inputs):
    signature = tf.saved_model.load(trained[name]["path"]).signatures["without_key"]
    return signature(**{k: tf.constant(v) for k, v in inputs.items()})


def test_bad_raw_input_gets_a_clear_error(trained):
    with pytest.raises(tf.errors.InvalidArgumentError, match="input `text` has empty strings at rows"):
        _serve(trained, "text_bag_of_words", text=np.array(["fine", "  "], dtype=object))
    keyed = tf.saved_model.load(trained["text_bag_of_words"]["path"]).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="same number of rows as `text`; `key` differs"):
        keyed(text=tf.constant(["good", "bad"]), key=tf.constant(["only-one"]))
    # A clip of another length is padded or cropped in the model, as in training (issue 15); bad WAV bytes fail.
    assert _serve(trained, "audio_mfcc_cnn", waveform=np.zeros((1, 8000), "float32"))["probabilities"].shape == (1, 10)
    with pytest.raises(tf.errors.InvalidArgumentError, match="RIFF|WAV|wav"):
        tf.saved_model.load(trained["audio_mfcc_cnn"]["path"]).signatures["audio"](
            audio=tf.constant([b"not a wav"]), key=tf.constant(["k"])
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format|decode"):
        _serve(trained, "vision_cnn", image=np.array([b"not an image"], dtype=object))
    row = serving.to_serving_inputs(
        trained["tabular_classifier"]["model"], _rows(trained["tabular_classifier"]["x"], 1)
    )
    row["date"] = np.array(["31/10/2019"], dtype=object)
    with pytest.raises(tf.errors.InvalidArgumentError, match="could not parse.*31/10/2019"):
        _serve(trained, "tabular_classifier", **row)


def test_image_serving_takes_mixed_formats_and_sizes(trained):
    images = trained["vision_cnn"]["sample"][:2]
    png = tf.io.encode_png(images[0][..., None]).numpy()
    jpeg = tf.io.encode_jpeg(tf.image.resize(images[1][..., None], (56, 40)).numpy().astype("uint8")).numpy()
    rgb = tf.io.encode_png(np.repeat(images[0][..., None], 3, axis=-1)).numpy()
    answer = _serve(trained, "vision_cnn", image=np.array([png, jpeg, rgb], dtype=object))
    assert answer["probabilities"].shape == (3, 10)
    expected = trained["vision_cnn"]["model"].predict(images[:1], verbose=0)
    np.testing.assert_allclose(answer["probabilities"][0], expected[0], atol=1e-6)
    np.testing.assert_allclose(answer["probabilities"][2], expected[0], atol=1e-6)  # RGB of the same grey image


def test_export_is_versioned_atomic_and_has_warmup(trained, tmp_path):
    from tensorflow_serving.apis import prediction_log_pb2

    model = trained["text_bag_of_words"]["model"]
    first = serving.export_model(model, tmp_path / "text", warmup_inputs=np.array(["good", "bad"], dtype=object))
    second = serving.export_model(model, tmp_path / "text")
    assert [os.path.basename(first), os.path.basename(second)] == ["1", "2"]
    assert sorted(os.listdir(tmp_path / "text")) == ["1", "2"]  # no staging folder left behind
    with pytest.raises(ValueError, match="version 2 already exists"):
        serving.export_model(model, tmp_path / "text", version=2)
    records = list(tf.data.TFRecordDataset(os.path.join(first, "assets.extra", "tf_serving_warmup_requests")))
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in records]
    assert len(logs) == 2 and logs[0].predict_log.request.model_spec.name == "text"
    assert set(logs[0].predict_log.request.inputs) == {"text", "key"}
    assert not os.path.exists(os.path.join(second, "assets.extra"))


def _warmup_requests(version_path):
    from tensorflow_serving.apis import prediction_log_pb2

    records = tf.data.TFRecordDataset(os.path.join(version_path, "assets.extra", "tf_serving_warmup_requests"))
    return [prediction_log_pb2.PredictionLog.FromString(r.numpy()).predict_log.request for r in records]


def test_warmup_records_are_in_the_signatures_dtypes(tmp_path):
    """float64 warmup inputs of a float32 input are written as float32: TF Serving fails the load of a version whose
    warmup requests it refuses (tensorflow/serving#1673), and so does recipes-model-server."""
    from tensorflow_serving.apis import prediction_log_pb2

    from serving.manager import ModelConfig
    from serving.server import ModelServer

    x = keras.Input((2,), name="x")
    model = keras.Model(x, keras.layers.Dense(1, kernel_initializer="ones")(x))
    path = serving.export_model(model, tmp_path / "sums", warmup_inputs=np.array([[1.0, 2.0], [3.0, 4.0]]))
    requests = _warmup_requests(path)
    assert [(r.inputs["x"].dtype, r.inputs["key"].dtype) for r in requests] == [
        (tf.float32.as_datatype_enum, tf.string.as_datatype_enum)
    ] * 2
    assert [tf.make_ndarray(r.inputs["x"]).tolist() for r in requests] == [[[1.0, 2.0]], [[3.0, 4.0]]]
    old = tmp_path / "float64_warmup" / "1"  # the same export with the float64 records written before
    shutil.copytree(path, old)
    with tf.io.TFRecordWriter(str(old / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        for request in requests:
            request.inputs["x"].CopyFrom(tf.make_tensor_proto(tf.make_ndarray(request.inputs["x"]).astype(np.float64)))
            writer.write(prediction_log_pb2.PredictionLog(predict_log={"request": request}).SerializeToString())
    running = ModelServer(
        [ModelConfig("sums", str(tmp_path / "sums")), ModelConfig("old", str(old.parent))],
        grpc_port=None,
        rest_port=0,
        poll_seconds=0,
    )
    try:
        ((_, ours),) = running.service.manager.status("sums")
        ((_, refused),) = running.service.manager.status("old")
    finally:
        running.stop()
    assert (ours.state, ours.error_code) == ("AVAILABLE", "OK"), ours
    # x is the session's second argument: its feed name sorts after the key's
    assert (refused.state, refused.error_code) == ("END", "INVALID_ARGUMENT"), refused
    assert refused.error_message == "Expects arg[1] to be float but double is provided"


def test_top_tokens_explain_the_linear_text_baseline(trained):
    tokens = text.top_tokens(trained["text_bag_of_words"]["model"], k=3)
    assert set(tokens) == {"rotten", "fresh"}
    assert all(len(pairs) == 3 and pairs[0][1] >= pairs[-1][1] for pairs in tokens.values())


def test_sequence_text_models_are_wide_and_deep(trained):
    lstm, transformer = trained["text_lstm"]["model"], trained["text_transformer"]["model"]
    for model, deep in ((lstm, 2 * 8), (transformer, 32)):  # units=8 per direction; the default embedding_dim
        tfidf = model.get_layer("tfidf")  # the bag of words' features, in the export too
        assert tfidf.get_config()["ngrams"] == 2 and tfidf.get_config()["output_mode"] == "tf_idf"
        assert model.get_layer("wide_and_deep").output.shape[-1] == deep + tfidf.vocabulary_size()
    tokens = text.top_tokens(lstm, k=3)  # the wide path's rows of the head, not the LSTM's
    vocabulary = set(lstm.get_layer("tfidf").get_vocabulary())
    assert set(tokens) == {"rotten", "fresh"} and all(t in vocabulary for pairs in tokens.values() for t, _ in pairs)
    x, _ = _text_data()
    alone = text.transformer_classifier(x, 2, max_tokens=500, wide_tokens=0, pooling="mean")
    assert [layer.name for layer in alone.layers if isinstance(layer, keras.layers.TextVectorization)] == ["tokens"]
    with pytest.raises(ValueError, match="wide_tokens"):
        text.lstm_classifier(x, 2, wide_tokens=-1)
    with pytest.raises(ValueError, match="Received: pooling='sum'"):
        text.transformer_classifier(x, 2, pooling="sum")


def test_cnn_learning_rate_decays_to_zero_over_the_steps_fit_planned(trained, tmp_path):
    model = trained["vision_cnn"]["model"]  # 128 examples in batches of 32: 4 steps
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, recipes.training.PlannedCosineDecay) and schedule.decay_steps == 4
    assert int(model.optimizer.iterations) == 4 and float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    assert float(schedule(2)) == pytest.approx(0.5e-3) and float(schedule(0)) == pytest.approx(1e-3)
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras").optimizer._learning_rate
    assert (restored.initial_learning_rate, restored.decay_steps) == (1e-3, 4)
    constant = vision.cnn_classifier((28, 28), 10, cosine_decay=False, learning_rate=2e-3)
    assert float(constant.optimizer.learning_rate) == pytest.approx(2e-3)
    with pytest.raises(ValueError, match="Received: initial_learning_rate=0"):
        recipes.training.PlannedCosineDecay(0)


def test_cnn_cosine_decay_resumes_on_the_same_curve(tmp_path):
    images, labels = recipes.datasets.load_digits()
    run = dict(batch_size=32, total_examples=640, num_checkpoints=4, directory=tmp_path, verbose=0)  # 20 steps

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("crash after virtual epoch 2")

    recipes.set_seed(0)
    model = vision.cnn_classifier((8, 8), 10, filters=(4,), dense_units=8)
    with pytest.raises(RuntimeError, match="crash"):
        recipes.fit(model, (images, labels), validation_data=(images[:100], labels[:100]), callbacks=[Crash()], **run)
    assert int(model.optimizer.iterations) == 10 and float(model.optimizer.learning_rate) == pytest.approx(0.5e-3)
    resumed = vision.cnn_classifier((8, 8), 10, filters=(4,), dense_units=8)
    result = recipes.fit(resumed, (images, labels), validation_data=(images[:100], labels[:100]), **run)
    assert len(result.history["loss"]) == 4 and int(resumed.optimizer.iterations) == 20
    assert float(resumed.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)


def test_cnn_can_leave_out_the_dense_layer_and_batch_normalization():
    model = vision.cnn_classifier((28, 28), 10, augment=False, dense_units=0, batch_normalization=False)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "BatchNormalization" not in kinds and "Dense" not in kinds
    default = vision.cnn_classifier((28, 28), 10, augment=False)
    assert [type(layer).__name__ for layer in default.layers].count("BatchNormalization") == 3
    with pytest.raises(ValueError, match="Received: dense_units=-1"):
        vision.cnn_classifier((28, 28), 10, dense_units=-1)


def _backbone_of(model):
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def test_transfer_classifier_trains_a_random_backbone_and_freezes_loaded_weights(tmp_path):
    random_start = _backbone_of(vision.transfer_classifier((28, 28), 3, input_size=32))
    assert random_start.trainable
    norms = [layer for layer in random_start.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == 0.9 for layer in norms)
    backbone = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    path = str(tmp_path / "mobilenet.weights.h5")
    backbone.save_weights(path)
    model = vision.transfer_classifier((28, 28), 3, weights=path, input_size=32)
    loaded = model.get_layer(backbone.name)  # keras.applications names it by its settings: the same name
    np.testing.assert_array_equal(loaded.get_weights()[0], backbone.get_weights()[0])
    assert not loaded.trainable
    assert (
        vision.transfer_classifier((28, 28), 3, weights=path, input_size=32, trainable=True)
        .get_layer(backbone.name)
        .trainable
    )
    with pytest.raises(ValueError, match="nothing is downloaded"):
        vision.transfer_classifier((28, 28), 3, weights="imagenet")

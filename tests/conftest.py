import json
import os
import time
import urllib.error
import urllib.request
import wave

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import recipes  # noqa: E402


def small_classifier(num_features=8, num_classes=3, learning_rate=0.05):
    """A two-layer classifier small enough to train in a second."""
    inputs = keras.Input(shape=(num_features,), name="features")
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def blobs(num_examples, num_features=8, num_classes=3, seed=0):
    """Gaussian blobs, one per class: separable data the small classifier learns quickly.

    The centres are the same for every seed; the seed draws the examples.
    """
    centres = np.random.default_rng(12345).normal(0, 3, size=(num_classes, num_features))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=num_examples)
    features = centres[labels] + rng.normal(0, 1, size=(num_examples, num_features))
    return features.astype("float32"), labels.astype("int64")


@pytest.fixture
def model_fn():
    return small_classifier


@pytest.fixture(scope="session")
def blob_data():
    return blobs(300), blobs(100, seed=1)


@pytest.fixture(autouse=True)
def _seeded():
    recipes.set_seed(0)


# -- real files written from the shipped data, in shapes unlike the shipped ones (tests/test_tasks.py,
# tests/test_own_data.py) --------------------------------------------------------------------


def reviews_frame(rows=600):
    """Rotten Tomatoes reviews under other column names, with string labels and an id column."""
    data = recipes.datasets.load_rotten_tomatoes().iloc[:rows]
    return pd.DataFrame(
        {
            "review_id": [f"rt-{i:05d}" for i in range(len(data))],
            "film": data.movie_name.to_numpy(),
            "review": data.text.to_numpy(),
            "verdict": np.where(data.label.to_numpy() == 1, "positive", "negative"),
        }
    )


def weather_frame():
    """Seattle weather with ISO dates, other column names and missing values."""
    data = recipes.datasets.load_seattle_weather()
    frame = pd.DataFrame(
        {
            "day": data.date.str.replace("/", "-").to_numpy(),
            "rain_mm": data.precipitation.to_numpy(dtype="float64"),
            "high_c": data.temp_max.to_numpy(),
            "low_c": data.temp_min.to_numpy(),
            "wind": data.wind.to_numpy(dtype="float64"),
            "sky": data.weather.to_numpy(),
        }
    )
    frame.loc[frame.index % 17 == 3, "rain_mm"] = np.nan
    frame.loc[frame.index % 23 == 5, "wind"] = np.nan
    return frame


@pytest.fixture(scope="module")
def reviews_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("reviews") / "reviews.csv"
    reviews_frame().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def weather_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("weather") / "weather.csv"
    weather_frame().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Three Fashion-MNIST classes, 14 items each: PNG and JPEG at 24-40 px, one GIF, one BMP, one RGBA PNG."""
    root = tmp_path_factory.mktemp("clothes")
    images, labels = recipes.datasets.load_fashion_mnist("test")
    names = recipes.datasets.FASHION_MNIST_CLASSES
    rng = np.random.default_rng(0)
    for label in (1, 7, 8):  # Trouser, Sneaker, Bag
        folder = root / names[label]
        folder.mkdir()
        for i, row in enumerate(np.flatnonzero(labels == label)[:14]):
            side = int(rng.choice([24, 28, 32, 40]))
            image = Image.fromarray(images[row]).resize((side, side))
            if label == 8 and i == 0:
                tinted = np.stack([np.asarray(image)] * 3 + [np.full((side, side), 255, np.uint8)], axis=-1)
                tinted[..., 0] //= 2  # a colour image: the folder is read as RGB
                Image.fromarray(tinted, "RGBA").save(folder / f"item{i}.png")
            elif i == 1:
                image.save(folder / f"item{i}.gif")
            elif i == 2:
                image.save(folder / f"item{i}.bmp")
            elif i % 2:
                image.save(folder / f"item{i}.jpg", quality=90)
            else:
                image.save(folder / f"item{i}.png")
        (folder / "notes.md").write_text("not an image: ignored, as Keras ignores it")
    return root


def write_wav(path, waveform, rate):
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(waveform, -1, 1) * 32767).astype("<i2").tobytes())


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory):
    """espeak-ng's "zero", "one", "two" in clips of 0.6 to 1.4 s at 16 kHz, and one clip at 22.05 kHz."""
    root = tmp_path_factory.mktemp("spoken")
    for word in ("zero", "one", "two"):
        (root / word).mkdir()
    for seed, seconds in enumerate((0.6, 0.8, 1.0, 1.2, 1.4)):
        waveforms, labels, speakers = recipes.datasets.load_spoken_digits(
            num_per_digit=2, clip_seconds=seconds, seed=seed
        )
        for i in np.flatnonzero(labels < 3):
            speaker = speakers[i].split(":")[1].replace("+", "-")
            write_wav(root / recipes.datasets.DIGIT_WORDS[labels[i]] / f"{speaker}_{seed}{i}.wav", waveforms[i], 16000)
    waveforms, labels, _ = recipes.datasets.load_spoken_digits(num_per_digit=1, sample_rate=22050, seed=7)
    write_wav(root / "two" / "en-us-m1_at22k.wav", waveforms[2], 22050)
    return root


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory):
    """Reviews as .txt files in one folder per verdict: text_dataset_from_directory's layout."""
    root = tmp_path_factory.mktemp("reviews_txt")
    reviews = reviews_frame(120)
    for i, row in reviews.iterrows():
        folder = root / row.verdict
        folder.mkdir(exist_ok=True)
        (folder / f"{row.review_id}.txt").write_text(row.review, encoding="utf-8")
    return root


# -- the model server's tests ------------------------------------------------------------------------------

TESTDATA = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "shared", "tfserving_testdata")
needs_testdata = pytest.mark.skipif(not os.path.isdir(TESTDATA), reason="../shared/tfserving_testdata is not here")


def tf_serving_model(name):
    """The absolute path of one of TF Serving's test SavedModels (`../shared/tfserving_testdata/NAME`)."""
    return os.path.abspath(os.path.join(TESTDATA, name))


def rest_request(server, method, path, body=None, raw=None):
    """`(status, JSON answer)` of one REST request to `server` (a `ModelServer`) on 127.0.0.1."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for_swap(manager, name, to_version, seconds):
    """Waits until `to_version` is the newest version of `name` and the version it replaced has ended."""
    deadline = time.monotonic() + seconds
    while manager.status(name)[0][0] != to_version or manager.status(name)[-1][1].state != "END":
        assert time.monotonic() < deadline, manager.status(name)
        time.sleep(0.1)

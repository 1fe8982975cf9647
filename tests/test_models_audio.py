"""models.audio: the CNN's log-mel features are centred per clip and depend on the clip alone."""

import numpy as np
import pytest

import recipes
from models import audio


@pytest.fixture(scope="module")
def clips():
    waveforms, _, _ = recipes.datasets.load_spoken_digits(num_per_digit=1)
    return waveforms[:4]


def _log_mel(model):
    import keras

    return keras.Model(model.inputs, model.get_layer("log_mel").output)


def test_log_mel_bands_are_centred_per_clip_whatever_the_batch(clips):
    features = _log_mel(audio.mfcc_cnn_classifier(10))
    together = np.asarray(features.predict(clips, verbose=0))
    assert together.shape == (4, 101, 40)
    np.testing.assert_allclose(together.mean(axis=1), 0.0, atol=1e-4)  # each band centred over the frames
    alone = np.asarray(features.predict(clips[1:2], verbose=0))
    np.testing.assert_allclose(alone, together[1:2], atol=1e-4)  # other clips in the batch change nothing
    uncentred = _log_mel(audio.mfcc_cnn_classifier(10)).get_layer("log_mel").__class__(center=False)
    raw = np.asarray(uncentred(np.asarray(features.get_layer("mel_spectrogram")(clips))))
    np.testing.assert_allclose(together, raw - raw.mean(axis=1, keepdims=True), atol=1e-4)


def test_cnn_factory_options(clips):
    model = audio.mfcc_cnn_classifier(10, filters=8)
    assert model.get_layer("feature_normalization") is not None and model.optimizer.use_ema
    assert model.predict(clips, verbose=0).shape == (4, 10)
    mfcc = audio.mfcc_cnn_classifier(10, filters=8, features="mfcc", ema_momentum=None)
    assert mfcc.get_layer("mfcc").output.shape[1:] == (101, 13) and not mfcc.optimizer.use_ema
    with pytest.raises(ValueError, match=r"`features` must be one of .* Received: features='stft'"):
        audio.mfcc_cnn_classifier(10, features="stft")
    with pytest.raises(ValueError, match=r"Received: ema_momentum=1"):
        audio.mfcc_cnn_classifier(10, ema_momentum=1)

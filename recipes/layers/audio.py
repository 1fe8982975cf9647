"""Waveform to MFCC features, inside the model."""

import keras
import tensorflow as tf

from recipes._common import check_int


@keras.saving.register_keras_serializable(package="recipes")
class MFCC(keras.layers.Layer):
    """Mel-frequency cepstral coefficients of raw waveforms, normalised per utterance.

    Waveform → `keras.layers.MelSpectrogram` (power) → natural log → DCT
    (`tf.signal.mfccs_from_log_mel_spectrograms`) → the first `num_mfccs`
    coefficients, each standardised over the utterance's frames (cepstral
    mean and variance normalisation, which removes the channel and the
    loudness). Clients send the waveform; the model computes the features.

    The log is taken here rather than with `MelSpectrogram(power_to_db=True)`,
    which clips at the maximum of the *whole batch*: one row's features would
    then depend on the other rows batched with it, and a served model would
    answer a client differently depending on other clients' requests.

    Example:

    >>> import numpy as np
    >>> from recipes.layers import MFCC
    >>> MFCC(num_mfccs=13)(np.zeros((2, 16000), "float32")).shape
    TensorShape([2, 101, 13])

    Args:
        sample_rate: Int, defaults to 16000. Samples per second of the input.
        num_mfccs: Int, defaults to 13. Coefficients kept per frame.
        num_mel_bins: Int, defaults to 40.
        frame_length: Int, defaults to 400 (25 ms at 16 kHz). Samples per frame.
        frame_step: Int, defaults to 160 (10 ms at 16 kHz). Samples between frames.
        fft_length: Int, defaults to 512. At least `frame_length`.
        normalize: Bool, defaults to `True`. Per-utterance mean and variance
            normalisation of each coefficient.

    Input shape: `(batch, samples)` float waveforms in [-1, 1].
    Output shape: `(batch, frames, num_mfccs)` with `frames = 1 + samples // frame_step`.
    """

    def __init__(
        self,
        sample_rate=16000,
        num_mfccs=13,
        num_mel_bins=40,
        frame_length=400,
        frame_step=160,
        fft_length=512,
        normalize=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in [
            ("sample_rate", sample_rate),
            ("num_mfccs", num_mfccs),
            ("num_mel_bins", num_mel_bins),
            ("frame_length", frame_length),
            ("frame_step", frame_step),
            ("fft_length", fft_length),
        ]:
            check_int(name, value)
        if num_mfccs > num_mel_bins:
            raise ValueError(
                f"`num_mfccs` must be at most `num_mel_bins`. Received: num_mfccs={num_mfccs}, "
                f"num_mel_bins={num_mel_bins}"
            )
        if fft_length < frame_length:
            raise ValueError(
                f"`fft_length` must be at least `frame_length`. Received: fft_length={fft_length}, "
                f"frame_length={frame_length}"
            )
        self.sample_rate = sample_rate
        self.num_mfccs = num_mfccs
        self.num_mel_bins = num_mel_bins
        self.frame_length = frame_length
        self.frame_step = frame_step
        self.fft_length = fft_length
        self.normalize = normalize
        self.mel = keras.layers.MelSpectrogram(
            fft_length=fft_length,
            sequence_stride=frame_step,
            sequence_length=frame_length,
            sampling_rate=sample_rate,
            num_mel_bins=num_mel_bins,
            power_to_db=False,
            dtype="float32",
            name="mel_spectrogram",
        )

    def build(self, input_shape):
        self.mel.build(input_shape)

    def call(self, waveforms):
        waveforms = tf.cast(waveforms, tf.float32)
        mel = tf.transpose(self.mel(waveforms), [0, 2, 1])  # (batch, frames, mel bins)
        log_mel = tf.math.log(mel + 1e-6)
        mfccs = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., : self.num_mfccs]
        if not self.normalize:
            return mfccs
        mean, variance = tf.nn.moments(mfccs, axes=[1], keepdims=True)
        return (mfccs - mean) / tf.sqrt(variance + 1e-6)

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else 1 + samples // self.frame_step
        return (input_shape[0], frames, self.num_mfccs)

    def get_config(self):
        config = super().get_config()
        config.update(
            sample_rate=self.sample_rate,
            num_mfccs=self.num_mfccs,
            num_mel_bins=self.num_mel_bins,
            frame_length=self.frame_length,
            frame_step=self.frame_step,
            fft_length=self.fft_length,
            normalize=self.normalize,
        )
        return config


@keras.saving.register_keras_serializable(package="recipes")
class FitLength(keras.layers.Layer):
    """Waveforms of any length padded with zeros or cropped at the end to `num_samples`, inside the model.

    The first layer of the audio factories: the model takes clips of any
    length, and gives every clip the length it was trained on, as the input
    pipelines of `recipes.tasks` (and Keras's
    `audio_dataset_from_directory(output_sequence_length=...)`) do. It also
    records the `sample_rate` the model hears, for a served model that takes
    WAV bytes (`DecodeWav`).

    Example:

    >>> import numpy as np
    >>> from recipes.layers import FitLength
    >>> FitLength(16000)(np.ones((2, 9600), "float32")).shape
    TensorShape([2, 16000])

    Args:
        num_samples: Int >= 1. Samples per clip.
        sample_rate: Int, defaults to 16000. The clips' sample rate.

    Input shape: `(batch, samples)` float waveforms, any number of samples.
    Output shape: `(batch, num_samples)`.
    """

    def __init__(self, num_samples, sample_rate=16000, **kwargs):
        super().__init__(**kwargs)
        self.num_samples = check_int("num_samples", num_samples)
        self.sample_rate = check_int("sample_rate", sample_rate)

    def call(self, waveforms):
        waveforms = tf.cast(waveforms, tf.float32)[:, : self.num_samples]
        padded = tf.pad(waveforms, [[0, 0], [0, self.num_samples - tf.shape(waveforms)[1]]])
        return tf.ensure_shape(padded, [None, self.num_samples])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_samples)

    def get_config(self):
        return {**super().get_config(), "num_samples": self.num_samples, "sample_rate": self.sample_rate}


@keras.saving.register_keras_serializable(package="recipes")
class DecodeWav(keras.layers.Layer):
    """Encoded WAV files (16-bit PCM, any length, rate and channels) as mono waveforms of one length and rate.

    Each clip is decoded on its own, its channels averaged, resampled to
    `sample_rate` when it has another rate (band-limited interpolation,
    `recipes.tasks.waveforms.resample`) and padded or cropped at the end to
    `num_samples`: what `recipes.tasks` does to a folder of WAV files before
    training. Bytes that are not a 16-bit WAV fail the call with TensorFlow's
    `InvalidArgumentError`.

    Args:
        sample_rate: Int. The rate of the output waveforms.
        num_samples: Int. Samples per output waveform.

    Input shape: `(batch,)` strings of WAV file bytes.
    Output shape: `(batch, num_samples)` float32 in [-1, 1].
    """

    def __init__(self, sample_rate, num_samples, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate = check_int("sample_rate", sample_rate)
        self.num_samples = check_int("num_samples", num_samples)

    def _decode_one(self, encoded):
        from recipes.tasks.waveforms import fit_length, resample

        audio, rate = tf.audio.decode_wav(encoded)
        waveform = tf.reduce_mean(audio, axis=1)
        waveform = tf.cond(
            tf.equal(rate, self.sample_rate), lambda: waveform, lambda: resample(waveform, rate, self.sample_rate)
        )
        return fit_length(waveform, self.num_samples)

    def call(self, encoded):
        encoded = tf.reshape(tf.convert_to_tensor(encoded, tf.string), [-1])
        return tf.map_fn(self._decode_one, encoded, fn_output_signature=tf.TensorSpec([self.num_samples], tf.float32))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_samples)

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate, "num_samples": self.num_samples}

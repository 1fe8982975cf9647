"""Waveforms in TensorFlow ops: resampling to another rate, and padding or cropping to a length.

Made of graph ops so that the same code can run in a `tf.data` pipeline and,
later, inside a served model that takes clips at any rate and length.
"""

import math

import tensorflow as tf

RESAMPLING_HALF_WIDTH = 16  # zero crossings of the sinc kernel on each side, at the lower of the two rates


def resample(waveform, rate, new_rate, half_width=RESAMPLING_HALF_WIDTH):
    """A 1-D waveform at `rate` Hz resampled to `new_rate` Hz by band-limited (windowed-sinc) interpolation.

    Each output sample is a Hann-windowed sinc sum over the input samples
    near its time; the kernel's cutoff is the lower of the two Nyquist
    frequencies, so downsampling does not alias. Output length:
    `ceil(len(waveform) * new_rate / rate)`.

    Args:
        waveform: 1-D float tensor.
        rate: Int (or int tensor), the waveform's sample rate.
        new_rate: Int (or int tensor), the rate wanted.
        half_width: Int, defaults to 16. Kernel half-width in zero
            crossings; larger is sharper and slower.

    Returns:
        A 1-D float32 tensor.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    rate = tf.cast(rate, tf.float64)
    new_rate = tf.cast(new_rate, tf.float64)
    length = tf.shape(waveform)[0]
    out_length = tf.cast(tf.math.ceil(tf.cast(length, tf.float64) * new_rate / rate), tf.int32)
    cutoff = tf.minimum(tf.constant(1.0, tf.float64), new_rate / rate)  # in cycles per input sample, times 2
    taps = tf.cast(tf.math.ceil(half_width / cutoff), tf.int32)
    times = tf.range(out_length, dtype=tf.float64) * rate / new_rate
    first = tf.floor(times)
    offsets = tf.cast(tf.range(-taps + 1, taps + 1), tf.float64)
    positions = first[:, None] + offsets[None, :]
    distance = (times[:, None] - positions) * cutoff  # in zero crossings of the kernel
    window = tf.where(
        tf.abs(distance) < half_width, 0.5 + 0.5 * tf.cos(math.pi * distance / half_width), tf.zeros_like(distance)
    )
    sinc = tf.where(tf.equal(distance, 0.0), tf.ones_like(distance), tf.sin(math.pi * distance) / (math.pi * distance))
    inside = tf.logical_and(positions >= 0, positions < tf.cast(length, tf.float64))
    weights = tf.where(inside, cutoff * sinc * window, tf.zeros_like(distance))
    indices = tf.clip_by_value(tf.cast(positions, tf.int32), 0, tf.maximum(length - 1, 0))
    samples = tf.cast(tf.gather(waveform, indices), tf.float64)
    return tf.cast(tf.reduce_sum(samples * weights, axis=1), tf.float32)


def fit_length(waveform, num_samples):
    """The first `num_samples` samples of a 1-D waveform, padded with zeros at the end when shorter.

    Keras's `audio_dataset_from_directory(output_sequence_length=...)` does the same.
    """
    waveform = waveform[:num_samples]
    padded = tf.pad(waveform, [[0, num_samples - tf.shape(waveform)[0]]])
    return tf.ensure_shape(padded, [num_samples])

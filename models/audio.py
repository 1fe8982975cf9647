"""Acoustic classifiers that take raw waveforms of any length: padding or cropping and features happen in the model.

Exported with `serving.export_model`, a model takes float waveforms of any
length, or WAV bytes (any length and sample rate, resampled in the graph)
when its input is named `audio`; each export also has a signature for the
other form.
"""

import keras
import tensorflow as tf

from models.common import classify, dtype_policy, resolve_class_names
from recipes._common import check_int, check_number, check_one_of
from recipes.layers import MFCC, FitLength


@keras.saving.register_keras_serializable(package="recipes")
class LogPower(keras.layers.Layer):
    """A power spectrogram `(batch, bins, frames)` as natural logs, `(batch, frames, bins)`, each band centred.

    With `center=True` each band's log has its mean over the clip's frames
    subtracted (cepstral mean normalisation, done on the log-mel bands): a
    gain or a filter applied to the whole clip, such as a voice's or a
    microphone's average spectral shape, cancels out, except that frames of
    digital silence stay at the floor. The log depends on the clip alone:
    `keras.layers.MelSpectrogram(power_to_db=True)` clips at the maximum of
    the whole batch, so a served clip would be scored differently depending
    on the clips batched with it.

    Args:
        floor: Float, defaults to 1e-6. Added before the log, so that silence
            stays finite.
        center: Bool, defaults to `True`. Subtract each band's mean over the
            clip's frames.
    """

    def __init__(self, floor=1e-6, center=True, **kwargs):
        super().__init__(**kwargs)
        self.floor = check_number("floor", floor, minimum=0, inclusive=False)
        self.center = bool(center)

    def call(self, power):
        log_power = tf.math.log(tf.transpose(tf.cast(power, tf.float32), [0, 2, 1]) + self.floor)
        if self.center:
            log_power -= tf.reduce_mean(log_power, axis=1, keepdims=True)
        return log_power

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2], input_shape[1])

    def get_config(self):
        return {**super().get_config(), "floor": self.floor, "center": self.center}


def _fitted_waveform(num_samples, sample_rate, input_name):
    check_int("num_samples", num_samples, minimum=400)
    if not isinstance(input_name, str) or not input_name:
        raise ValueError(f"`input_name` must be a non-empty string. Received: input_name={input_name!r}")
    waveform = keras.Input(shape=(None,), dtype="float32", name=input_name)
    return waveform, FitLength(num_samples, sample_rate, name="fit_length")(waveform)


def _waveform_features(num_samples, sample_rate, num_mfccs, input_name):
    waveform, fitted = _fitted_waveform(num_samples, sample_rate, input_name)
    return waveform, MFCC(sample_rate=sample_rate, num_mfccs=num_mfccs, name="mfcc")(fitted)


def _log_mel_features(num_samples, sample_rate, num_mel_bins, input_name):
    """Log-mel frames (25 ms every 10 ms, as `MFCC`), each band centred per clip, then standardised.

    The centring is the clip's own (`LogPower`); the scale is learnt over the
    training set by a BatchNormalization layer (the `MFCC` layer divides by
    each clip's own spread as well).
    """
    check_int("num_mel_bins", num_mel_bins)
    waveform, fitted = _fitted_waveform(num_samples, sample_rate, input_name)
    power = keras.layers.MelSpectrogram(
        fft_length=512,
        sequence_stride=160,
        sequence_length=400,
        sampling_rate=sample_rate,
        num_mel_bins=num_mel_bins,
        power_to_db=False,
        dtype="float32",
        name="mel_spectrogram",
    )(fitted)
    log_mel = LogPower(name="log_mel")(power)
    return waveform, keras.layers.BatchNormalization(name="feature_normalization", dtype="float32")(log_mel)


def mfcc_lstm_classifier(
    num_classes=10,
    class_names=None,
    num_samples=16000,
    sample_rate=16000,
    num_mfccs=13,
    units=64,
    dropout=0.2,
    learning_rate=3e-3,
    name="mfcc_lstm",
    mixed_precision=False,
    input_name="waveform",
):
    """MFCC frames read by one LSTM layer: the classic small acoustic baseline.

    Example:

    ```python
    import recipes
    from models import audio

    waveforms, labels, _ = recipes.datasets.load_spoken_digits(num_per_digit=50)
    model = audio.mfcc_lstm_classifier(10, class_names=recipes.datasets.DIGIT_WORDS)
    model.fit(waveforms, labels, epochs=5, verbose=0)
    ```

    Args:
        num_classes: Int, defaults to 10.
        class_names: Optional names in label order.
        num_samples: Int, defaults to 16000. Samples per clip (1 s at 16 kHz):
            the model pads or crops clips of any other length to it at the end.
        sample_rate: Int, defaults to 16000.
        num_mfccs: Int, defaults to 13.
        units: Int, defaults to 64.
        dropout: Float, defaults to 0.2. Active in training only.
        learning_rate: Float, defaults to 0.003.
        name: Model name, defaults to `"mfcc_lstm"`.
        mixed_precision: `False` (default), `True` or `"mixed_float16"`
            (GPUs), or `"mixed_bfloat16"` (TPUs, recent CPUs): the layers
            between the preprocessing and the output compute in 16 bits with
            float32 variables (`models.common.dtype_policy`).
        input_name: String, defaults to `"waveform"`. The model's input name;
            `"audio"` makes the exported `serving_default` take WAV bytes.

    Returns:
        A compiled `keras.Model` from a float input `waveform` `(batch,
        samples)` in [-1, 1], any number of samples, to class probabilities.
    """
    class_names = resolve_class_names(num_classes, class_names)
    waveform, mfccs = _waveform_features(num_samples, sample_rate, num_mfccs, input_name)
    with dtype_policy(mixed_precision):
        x = keras.layers.LSTM(units)(mfccs)
        x = keras.layers.Dropout(dropout)(x)
    return classify(x, waveform, class_names, learning_rate, name, mixed_precision)


def mfcc_cnn_classifier(
    num_classes=10,
    class_names=None,
    num_samples=16000,
    sample_rate=16000,
    num_mfccs=13,
    filters=128,
    dropout=0.2,
    learning_rate=1e-3,
    name="mfcc_cnn",
    mixed_precision=False,
    input_name="waveform",
    features="log_mel",
    num_mel_bins=40,
    ema_momentum=0.99,
):
    """Two 1-D convolutions over log-mel frames, max-pooled over time.

    The defaults were chosen on the shipped task (`recipes.tasks.shipped("audio")`:
    espeak-ng digits split by speaker, scored on 200 clips of 4 flite voices
    never heard in training; 30 passes over the 748 training clips, batch 32,
    `recipes.fit`'s early stopping; mean +- standard deviation over 3 seeds):

    | model | training clips | flite accuracy |
    |---|---|---|
    | 13 MFCCs normalised per clip, 64 filters, Adam 0.003 (the former defaults) | 748 | 0.565 (1 run) |
    | 40 log-mel bands and BatchNormalization, 128 filters, Adam 0.003 with EMA | 748 | 0.807 +- 0.024 |
    | the same, each band centred per clip | 748 | 0.832 +- 0.021 |
    | the same + `speaker_augmenter()`, 3 variants per clip | 2,992 | 0.838 +- 0.042 |
    | the same at Adam 0.001: the defaults, no augmentation | 748 | 0.848 +- 0.006 (a) |
    | the defaults + `speaker_augmenter()`, 3 variants per clip | 2,992 | 0.867 +- 0.030 (b) |
    | the defaults + `speaker_augmenter()`, 6 variants per clip | 5,236 | 0.912 +- 0.034 (c) |
    | the defaults, no augmentation, 10 passes | 748 | 0.828 +- 0.012 |
    | the defaults, no augmentation, 5 passes | 748 | 0.748 +- 0.019 |

    Over 5 seeds, (a) 0.829 +- 0.037, (b) 0.858 +- 0.025, (c) 0.896 +- 0.035;
    on 1,000 further clips of the same flite voices, 0.833, 0.859 and 0.885. The centring lifts the voices
    `awb` (0.88 to 0.95) and `rms` (0.64 to 0.70); `rms`, pitched at about
    83 Hz, below most espeak-ng voices, stays the hardest.

    To train it as the best row, multiply the training clips offline with
    `recipes.augment`: `augment_dataset((waveforms, labels),
    speaker_augmenter(), n=6)` (speed x0.85-1.15, then pitch +-2 semitones,
    then VTLP warp 0.9-1.1, drawn anew for each variant; librosa, one clip
    at a time, about 16 ms a variant on a quiet core), and train on the
    5,236 clips with the same budget (30 passes over the 748 real ones).

    Example:

    ```python
    import recipes
    from models import audio
    from recipes.augment import augment_dataset, speaker_augmenter

    waveforms, labels, _ = recipes.datasets.load_spoken_digits(num_per_digit=20)
    bigger = augment_dataset((waveforms, labels), speaker_augmenter(), n=6, seed=0)
    model = audio.mfcc_cnn_classifier(10, class_names=recipes.datasets.DIGIT_WORDS)
    model.fit(bigger.x, bigger.y, epochs=5, verbose=0)
    ```

    Args: as `mfcc_lstm_classifier` (`mixed_precision` included), with
    `filters` (int, defaults to 128) instead of `units`, `learning_rate`
    defaulting to 0.001, and:
        features: `"log_mel"` (default): `num_mel_bins` log-mel bands, each
            centred on its mean over the clip (`LogPower`) and standardised
            by a BatchNormalization layer; `"mfcc"`: `num_mfccs` MFCCs
            normalised per clip (the layer `MFCC`).
        num_mel_bins: Int, defaults to 40.
        ema_momentum: Float in (0, 1), defaults to 0.99: Adam keeps an
            exponential moving average of the weights, which replaces them at
            the end of training (`use_ema`); `None` turns it off.

    Returns:
        A compiled `keras.Model` from a float input `waveform` to class probabilities.
    """
    class_names = resolve_class_names(num_classes, class_names)
    check_int("filters", filters)
    features = check_one_of("features", features, ("log_mel", "mfcc"))
    if ema_momentum is not None:
        check_number("ema_momentum", ema_momentum, minimum=0, maximum=1, inclusive=False)
    if features == "log_mel":
        waveform, frames = _log_mel_features(num_samples, sample_rate, num_mel_bins, input_name)
    else:
        waveform, frames = _waveform_features(num_samples, sample_rate, num_mfccs, input_name)
    with dtype_policy(mixed_precision):
        x = keras.layers.Conv1D(filters, 5, activation="relu", padding="same")(frames)
        x = keras.layers.MaxPooling1D(2)(x)
        x = keras.layers.Conv1D(filters, 5, activation="relu", padding="same")(x)
        x = keras.layers.GlobalMaxPooling1D()(x)
        x = keras.layers.Dropout(dropout)(x)
    model = classify(x, waveform, class_names, learning_rate, name, mixed_precision)
    if ema_momentum is not None:
        with dtype_policy(mixed_precision):  # so that a mixed-precision model keeps its loss scaling
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate, use_ema=True, ema_momentum=ema_momentum),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
    return model


def mfcc_linear_classifier(
    num_classes=10,
    class_names=None,
    num_samples=16000,
    sample_rate=16000,
    num_mfccs=13,
    learning_rate=1e-2,
    name="mfcc_linear",
    input_name="waveform",
):
    """Logistic regression on the MFCC frames: the linear baseline.

    One weight per frame, coefficient and class, which can be drawn as an
    image per class to see which sounds at which times vote for it.

    Returns:
        A compiled `keras.Model` from a float input `waveform` to class probabilities.
    """
    class_names = resolve_class_names(num_classes, class_names)
    waveform, mfccs = _waveform_features(num_samples, sample_rate, num_mfccs, input_name)
    return classify(keras.layers.Flatten()(mfccs), waveform, class_names, learning_rate, name)

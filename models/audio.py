"""Acoustic classifiers that take raw waveforms of any length: padding or cropping and MFCCs happen inside the model.

Exported with `serving.export_model`, a model takes float waveforms of any
length, or WAV bytes (any length and sample rate, resampled in the graph)
when its input is named `audio`; each export also has a signature for the
other form.
"""

import keras

from models.common import classify, dtype_policy, resolve_class_names
from recipes._common import check_int
from recipes.layers import MFCC, FitLength


def _waveform_features(num_samples, sample_rate, num_mfccs, input_name):
    check_int("num_samples", num_samples, minimum=400)
    if not isinstance(input_name, str) or not input_name:
        raise ValueError(f"`input_name` must be a non-empty string. Received: input_name={input_name!r}")
    waveform = keras.Input(shape=(None,), dtype="float32", name=input_name)
    fitted = FitLength(num_samples, sample_rate, name="fit_length")(waveform)
    return waveform, MFCC(sample_rate=sample_rate, num_mfccs=num_mfccs, name="mfcc")(fitted)


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
    filters=64,
    dropout=0.2,
    learning_rate=3e-3,
    name="mfcc_cnn",
    mixed_precision=False,
    input_name="waveform",
):
    """Two 1-D convolutions over MFCC frames, max-pooled over time.

    Args: as `mfcc_lstm_classifier` (`mixed_precision` included), with
    `filters` (int, defaults to 64) instead of `units`.

    Returns:
        A compiled `keras.Model` from a float input `waveform` to class probabilities.
    """
    class_names = resolve_class_names(num_classes, class_names)
    waveform, mfccs = _waveform_features(num_samples, sample_rate, num_mfccs, input_name)
    with dtype_policy(mixed_precision):
        x = keras.layers.Conv1D(filters, 5, activation="relu", padding="same")(mfccs)
        x = keras.layers.MaxPooling1D(2)(x)
        x = keras.layers.Conv1D(filters, 5, activation="relu", padding="same")(x)
        x = keras.layers.GlobalMaxPooling1D()(x)
        x = keras.layers.Dropout(dropout)(x)
    return classify(x, waveform, class_names, learning_rate, name, mixed_precision)


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

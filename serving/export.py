"""Export a Keras model as a keyed SavedModel version that TF Serving loads as it is.

The serving signatures take raw data under the model's input names: strings
for text and dates, float waveforms of any length or WAV bytes (decoded,
resampled and padded or cropped in the graph), encoded image bytes (decoded
and resized in the graph), raw numbers (NaN when missing) and categories for
tables. The client's primary key passes through
untouched, so every prediction can be joined back to its record ("keyed
predictions", Lakshmanan et al., *Machine Learning Design Patterns*).
"""

import dataclasses
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from recipes._common import check_int
from recipes.layers import DecodeImages, DecodeWav, FitLength, class_names_of
from serving.contract import KEY, KEYED_SIGNATURE, ROW_SIGNATURE, UNKEYED_SIGNATURE, WARMUP_FILE, next_version

# A waveform input (one that feeds a `recipes.layers.FitLength`) named so is served as WAV file bytes;
# under any other name as float waveforms of any length. Each export has a keyed signature for the other form.
WAV_INPUT = "audio"
WAVEFORM_INPUT = "waveform"


@dataclasses.dataclass(frozen=True)
class ServingInput:
    """How one model input is served.

    Attributes:
        name: The signature input's name, the model input's unless `model_input` says.
        kind: `"image"` (served as encoded bytes), `"wav"` (WAV file bytes),
            `"waveform"` (float waveforms of any length), `"string"` or `"tensor"`.
        shape: The model input's shape without the batch axis.
        dtype: The model input's dtype.
        sample_rate: For `"wav"` and `"waveform"`, the rate the model hears.
        num_samples: For `"wav"` and `"waveform"`, the samples per clip it was trained on.
        model_input: The model input fed, defaults to `name`.
    """

    name: str
    kind: str
    shape: tuple
    dtype: str
    sample_rate: int | None = None
    num_samples: int | None = None
    model_input: str | None = None

    @property
    def target(self):
        return self.model_input or self.name

    @property
    def signature_spec(self):
        if self.kind in ("image", "wav"):
            return tf.TensorSpec([None], tf.string, name=self.name)
        # Non-batch axes are left open and checked in the graph, for an error that names the input.
        return tf.TensorSpec([None] + [None] * len(self.shape), tf.as_dtype(self.dtype), name=self.name)


def _clip_lengths(model):
    """`{model input name: FitLength layer}` for each input that is a waveform of any length."""
    return {layer.input.name: layer for layer in model.layers if isinstance(layer, FitLength)}


def serving_inputs(model):
    """The `ServingInput` of each model input.

    uint8 inputs of rank 3 or 4 are images; an input that feeds a
    `recipes.layers.FitLength` is a waveform (`"wav"` when named `audio`).
    """
    contract = []
    clips = _clip_lengths(model)
    for tensor in model.inputs:
        shape, dtype = tuple(tensor.shape[1:]), tf.as_dtype(tensor.dtype).name
        name = tensor.name
        if name in clips:
            kind = "wav" if name == WAV_INPUT else "waveform"
            clip = clips[name]
            contract.append(ServingInput(name, kind, shape, dtype, clip.sample_rate, clip.num_samples))
            continue
        if dtype == "uint8" and len(shape) in (2, 3) and all(d is not None for d in shape):
            kind = "image"
        elif dtype == "string":
            kind = "string"
        else:
            kind = "tensor"
        contract.append(ServingInput(name, kind, shape, dtype))
    return contract


def _other_audio_form(contract):
    """The contract of the extra signature of a one-waveform model: WAV bytes for waveforms, or the reverse."""
    if len(contract) != 1 or contract[0].kind not in ("wav", "waveform"):
        return None, None
    spec = contract[0]
    if spec.kind == "wav":
        return WAVEFORM_INPUT, [dataclasses.replace(spec, name=WAVEFORM_INPUT, kind="waveform", model_input=spec.name)]
    return WAV_INPUT, [dataclasses.replace(spec, name=WAV_INPUT, kind="wav", model_input=spec.name)]


def encode_wav(waveforms, sample_rate):
    """Float waveforms `(clips, samples)` in [-1, 1] as 16-bit PCM WAV file bytes, one per clip."""
    waveforms = np.asarray(waveforms, dtype="float32")
    return np.array(
        [tf.audio.encode_wav(np.clip(w, -1, 1)[:, None], sample_rate).numpy() for w in waveforms], dtype=object
    )


def to_serving_inputs(model, x):
    """Turns model inputs as they are trained on into what the serving signature takes.

    Images (uint8 arrays) become PNG bytes, which decode to the same pixels;
    waveforms served as WAV become 16-bit WAV bytes at the model's rate;
    everything else is passed through as NumPy arrays.

    Args:
        model: The Keras model.
        x: The model's input as given to `model.predict`: an array for a
            single-input model, or a dict from input name to array.

    Returns:
        A dict from signature input name to a NumPy array.
    """
    contract = serving_inputs(model)
    if not isinstance(x, dict):
        if len(contract) != 1:
            raise ValueError(
                f"`x` must be a dict of arrays for a model with {len(contract)} inputs "
                f"{[s.name for s in contract]}. Received: {type(x).__name__}"
            )
        x = {contract[0].name: x}
    served = {}
    for spec in contract:
        if spec.name not in x:
            raise ValueError(f"`x` must hold the model input {spec.name!r}. Received: inputs {sorted(x)}")
        value = np.asarray(x[spec.name])
        if spec.kind == "image":
            images = value.reshape((-1, *spec.shape[:2], spec.shape[2] if len(spec.shape) == 3 else 1))
            value = np.array([tf.io.encode_png(image).numpy() for image in images], dtype=object)
        elif spec.kind == "wav" and value.dtype.kind == "f":
            value = encode_wav(value, spec.sample_rate)
        served[spec.name] = value
    return served


def _check_input(spec, value):
    """Graph-side checks that turn bad raw input into an error naming the input."""
    if spec.kind == "string":
        empty = tf.equal(tf.strings.length(tf.strings.strip(value)), 0)
        return tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(empty)),
            [f"input `{spec.name}` has empty strings at rows:", tf.where(empty)[:, 0]],
            summarize=10,
        )
    if spec.kind == "tensor":
        expected = [-1 if d is None else d for d in spec.shape]
        received = tf.shape(value)[1:]
        fits = tf.reduce_all(tf.logical_or(tf.equal(received, expected), tf.equal(expected, -1)))
        shape = ", ".join(map(str, spec.shape))
        return tf.debugging.Assert(
            fits, [f"input `{spec.name}` must have shape [batch, {shape}]; received", tf.shape(value)]
        )
    return None


def _decoder(spec):
    if spec.kind == "image":
        return DecodeImages(*spec.shape[:2], channels=spec.shape[2] if len(spec.shape) == 3 else 1)
    if spec.kind == "wav":
        return DecodeWav(spec.sample_rate, spec.num_samples)
    return None


# Where `set_optional_inputs` records a model's optional inputs for `export_model`.
_OPTIONAL_INPUTS = "_serving_optional_inputs"
OPTIONAL_DTYPES = ("float32", "string", "bool")


def set_optional_inputs(model, optional_inputs):
    """Records on `model` the optional inputs `export_model` declares for it (its `optional_inputs`).

    `recipes.tasks.Task.build_model` records a table's columns other than the
    features, so that a row of the training file is a request as it stands.
    """
    # Not a tracked Keras attribute: nothing to save in the model, read only by export_model.
    object.__setattr__(model, _OPTIONAL_INPUTS, _check_optional_inputs(optional_inputs))


def _check_optional_inputs(optional_inputs):
    if not isinstance(optional_inputs, dict):
        raise ValueError(
            f"`optional_inputs` must be a dict from input name to dtype. Received: {type(optional_inputs).__name__}"
        )
    for name, dtype in optional_inputs.items():
        if not isinstance(name, str) or dtype not in OPTIONAL_DTYPES:
            raise ValueError(
                f"`optional_inputs` must map input names to one of {OPTIONAL_DTYPES}. Received: {name!r}: {dtype!r}"
            )
    return dict(optional_inputs)


def _optional_specs(optional_inputs, contract):
    """`{name: TensorSpec}` of the optional inputs, leaving out the key and names the model's inputs have."""
    taken = {KEY, *(spec.name for spec in contract)}
    return {
        name: tf.TensorSpec([None], tf.as_dtype(dtype), name=name)
        for name, dtype in optional_inputs.items()
        if name not in taken
    }


def _with_optional_inputs(serve, optional_specs):
    """`serve` with a second argument of ignored inputs, each defaulting to no rows.

    TensorFlow records the defaults of a `tf.function`'s arguments in the
    SignatureDef's `defaults`; TF Serving's gRPC Predict then takes a request
    that leaves such inputs out (predict_util.cc `VerifyRequestInputsSize`),
    and one that sends them.
    """
    defaults = {name: tf.zeros([0], spec.dtype) for name, spec in optional_specs.items()}

    def serve_row(inputs, ignored=defaults):  # noqa: B006 - read once, by tf.function, as the signature's defaults
        del ignored  # the model reads none of them
        return serve(inputs)

    return serve_row


def _serving_function(model, contract, class_names, keyed):
    decoders = {spec.name: _decoder(spec) for spec in contract if _decoder(spec) is not None}

    def serve(inputs):
        batch = tf.shape(inputs[contract[0].name])[0]
        checks = []
        for name, value in inputs.items():
            checks.append(
                tf.debugging.assert_equal(
                    tf.shape(value)[0],
                    batch,
                    message=f"all inputs must have the same number of rows as `{contract[0].name}`; `{name}` differs",
                )
            )
        model_inputs = {}
        for spec in contract:
            value = inputs[spec.name]
            check = _check_input(spec, value)
            if check is not None:
                checks.append(check)
            if spec.name in decoders:
                value = decoders[spec.name](value)
                if spec.kind == "image" and len(spec.shape) == 2:
                    value = tf.squeeze(value, axis=-1)
            model_inputs[spec.target] = value
        with tf.control_dependencies(checks):
            model_inputs = {name: tf.identity(value) for name, value in model_inputs.items()}
        if len(contract) == 1:
            outputs = model(model_inputs[contract[0].target], training=False)
        else:
            outputs = model(model_inputs, training=False)
        result = {}
        if keyed:
            result[KEY] = tf.identity(inputs[KEY])
        if class_names is not None:
            result["probabilities"] = outputs
            result["label"] = tf.gather(tf.constant(class_names), tf.argmax(outputs, axis=-1))
        else:
            result["prediction"] = tf.reshape(outputs, [batch]) if outputs.shape[-1] == 1 else outputs
        return result

    return serve


def export_model(model, export_dir, version=None, warmup_inputs=None, model_name=None, optional_inputs=None):
    """Writes `model` as version `version` of a TF Serving model in `export_dir`.

    The SavedModel has two signatures. `serving_default` takes the raw inputs
    plus a string `key` (one per row) and returns the `key` unchanged with the
    predictions; `without_key` takes the raw inputs only. A classifier (output
    layer `recipes.layers.ClassProbabilities`) returns `probabilities` and
    `label` (the class name); any other model returns `prediction`. Both call
    the model with `training=False`, so dropout and augmentation never run at
    serving. An image input (uint8, `(height, width[, channels])`) is served as
    encoded JPEG/PNG/GIF/BMP bytes (any size and colour mode), decoded and
    resized in the graph. A waveform input (one that feeds a
    `recipes.layers.FitLength`, as in `models.audio`) takes float waveforms
    `[batch, samples]` of any length, or, when it is named `audio`, WAV file
    bytes of any length and sample rate (resampled to the model's in the
    graph); a third keyed signature, named `audio` or `waveform`, takes the
    other form. Bad raw input fails with an error that names the input: an
    empty string, corrupt image or WAV bytes, an unparseable date.

    With `optional_inputs` (a table's target, key, group and unused columns,
    which the model ignores) a fourth keyed signature, `row`, declares them
    beside the model's inputs, each with a default of no rows: a row of the
    training file, target and all, is a request to it as it stands (REST
    `{"signature_name": "row", "instances": [...]}`). TF Serving refuses an
    input a signature does not declare (predict_util.cc
    `VerifyRequestInputsSize`); over gRPC it fills one a request leaves out
    from the signature's defaults, but its REST API needs every declared input
    in each request (json_tensor.cc), so `serving_default` keeps the model's
    inputs and `key` only, as serving data without a target has them.

    The version is written to a temporary folder beside the target and renamed
    into place, so TF Serving's file-system poller never loads a half-written
    version (tensorflow/serving#1086). With `warmup_inputs`, TF Serving warmup
    requests (`assets.extra/tf_serving_warmup_requests`) are built from them.

    Example:

    ```python
    path = serving.export_model(model, "exports/text", warmup_inputs=x_val[:3])
    # tensorflow_model_server --model_name=text --model_base_path=$PWD/exports/text
    ```

    Args:
        model: A Keras model whose inputs are raw data.
        export_dir: The model's folder (TF Serving's `--model_base_path`).
        version: Optional int >= 1, defaults to `None` (one more than the
            highest version already there). An existing version is an error,
            never overwritten.
        warmup_inputs: Optional few real inputs, in the form the model is
            trained on (see `to_serving_inputs`), for the warmup file.
        model_name: Name put in the warmup requests, defaults to the folder
            name of `export_dir`.
        optional_inputs: Optional dict from input name to dtype (`"float32"`,
            `"string"` or `"bool"`, shape `[batch]`) of inputs the `row`
            signature takes and the model ignores, defaults to those
            `recipes.tasks.Task.build_model` recorded (see
            `set_optional_inputs`). A name of a model input or `key` is left out.

    Returns:
        The path of the written version folder.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    export_dir = os.path.abspath(os.fspath(export_dir))
    version = next_version(export_dir) if version is None else check_int("version", version)
    target = os.path.join(export_dir, str(version))
    if os.path.exists(target):
        raise ValueError(f"version {version} already exists at {target}; versions are never overwritten")
    contract = serving_inputs(model)
    if KEY in {spec.name for spec in contract}:
        raise ValueError(f"a model input is named {KEY!r}, the name reserved for the prediction key")
    class_names = class_names_of(model)
    if optional_inputs is None:
        optional_inputs = getattr(model, _OPTIONAL_INPUTS, {})
    optional = _optional_specs(_check_optional_inputs(optional_inputs), contract)

    archive = keras.export.ExportArchive()
    archive.track(model)
    specs = {spec.name: spec.signature_spec for spec in contract}
    keyed_specs = {**specs, KEY: tf.TensorSpec([None], tf.string, name=KEY)}
    archive.add_endpoint(
        KEYED_SIGNATURE, _serving_function(model, contract, class_names, keyed=True), input_signature=[keyed_specs]
    )
    archive.add_endpoint(
        UNKEYED_SIGNATURE, _serving_function(model, contract, class_names, keyed=False), input_signature=[specs]
    )
    if optional:
        archive.add_endpoint(
            ROW_SIGNATURE,
            _with_optional_inputs(_serving_function(model, contract, class_names, keyed=True), optional),
            input_signature=[keyed_specs, optional],
        )
    other_name, other_contract = _other_audio_form(contract)
    if other_contract is not None:
        archive.add_endpoint(
            other_name,
            _serving_function(model, other_contract, class_names, keyed=True),
            input_signature=[
                {
                    **{spec.name: spec.signature_spec for spec in other_contract},
                    KEY: tf.TensorSpec([None], tf.string, name=KEY),
                }
            ],
        )
    os.makedirs(export_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)  # not numeric: TF Serving skips it
    try:
        archive.write_out(staging, verbose=False)
        if warmup_inputs is not None:
            _write_warmup(
                os.path.join(staging, WARMUP_FILE),
                model_name or os.path.basename(export_dir),
                to_serving_inputs(model, warmup_inputs),
                {name: spec.dtype for name, spec in specs.items()},
            )
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _write_warmup(path, model_name, inputs, dtypes):
    """TF Serving replays these PredictRequests when it loads the version, before serving traffic.

    Each input is written in `dtypes[name]`, the dtype its signature declares:
    TF Serving refuses a tensor of any other (float64 values for a float32
    input fail the version's load, tensorflow/serving#1673).
    """
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    os.makedirs(os.path.dirname(path), exist_ok=True)
    rows = len(next(iter(inputs.values())))
    with tf.io.TFRecordWriter(path) as writer:
        for row in range(rows):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=KEYED_SIGNATURE)
            )
            for name, values in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(values[row : row + 1], dtype=dtypes[name]))
            request.inputs[KEY].CopyFrom(tf.make_tensor_proto(np.array([f"warmup-{row}"], dtype=object)))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())

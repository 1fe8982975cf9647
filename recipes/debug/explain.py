"""`explain`: which tokens, pixels, time-frequency cells or columns pushed a model towards a class.

The models of this package take raw inputs (strings, waveforms, uint8 pixels, raw columns) and compute
their features inside, so gradients cannot reach the raw input. Each explanation therefore splits the
model where its features become continuous and attributes the class score to that layer's output:

- text: the `Embedding` output after the `TextVectorization` (summed over the embedding dimension, one
  score per token), or the TF-IDF / multi-hot vector of a bag-of-words model (one score per n-gram);
- audio: the time-frequency features computed in the model (`recipes.layers.MFCC`, or Keras's
  `MelSpectrogram` / `STFTSpectrogram`), one score per frame and coefficient;
- images: the pixels (cast to float), with tf-keras-vis `Gradcam` on the last convolution or `Saliency`
  (SmoothGrad when `smooth_samples` > 0), or integrated gradients;
- tabular: the encoded features of a `FeatureSpace` (one-hot categories, normalised numbers, date
  features), summed back to each raw column; or the input vector of a plain numeric model.

The score explained is the logit of the class (the softmax or sigmoid of the output layer is switched
off while gradients are taken, as tf-keras-vis recommends), so saturated probabilities do not flatten
the gradients.

Integrated gradients (Sundararajan et al., 2017) are written here: tf-keras-vis, the installed
attribution library, has Grad-CAM and saliency maps but no integrated gradients. The path integral from
a baseline of zeros (no token, an utterance's mean coefficients, a black image, the mean row with no
category) is taken with the trapezoidal rule over `steps` intervals, so the attributions of an example
sum to `score(x) - score(baseline)` up to a small error, reported as `completeness_gap`.
"""

import contextlib
import dataclasses
import os
import warnings
import weakref

import numpy as np

from recipes._markdown import markdown_table
from recipes.debug.errors import class_probabilities, model_inputs

KINDS = ("text", "audio", "image", "tabular")
METHODS = {
    "text": ("integrated_gradients", "gradient_x_input"),
    "audio": ("integrated_gradients", "gradient_x_input"),
    "image": ("gradcam", "saliency", "integrated_gradients", "gradient_x_input"),
    "tabular": ("integrated_gradients", "gradient_x_input"),
}
DEFAULT_METHODS = {"text": "integrated_gradients", "audio": "integrated_gradients", "image": "gradcam",
                   "tabular": "integrated_gradients"}  # fmt: skip
# Examples drawn by `Explanation.plot` and detailed in the advice.
MAX_SHOWN = 6
# A frame quieter than this, relative to the loudest frame of the clip, counts as silence.
QUIET_DB = -40.0
# Above this share of the attribution on silent frames, the model listens to the silence.
SILENCE_SHARE = 0.5
_METHOD_NAMES = {
    "integrated_gradients": "integrated gradients",
    "gradient_x_input": "gradient x input",
    "gradcam": "Grad-CAM (tf-keras-vis)",
    "saliency": "saliency (tf-keras-vis)",
}
_INSTALL_HINT = "pip install 'tf-keras-vis>=0.8.7,<0.9'"
_SPLITS = weakref.WeakKeyDictionary()  # model -> {(layer name, output activation): (front, back, masks)}


@dataclasses.dataclass(frozen=True)
class Explanation:
    """What `explain` returns. `str(explanation)` is its `advice`.

    Attributes:
        kind: `"text"`, `"audio"`, `"image"` or `"tabular"`.
        method: The attribution method used (see `METHODS`).
        layer: Name of the layer whose output was attributed (`"embedding"`, `"mfcc"`,
            `"feature_space"`, the last convolution for Grad-CAM, or the input).
        score: `"logit"` (the output activation was switched off) or `"output"` (the model output as is).
        class_names: Class names in label order.
        targets: Array with the class explained for each example.
        predicted: Array with the predicted class of each example.
        probabilities: Array `(examples, classes)` of the model's probabilities.
        attributions: One entry per example. Text: list of `(token, score)`, in text order for token
            sequences (unknown words read `"word [UNK]"`), largest first for bag-of-words n-grams.
            Audio: array `(frames, features)`. Image: heat map array `(height, width)` (Grad-CAM and
            saliency normalised to [0, 1]; integrated gradients signed). Tabular: dict from column to score.
        inputs: The examples as given (texts, waveforms, images, or a dict of columns), for `plot`.
        scores: Array with the explained score of each example, or `None` (Grad-CAM, saliency).
        baseline_scores: Array with the score of the baseline (integrated gradients), else `None`.
        advice: The verdict-first summary: what was explained, the strongest evidence per example, and
            what to do about it.
    """

    kind: str
    method: str
    layer: str
    score: str
    class_names: list
    targets: np.ndarray = dataclasses.field(repr=False)
    predicted: np.ndarray = dataclasses.field(repr=False)
    probabilities: np.ndarray = dataclasses.field(repr=False)
    attributions: list = dataclasses.field(repr=False)
    inputs: object = dataclasses.field(repr=False)
    scores: np.ndarray | None = dataclasses.field(repr=False)
    baseline_scores: np.ndarray | None = dataclasses.field(repr=False)
    advice: str = ""

    def __str__(self):
        return self.advice

    @property
    def completeness_gap(self):
        """Integrated gradients only: per example, |sum of attributions - (score - baseline score)| relative
        to |score - baseline score| (floored at 1e-3). Above 0.05, raise `steps`. `None` for other methods."""
        if self.baseline_scores is None:
            return None
        totals = np.array([_total(a) for a in self.attributions])
        change = self.scores - self.baseline_scores
        return np.abs(totals - change) / np.maximum(np.abs(change), 1e-3)

    def top(self, index=0, k=5):
        """The `k` tokens or columns of example `index` with the largest attribution, largest first.

        Returns:
            A list of `(name, score)`.
        """
        if self.kind not in ("text", "tabular"):
            raise ValueError(f"`top` lists tokens or columns; this explanation is of kind {self.kind!r}")
        items = self.attributions[index]
        items = list(items.items()) if isinstance(items, dict) else list(items)
        return sorted(items, key=lambda item: -item[1])[:k]

    def to_markdown(self):
        """The advice, then a table per example (text and tabular) of the largest attributions."""
        parts = ["## Explanation", self.advice]
        if self.kind in ("text", "tabular"):
            import pandas as pd

            for i in range(min(len(self.attributions), MAX_SHOWN)):
                items = self.attributions[i]
                items = list(items.items()) if isinstance(items, dict) else list(items)
                items = sorted(items, key=lambda item: -abs(item[1]))[:10]
                name = "token" if self.kind == "text" else "column"
                parts.append(f"### Example {i}: {self._caption(i)}")
                parts.append(markdown_table(pd.DataFrame(items, columns=[name, "attribution"]), digits=3))
        return "\n\n".join(parts) + "\n"

    def plot(self, path):
        """Writes a PNG of the first examples (at most 6): tokens highlighted by their score (green for
        the class, red against it), the heat map over the image or the time-frequency plane, or a bar
        chart of the columns.

        Args:
            path: File to write, e.g. `"explanation.png"`.

        Returns:
            `path`, as a string.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        shown = min(len(self.attributions), MAX_SHOWN)
        if self.kind == "image":
            columns = min(shown, 3)
            rows = -(-shown // columns)
            figure = Figure(figsize=(3.2 * columns, 3.4 * rows), layout="constrained")
        elif self.kind == "text":
            figure = Figure(figsize=(10, 1.2 + 1.1 * shown), layout="constrained")
            rows, columns = shown, 1
        else:
            figure = Figure(figsize=(8, 2.6 * shown + 0.4), layout="constrained")
            rows, columns = shown, 1
        FigureCanvasAgg(figure)
        for i in range(shown):
            axes = figure.add_subplot(rows, columns, i + 1)
            getattr(self, f"_plot_{self.kind}")(axes, i)
            axes.set_title(self._caption(i), fontsize="small", loc="left")
        figure.suptitle(f"{_METHOD_NAMES[self.method]} on {self.layer!r} ({self.score})", fontsize="medium")
        path = os.fspath(path)
        figure.savefig(path, dpi=100)
        return path

    def _caption(self, i):
        predicted, target = self.class_names[self.predicted[i]], self.class_names[self.targets[i]]
        caption = f"[{i}] predicted {predicted!r} ({self.probabilities[i, self.predicted[i]]:.2f})"
        return caption if target == predicted else caption + f", explaining {target!r}"

    def _plot_text(self, axes, i):
        axes.set_axis_off()
        tokens = self.attributions[i]
        largest = max((abs(s) for _, s in tokens), default=0.0) or 1.0
        x, y, width = 0.0, 0.75, 0.0118  # axes fraction per character, for a 10-inch figure at small font
        for token, value in tokens:
            extent = (len(token) + 1) * width
            if x + extent > 1.0 and x > 0:
                x, y = 0.0, y - 0.35
            strength = min(abs(value) / largest, 1.0)
            colour = (1 - strength * 0.8, 1.0, 1 - strength * 0.8) if value > 0 else (1.0, 1 - strength * 0.8, 1 - strength * 0.8)
            axes.text(x, y, token, transform=axes.transAxes, fontsize="small", family="monospace",
                      bbox=dict(facecolor=colour, edgecolor="none", pad=1.5))  # fmt: skip
            x += extent

    def _plot_image(self, axes, i):
        image = np.asarray(self.inputs[i], dtype=np.float32)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        image = (image - image.min()) / max(float(image.max() - image.min()), 1e-6)
        axes.imshow(image, cmap="gray" if image.ndim == 2 else None)
        heat = self.attributions[i]
        if self.method in ("integrated_gradients", "gradient_x_input"):
            limit = float(np.abs(heat).max()) or 1.0
            axes.imshow(heat, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.55)
        else:
            axes.imshow(heat, cmap="jet", vmin=0.0, vmax=1.0, alpha=0.45)
        axes.set_xticks([])
        axes.set_yticks([])

    def _plot_audio(self, axes, i):
        heat = np.asarray(self.attributions[i]).T  # features up, time along
        limit = float(np.abs(heat).max()) or 1.0
        image = axes.imshow(heat, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes.set_xlabel("frame")
        axes.set_ylabel("coefficient" if self.layer != "mel_spectrogram" else "bin")
        axes.figure.colorbar(image, ax=axes, label="attribution", shrink=0.9)

    def _plot_tabular(self, axes, i):
        names = list(self.attributions[i])
        values = np.array([self.attributions[i][n] for n in names])
        axes.barh(names, values, color=np.where(values >= 0, "tab:green", "tab:red"))
        axes.axvline(0, color="black", linewidth=0.8)
        axes.invert_yaxis()
        axes.set_xlabel("attribution")


def explain(model, inputs, *, kind=None, target=None, method=None, steps=50, smooth_samples=0, batch_size=64):
    """Attributes a classifier's decision on each example to its tokens, pixels, time-frequency cells or columns.

    The kind of model is read from its layers when `kind` is `None`: a string input with a
    `TextVectorization` is text, an `MFCC` or mel/STFT spectrogram layer is audio, an image input
    (height, width[, channels]) with a `Conv2D` is an image, and named scalar inputs encoded by a nested
    model (a `FeatureSpace`), or a single input vector, are tabular. See the module docstring for where
    each kind is attributed and why.

    Example:

    ```python
    import recipes
    from models import text
    from recipes.debug import explain

    reviews = recipes.datasets.load_rotten_tomatoes()
    model = text.lstm_classifier(reviews.text[:1000], 2, class_names=["rotten", "fresh"], sequence_length=32)
    model.fit(reviews.text[:1000].to_numpy(), reviews.label[:1000].to_numpy(), epochs=1, verbose=0)
    explanation = explain(model, ["a gorgeous, witty film", "dull and far too long"])
    print(explanation)  # integrated gradients over 'embedding' ... [0] predicted 'fresh' ...: for: 'witty' +0.21, ...
    explanation.plot("tokens.png")
    ```

    Args:
        model: A classifier `keras.Model` with class probabilities out (softmax, or one sigmoid unit).
        inputs: The examples, raw as the model takes them: a sequence of strings (text), an array of
            waveforms `(examples, samples)` (audio), an array of images `(examples, height, width[,
            channels])` (image), or a dict of column arrays / a `pandas.DataFrame` (tabular; a 2-D array
            for a single-input numeric model). A single string, waveform or image is one example.
        kind: `None` (inferred) or one of `KINDS`.
        target: Class to explain: `None` (the predicted class of each example, default), a class id
            or name for all examples, or a sequence with one per example.
        method: `None` (the kind's default: integrated gradients, Grad-CAM for images) or one of
            `METHODS[kind]`.
        steps: Int >= 1, defaults to 50. Integration intervals for integrated gradients.
        smooth_samples: Int >= 0, defaults to 0. SmoothGrad noisy copies for `method="saliency"`.
        batch_size: Int >= 1, defaults to 64. Rows per gradient batch.

    Returns:
        An `Explanation`.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model of type {type(model).__name__}")
    for name, value, minimum in (("steps", steps, 1), ("smooth_samples", smooth_samples, 0),
                                 ("batch_size", batch_size, 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")
    if kind is None:
        kind = infer_kind(model)
    elif kind not in KINDS:
        raise ValueError(f"`kind` must be None or one of {KINDS}. Received: kind={kind!r}")
    else:
        _check_kind(model, kind)
    method = DEFAULT_METHODS[kind] if method is None else method
    if method not in METHODS[kind]:
        raise ValueError(f"`method` for {kind} must be one of {METHODS[kind]}. Received: method={method!r}")

    x = _examples(model, inputs, kind)
    probabilities = class_probabilities(model.predict(x, batch_size=int(batch_size), verbose=0))
    from recipes.layers import class_names_of

    class_names = class_names_of(model) or [str(i) for i in range(probabilities.shape[1])]
    predicted = probabilities.argmax(axis=1)
    targets = _targets(target, predicted, class_names)
    settings = dict(method=method, steps=int(steps), batch_size=int(batch_size), smooth_samples=int(smooth_samples))
    with _logits(model) as score:
        result = globals()[f"_explain_{kind}"](model, x, targets, **settings)
    attributions, layer, scores, baseline_scores, notes = result
    explanation = Explanation(
        kind, method, layer, score, class_names, targets, predicted, probabilities, attributions, x, scores,
        baseline_scores,
    )  # fmt: skip
    return dataclasses.replace(explanation, advice=_advice(explanation, notes))


# -- which kind of model -------------------------------------------------------------------------------


def infer_kind(model):
    """`"text"`, `"audio"`, `"image"` or `"tabular"` from the model's inputs and layers, else a `ValueError`."""
    import keras

    layers = list(_all_layers(model))
    inputs = model.inputs
    if any(isinstance(layer, keras.layers.TextVectorization) for layer in layers):
        return "text"
    if _audio_layer(model, required=False) is not None:
        return "audio"
    if len(inputs) == 1 and len(inputs[0].shape) in (3, 4) and any(_is_conv2d(layer) for layer in layers):
        return "image"
    if _encoder_layer(model) is not None or (len(inputs) == 1 and len(inputs[0].shape) == 2 and _floating(inputs[0])):
        return "tabular"
    described = ", ".join(f"{t.name} {tuple(t.shape)} {t.dtype}" for t in inputs)
    raise ValueError(
        f"cannot tell which kind of model this is (inputs: {described}): expected a string input with a "
        "TextVectorization (text), an MFCC or spectrogram layer (audio), an image input with a Conv2D (image), "
        "or named column inputs encoded by a FeatureSpace or a single feature vector (tabular). Pass `kind=`."
    )


def _check_kind(model, kind):
    """A `ValueError` naming what is missing when a `kind` passed by the caller does not fit the model."""
    import keras

    inputs = model.inputs
    if kind == "text" and not any(isinstance(layer, keras.layers.TextVectorization) for layer in model.layers):
        raise ValueError("kind='text' needs a model whose string input goes through a TextVectorization layer")
    if kind == "audio":
        _audio_layer(model)
    if kind == "image" and not (len(inputs) == 1 and len(inputs[0].shape) in (3, 4)):
        shapes = [tuple(t.shape) for t in inputs]
        raise ValueError(f"kind='image' needs one image input (batch, height, width[, channels]). Received {shapes}")
    if kind == "tabular" and _encoder_layer(model) is None and not (
        len(inputs) == 1 and len(inputs[0].shape) == 2 and _floating(inputs[0])
    ):
        raise ValueError(
            "kind='tabular' needs named column inputs encoded by a nested model (a FeatureSpace, as "
            "models.tabular builds) or a single float input vector"
        )


def _all_layers(model):
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _all_layers(layer)


def _is_conv2d(layer):
    import keras

    return isinstance(
        layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)
    )


def _floating(tensor):
    return "float" in str(tensor.dtype)


def _audio_layer(model, required=True):
    import keras

    from recipes.layers import MFCC

    spectrograms = (MFCC, keras.layers.MelSpectrogram, keras.layers.STFTSpectrogram)
    for layer in model.layers:
        if isinstance(layer, spectrograms):
            return layer
    if required:
        raise ValueError(
            "kind='audio' needs a model that computes its time-frequency features with an MFCC, "
            "MelSpectrogram or STFTSpectrogram layer (at the top level of the model); none was found in "
            f"{[layer.name for layer in model.layers]}"
        )
    return None


def _encoder_layer(model):
    """A nested model fed by every raw input that outputs one flat float vector: a FeatureSpace encoder."""
    import keras

    if len(model.inputs) < 1:
        return None
    for layer in model.layers:
        if isinstance(layer, keras.Model) and len(layer.outputs) == 1:
            output = layer.outputs[0]
            if len(output.shape) == 2 and _floating(output) and all(len(t.shape) <= 2 for t in layer.inputs):
                return layer
    return None


# -- the examples and the classes to explain -----------------------------------------------------------


def _examples(model, inputs, kind):
    if kind == "text":
        texts = np.asarray([inputs] if isinstance(inputs, str) else inputs, dtype=object)
        if texts.ndim != 1 or texts.size == 0 or not all(isinstance(t, str) for t in texts):
            raise ValueError(
                "text models explain a non-empty sequence of strings (or one string). "
                f"Received shape {texts.shape}, e.g. {texts.reshape(-1)[:2].tolist()!r}"
            )
        return texts
    if kind == "tabular" and len(model.inputs) > 1:
        x = model_inputs(model, inputs)
        if not isinstance(x, dict):
            raise ValueError(
                f"a tabular model explains a dict of columns or a DataFrame with {[t.name for t in model.inputs]}. "
                f"Received: {type(inputs).__name__}"
            )
        return x
    if hasattr(inputs, "columns") or isinstance(inputs, dict):
        inputs = model_inputs(model, inputs)
        inputs = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
    array = np.asarray(inputs)
    expected = tuple(model.inputs[0].shape[1:])
    if array.ndim == len(expected):
        array = array[None]
    if array.dtype.kind not in "biuf" or array.ndim != len(expected) + 1 or array.shape[0] == 0 or any(
        e is not None and e != s for e, s in zip(expected, array.shape[1:])
    ):
        raise ValueError(
            f"this {kind} model takes numeric examples of shape {expected} (batch first). Received an array of "
            f"shape {array.shape} and dtype {array.dtype}"
        )
    return array


def _targets(target, predicted, class_names):
    n = len(predicted)
    if target is None:
        return predicted.astype(np.int64)
    values = [target] * n if isinstance(target, (str, int, np.integer)) else list(target)
    if len(values) != n:
        raise ValueError(f"`target` must be one class or one per example ({n}). Received {len(values)} values")
    ids = []
    for value in values:
        if isinstance(value, str):
            if value not in class_names:
                raise ValueError(f"`target` {value!r} is not a class name; the classes are {class_names}")
            value = class_names.index(value)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < len(class_names):
            raise ValueError(
                f"`target` must be a class id in 0..{len(class_names) - 1} or a class name. Received: {value!r}"
            )
        ids.append(int(value))
    return np.array(ids, dtype=np.int64)


@contextlib.contextmanager
def _logits(model):
    """Switches a softmax or sigmoid output activation off while gradients are taken, and back on."""
    import keras

    layer = model.layers[-1] if model.layers else None
    activation = getattr(layer, "activation", None)
    if getattr(activation, "__name__", "") not in ("softmax", "sigmoid"):
        yield "output"
        return
    layer.activation = keras.activations.linear
    try:
        yield "logit"
    finally:
        layer.activation = activation


# -- attribution on a layer's output -------------------------------------------------------------------


def _target_scores(outputs, targets):
    import tensorflow as tf

    if outputs.shape[-1] == 1:  # one sigmoid unit: class 1 pushes it up, class 0 down
        return outputs[:, 0] * tf.cast(tf.where(targets == 1, 1.0, -1.0), outputs.dtype)
    return tf.gather(outputs, targets[:, None], batch_dims=1)[:, 0]


def _gradient_function(back):
    """A compiled function: (features, extras, targets) to the gradients of the target scores and the scores.

    Compiled once per split model and reused for every example: eager recurrent layers are many times slower.
    """
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def gradients(features, extras, targets):
        with tf.GradientTape() as tape:
            tape.watch(features)
            outputs = back([features, *extras] if extras else features, training=False)
            score = _target_scores(outputs, targets)
        return tape.gradient(score, features), score

    return gradients


def _gradients(function, features, extras, targets, batch_size):
    """Gradients of the target score with respect to `features`, and the scores, in batches."""
    import tensorflow as tf

    gradients, scores = [], []
    for start in range(0, len(features), batch_size):
        chunk = tf.convert_to_tensor(features[start : start + batch_size], tf.float32)
        rest = [tf.convert_to_tensor(e[start : start + batch_size]) for e in extras]
        gradient, score = function(chunk, rest, tf.constant(targets[start : start + batch_size]))
        if gradient is None:
            raise ValueError("the model's output does not depend differentiably on the attributed layer's output")
        gradients.append(gradient.numpy())
        scores.append(score.numpy())
    return np.concatenate(gradients), np.concatenate(scores)


def attribute(back, features, targets, *, extras=(), method="integrated_gradients", steps=50, batch_size=64):
    """Attributions of the target score to `features`, for `back(features[, *extras])` returning the model output.

    Integrated gradients from a zero baseline, written here because no installed library has them for
    Keras 3 (tf-keras-vis has Grad-CAM and saliency only): the straight path from 0 to each example is
    split into `steps` intervals and the gradients averaged with the trapezoidal rule. Gradient x input
    is one gradient per example.

    Args:
        back: Callable (the part of the model after the split) from a float batch, plus `extras`
            (such as a padding mask) when given, to the model output.
        features: Float array `(examples, ...)`: the split layer's output on the examples.
        targets: Int array, the class explained per example.
        extras: Arrays passed unchanged after `features`, one row per example.
        method: `"integrated_gradients"` or `"gradient_x_input"`.
        steps: Int, integration intervals.
        batch_size: Int, rows per gradient batch for gradient x input (integrated gradients take the
            `steps + 1` points of one example's path per batch).

    Returns:
        `(attributions, scores, baseline_scores)`: an array shaped as `features`, the score of each
        example, and the score of its baseline (`None` for gradient x input).
    """
    features = np.asarray(features, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int32)
    function = _gradient_function(back) if not hasattr(back, "gradient_function") else back.gradient_function
    if method == "gradient_x_input":
        gradients, scores = _gradients(function, features, extras, targets, batch_size)
        return features * gradients, scores, None
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] = 0.5 / steps
    attributions = np.zeros_like(features)
    scores, baseline_scores = np.zeros(len(features)), np.zeros(len(features))
    shape = (steps + 1,) + (1,) * (features.ndim - 1)
    for i, example in enumerate(features):
        path = alphas.reshape(shape) * example[None]
        repeated = [np.repeat(np.asarray(e)[i : i + 1], steps + 1, axis=0) for e in extras]
        # One batch per path: a constant shape, so the compiled gradient function is traced once.
        gradients, path_scores = _gradients(function, path, repeated, np.full(steps + 1, targets[i]), steps + 1)
        attributions[i] = example * np.tensordot(weights, gradients, axes=1)
        scores[i], baseline_scores[i] = path_scores[-1], path_scores[0]
    return attributions, scores, baseline_scores


def _node_output(model, layer):
    """The output tensor of `layer` inside `model`'s graph (for a nested model, `layer.output` is the
    output of its own inner graph, so the node of the outer call is looked up)."""
    nodes = {id(node) for depth in model._nodes_by_depth.values() for node in depth}
    for node in layer._inbound_nodes:
        if id(node) in nodes:
            return node.output_tensors[0]
    raise ValueError(f"layer {layer.name!r} is not called in model {model.name!r}")


def _split(model, layer, extra_outputs=()):
    """`front`: raw inputs to the layer's output (and `extra_outputs`); `back`: from there to the output.

    Kept per model and layer, with `back.gradient_function` compiled once: tracing the gradient of a
    recurrent model takes seconds, and explaining the same model again should not pay it twice.
    """
    import keras

    cache = _SPLITS.setdefault(model, {})
    key = (layer.name, getattr(model.layers[-1], "activation", None))
    if key not in cache:
        tensor = _node_output(model, layer)
        mask = getattr(tensor, "_keras_mask", None)  # a padding mask travels beside the tensor and must be fed too
        masks = [mask] if mask is not None else []
        front = keras.Model(model.input, [tensor, *masks, *extra_outputs])  # `input` keeps a dict of named inputs
        back = keras.Model([tensor, *masks], model.outputs[0])
        back.gradient_function = _gradient_function(back)
        cache[key] = front, back, len(masks)
    return cache[key]


def _run(front, x, batch_size):
    """`front` on `x` in batches, called directly (`predict` would trace a new function for every split)."""
    rows = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    chunks = []
    for start in range(0, rows, batch_size):
        if isinstance(x, dict):
            batch = {name: value[start : start + batch_size] for name, value in x.items()}
        else:
            batch = x[start : start + batch_size]
        outputs = front(batch, training=False)
        chunks.append([np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])])
    return [np.concatenate(parts) for parts in zip(*chunks)]


# -- the four kinds ------------------------------------------------------------------------------------


def _explain_text(model, texts, targets, method, steps, batch_size, **_):
    import keras

    vectorizers = [layer for layer in model.layers if isinstance(layer, keras.layers.TextVectorization)]
    if not vectorizers:
        raise ValueError(
            "kind='text' needs a model whose string input goes through a TextVectorization layer at its top level"
        )
    vectorizer = vectorizers[0]
    vocabulary = np.array(vectorizer.get_vocabulary(), dtype=object)
    if vectorizer.get_config()["output_mode"] != "int":  # TF-IDF, counts or multi-hot: one feature per n-gram
        front, back, _ = _split(model, vectorizer)
        (features,) = _run(front, texts, batch_size)
        values, scores, baseline = attribute(back, features, targets, method=method, steps=steps, batch_size=batch_size)
        attributions = []
        for row, value in zip(features, values):
            present = np.flatnonzero(row)
            attributions.append(sorted(((str(vocabulary[j]), float(value[j])) for j in present), key=lambda t: -t[1]))
        return attributions, vectorizer.name, scores, baseline, []
    embeddings = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    if not embeddings:
        raise ValueError("a text model with token ids needs an Embedding layer at its top level to attribute over")
    embedding = embeddings[0]
    token_ids = _node_input(model, embedding)
    front, back, _ = _split(model, embedding, extra_outputs=[token_ids])
    features, *extras, ids = _run(front, texts, batch_size)
    values, scores, baseline = attribute(
        back, features, targets, extras=extras, method=method, steps=steps, batch_size=batch_size
    )
    per_token = values.sum(axis=-1)
    words = _words(vectorizer, texts)
    attributions = []
    for i, row in enumerate(ids):
        tokens = []
        for position in np.flatnonzero(row):
            token = str(vocabulary[row[position]])
            if row[position] == 1 and words is not None and position < len(words[i]):
                token = f"{words[i][position]} {token}"  # show the unknown word itself
            tokens.append((token, float(per_token[i, position])))
        attributions.append(tokens)
    return attributions, embedding.name, scores, baseline, []


def _node_input(model, layer):
    nodes = {id(node) for depth in model._nodes_by_depth.values() for node in depth}
    for node in layer._inbound_nodes:
        if id(node) in nodes:
            return node.input_tensors[0]
    raise ValueError(f"layer {layer.name!r} is not called in model {model.name!r}")


def _words(vectorizer, texts):
    """The standardised words of each text, when tokens are single words (to name unknown words)."""
    config = vectorizer.get_config()
    if config.get("ngrams") or config.get("split") != "whitespace":
        return None
    try:
        ragged = vectorizer._preprocess(texts.astype(str))  # Keras's own standardise-and-split step
    except Exception:  # noqa: BLE001 - private API; names of unknown words are a nicety
        return None
    return [[w.decode() if isinstance(w, bytes) else str(w) for w in row] for row in ragged.to_list()]


def _explain_audio(model, waveforms, targets, method, steps, batch_size, **_):
    import keras

    layer = _audio_layer(model)
    front, back, _ = _split(model, layer)
    features, *extras = _run(front, waveforms.astype(np.float32), batch_size)
    values, scores, baseline = attribute(
        back, features, targets, extras=extras, method=method, steps=steps, batch_size=batch_size
    )
    transposed = isinstance(layer, (keras.layers.MelSpectrogram, keras.layers.STFTSpectrogram))
    maps = [v.T if transposed else v for v in values]  # always (frames, features)
    config = layer.get_config()
    frame_length = config.get("frame_length", config.get("sequence_length"))
    frame_step = config.get("frame_step", config.get("sequence_stride"))
    notes = []
    if frame_length and frame_step:
        for i, heat in enumerate(maps):
            quiet = _quiet_frames(waveforms[i], frame_length, frame_step, heat.shape[0])
            mass = np.abs(heat).sum(axis=1)
            share = float(mass[quiet].sum() / max(mass.sum(), 1e-12))
            notes.append(share)
    return maps, layer.name, scores, baseline, notes


def _quiet_frames(waveform, frame_length, frame_step, num_frames):
    """Frames (centred at `t * frame_step`, as Keras's spectrogram layers frame) below `QUIET_DB` of the loudest."""
    padded = np.pad(np.asarray(waveform, dtype=np.float64), frame_length // 2)
    loudness = np.array(
        [np.sqrt(np.mean(padded[t * frame_step : t * frame_step + frame_length] ** 2) + 1e-20) for t in range(num_frames)]
    )
    return 20 * np.log10(loudness / max(loudness.max(), 1e-10)) < QUIET_DB


def _float_image_model(model):
    """A copy of an image model whose input is float32, so gradients reach the pixels, with a linear head.

    Cloned while `_logits` has the head linear, so the copy's head is linear too; kept per model, with
    the weights copied again at every call.
    """
    import keras

    cache = _SPLITS.setdefault(model, {})
    key = ("float image model", getattr(model.layers[-1], "activation", None))
    if key not in cache:
        source = model.inputs[0]
        float_input = keras.Input(shape=tuple(source.shape[1:]), dtype="float32", name=source.name)
        clone = keras.models.clone_model(model, input_tensors=float_input)
        clone.gradient_function = _gradient_function(clone)
        cache[key] = clone
    clone = cache[key]
    clone.set_weights(model.get_weights())
    return clone


def _explain_image(model, images, targets, method, steps, batch_size, smooth_samples, **_):
    clone = _float_image_model(model)
    pixels = images.astype(np.float32)
    if method in ("integrated_gradients", "gradient_x_input"):
        values, scores, baseline = attribute(clone, pixels, targets, method=method, steps=steps, batch_size=batch_size)
        maps = values.sum(axis=-1) if values.ndim == 4 else values
        return list(maps), model.inputs[0].name, scores, baseline, []
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError as error:
        raise ImportError(f"method={method!r} needs tf-keras-vis: {_INSTALL_HINT}") from error
    score = CategoricalScore([int(t) for t in targets])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tf-keras-vis passes a single input as a list
        if method == "gradcam":
            convolutions = [layer for layer in clone.layers if _is_conv2d(layer)]
            if not convolutions:
                raise ValueError(
                    "method='gradcam' needs a Conv2D layer at the top level of the model; use method='saliency'"
                )
            layer = convolutions[-1].name
            maps = Gradcam(clone, clone=False)(score, pixels, penultimate_layer=layer, seek_penultimate_conv_layer=False)
        else:
            layer = model.inputs[0].name
            maps = Saliency(clone, clone=False)(score, pixels, smooth_samples=smooth_samples, keepdims=True)
            maps = maps.max(axis=-1) if maps.ndim == 4 else maps
    return list(np.asarray(maps, dtype=np.float32)), layer, None, None, []


def _explain_tabular(model, x, targets, method, steps, batch_size, **_):
    encoder = _encoder_layer(model)
    if encoder is not None:
        front, back, _ = _split(model, encoder)
        features, *extras = _run(front, x, batch_size)
        columns = _encoded_columns(encoder)
        layer = encoder.name
        order = [t.name for t in model.inputs]
    elif len(model.inputs) == 1 and len(model.inputs[0].shape) == 2 and _floating(model.inputs[0]):
        features, extras, back = np.asarray(x, dtype=np.float32), [], model
        columns = [f"feature_{j}" for j in range(features.shape[1])]
        layer, order = model.inputs[0].name, columns
    else:
        raise ValueError(
            "kind='tabular' needs named column inputs encoded by a nested model (a FeatureSpace, as "
            "models.tabular builds) or a single float input vector"
        )
    values, scores, baseline = attribute(
        back, features, targets, extras=extras, method=method, steps=steps, batch_size=batch_size
    )
    names = [n for n in order if n in set(columns)] + sorted(set(columns) - set(order))
    attributions = []
    for row in values:
        totals = dict.fromkeys(names, 0.0)
        for column, value in zip(columns, row):
            totals[column] += float(value)
        attributions.append(totals)
    return attributions, layer, scores, baseline, []


def _encoded_columns(encoder):
    """The raw column behind each encoded feature: parts of the final concatenation traced back to inputs."""
    names = {id(t): t.name for t in encoder.inputs}
    memo = {}

    def sources(tensor):
        if id(tensor) in names:
            return frozenset([names[id(tensor)]])
        if id(tensor) not in memo:
            operation, node_index, _ = tensor._keras_history
            node = operation._inbound_nodes[node_index]
            memo[id(tensor)] = frozenset().union(*(sources(t) for t in node.input_tensors)) if node.input_tensors else frozenset()
        return memo[id(tensor)]

    output = encoder.outputs[0]
    width = output.shape[-1]
    operation, node_index, _ = output._keras_history
    parts = operation._inbound_nodes[node_index].input_tensors
    widths = [t.shape[-1] for t in parts]
    if "concat" in type(operation).__name__.lower() and None not in widths and sum(widths) == width:
        return [" x ".join(sorted(sources(part))) for part, w in zip(parts, widths) for _ in range(w)]
    return [" x ".join(sorted(sources(output)))] * width


# -- the advice ----------------------------------------------------------------------------------------

_WHAT = {
    "text": "the tokens",
    "audio": "the time-frequency features",
    "image": "the pixels",
    "tabular": "the columns",
}
_ACTIONS = {
    "text": (
        "If a token with no bearing on the task (a name, a placeholder, a source tag, punctuation) tops an "
        "example, the model learned a shortcut: remove it from the training texts or balance it across classes."
    ),
    "audio": (
        "Heat on silent frames or on a fixed time means the model listens to the recording (silence, offset, "
        "noise) rather than the word: vary offsets and add noise in training."
    ),
    "image": (
        "If the heat sits on the background, a border or a watermark rather than on the object, the model uses a "
        "shortcut: crop, augment, or collect images where that part varies."
    ),
    "tabular": (
        "A column that ranks first but is not known at prediction time (an id, a date or a value recorded after the "
        "fact, the target in disguise) is leakage: drop it and retrain."
    ),
}


def _advice(explanation, notes):
    e = explanation
    n = len(e.attributions)
    head = (
        f"{_METHOD_NAMES[e.method]} over {_WHAT[e.kind]} ({e.layer!r} output), {n} example{'s' * (n != 1)}; "
        f"score: the {e.score} of the explained class."
    )
    gap = e.completeness_gap
    if gap is not None:
        worst = float(np.max(gap))
        verdict = "trustworthy" if worst <= 0.05 else "approximate: raise `steps`"
        head += f" Completeness: attributions sum to score - baseline score within {worst:.1%} ({verdict})."
    lines = [head]
    if e.kind == "tabular" and n > 1:
        mean = {c: float(np.mean([abs(a[c]) for a in e.attributions])) for c in e.attributions[0]}
        ranked = sorted(mean.items(), key=lambda item: -item[1])
        lines.append("Columns by mean |attribution|: " + ", ".join(f"{c} {v:.3g}" for c, v in ranked[:8]) + ".")
    for i in range(min(n, MAX_SHOWN)):
        lines.append(f"- {e._caption(i)}: {_evidence(e, i, notes)}")
    if n > MAX_SHOWN:
        lines.append(f"- ... {n - MAX_SHOWN} more in `attributions`")
    lines.append(_ACTIONS[e.kind])
    return "\n".join(lines)


def _evidence(e, i, notes):
    if e.kind in ("text", "tabular"):
        items = e.attributions[i]
        items = list(items.items()) if isinstance(items, dict) else list(items)
        positive = sorted((t for t in items if t[1] > 0), key=lambda t: -t[1])[:4]
        negative = sorted((t for t in items if t[1] < 0), key=lambda t: t[1])[:3]
        parts = []
        if positive:
            parts.append("for: " + ", ".join(f"{name!r} {value:+.3g}" for name, value in positive))
        if negative:
            parts.append("against: " + ", ".join(f"{name!r} {value:+.3g}" for name, value in negative))
        return "; ".join(parts) or "no token or column moves the score"
    heat = np.asarray(e.attributions[i])
    peak = np.unravel_index(np.argmax(np.abs(heat)), heat.shape)
    if e.kind == "audio":
        text = f"strongest at frame {peak[0]} of {heat.shape[0]}, feature {peak[1]}"
        if notes:
            share = notes[i]
            text += f"; {share:.0%} of the attribution on quiet frames"
            if share > SILENCE_SHARE:
                text += " (the model listens to the silence: check the recordings' offsets and padding)"
        return text
    weights = np.abs(heat)
    if not weights.any():
        return "the map is all zero (no positive evidence at this layer): try method='saliency' or 'integrated_gradients'"
    total = weights.sum()
    rows, columns = np.indices(heat.shape)
    centre = (float((rows * weights).sum() / total), float((columns * weights).sum() / total))
    return (
        f"heat peaks at row {peak[0]}, column {peak[1]} of {heat.shape[0]}x{heat.shape[1]}, "
        f"centre of mass ({centre[0]:.1f}, {centre[1]:.1f})"
    )


def _total(attribution):
    if isinstance(attribution, dict):
        return float(sum(attribution.values()))
    if isinstance(attribution, list):
        return float(sum(value for _, value in attribution))
    return float(np.sum(attribution))

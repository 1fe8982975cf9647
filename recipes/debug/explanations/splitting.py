"""Splitting a model where its features become continuous, so that gradients can reach them.

The models of this package take raw inputs (strings, waveforms, uint8 pixels, raw columns) and compute their
features inside. A split gives `front` (raw inputs to a layer's output) and `back` (from there to the model
output); both are kept per model and layer, with `back`'s gradient function compiled once: tracing the
gradient of a recurrent model takes seconds, and explaining the same model again should not pay it twice.
"""

import contextlib
import weakref

import numpy as np

from recipes.debug.explanations.integrated_gradients import gradient_function

SPLITS = weakref.WeakKeyDictionary()  # model -> {(layer name, output activation): split or float clone}


@contextlib.contextmanager
def logits(model):
    """Switches a softmax or sigmoid output activation off while gradients are taken, and back on.

    Yields `"logit"` when it did, `"output"` when the output has no such activation (it is explained as is).
    """
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


def _outer_node(model, layer):
    """The node of `layer`'s call inside `model`'s graph (for a nested model, `layer.output` is the output
    of its own inner graph, so the node of the outer call is looked up)."""
    nodes = {id(node) for depth in model._nodes_by_depth.values() for node in depth}
    for node in layer._inbound_nodes:
        if id(node) in nodes:
            return node
    raise ValueError(f"layer {layer.name!r} is not called in model {model.name!r}")


def node_output(model, layer):
    """The output tensor of `layer` inside `model`'s graph."""
    return _outer_node(model, layer).output_tensors[0]


def node_input(model, layer):
    """The input tensor of `layer` inside `model`'s graph."""
    return _outer_node(model, layer).input_tensors[0]


def split(model, layer, extra_outputs=()):
    """`(front, back, num_masks)`: `front` from the raw inputs to the layer's output (then its padding mask,
    if any, then the raw inputs when a path bypasses the layer, then `extra_outputs`), `back` from the layer's
    output (and the same mask and raw inputs) to the model output, with `back.gradient_function`.

    A model with a path around the layer (a wide-and-deep text model: TF-IDF beside the embeddings) gets its
    raw inputs into `back` as well: that path keeps the example's own value while the attributed layer's
    output moves along the integration path.
    """
    import keras

    cache = SPLITS.setdefault(model, {})
    key = (layer.name, getattr(model.layers[-1], "activation", None))
    if key not in cache:
        tensor = node_output(model, layer)
        mask = getattr(tensor, "_keras_mask", None)  # a padding mask travels beside the tensor and must be fed too
        masks = [mask] if mask is not None else []
        try:
            back = keras.Model([tensor, *masks], model.outputs[0])
            bypass = []
        except ValueError:  # the output also depends on the raw inputs by another path
            bypass = list(model.inputs)
            back = keras.Model([tensor, *masks, *bypass], model.outputs[0])
        front = keras.Model(model.input, [tensor, *masks, *bypass, *extra_outputs])  # `input` keeps a dict of names
        back.gradient_function = gradient_function(back)
        cache[key] = front, back, len(masks)
    return cache[key]


def run_in_batches(front, x, batch_size):
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


def float_image_model(model):
    """A copy of an image model whose input is float32, so gradients reach the pixels, with a linear head.

    Cloned while `logits` has the head linear, so the copy's head is linear too; kept per model, with the
    weights copied again at every call.
    """
    import keras

    cache = SPLITS.setdefault(model, {})
    key = ("float image model", getattr(model.layers[-1], "activation", None))
    if key not in cache:
        source = model.inputs[0]
        float_input = keras.Input(shape=tuple(source.shape[1:]), dtype="float32", name=source.name)
        clone = keras.models.clone_model(model, input_tensors=float_input)
        clone.gradient_function = gradient_function(clone)
        cache[key] = clone
    clone = cache[key]
    clone.set_weights(model.get_weights())
    return clone

"""Which modality a model is, read from its inputs and layers, and the layers each explainer splits at."""

MODALITIES = ("text", "image", "audio", "table")
METHODS = {
    "text": ("integrated_gradients", "gradient_x_input"),
    "image": ("gradcam", "saliency", "integrated_gradients", "gradient_x_input"),
    "audio": ("integrated_gradients", "gradient_x_input"),
    "table": ("integrated_gradients", "gradient_x_input"),
}
DEFAULT_METHODS = {
    "text": "integrated_gradients",
    "image": "gradcam",
    "audio": "integrated_gradients",
    "table": "integrated_gradients",
}
TABLE_NEEDS = (
    "modality='table' needs named column inputs encoded by a nested model (a FeatureSpace, as models.tabular "
    "builds) or a single float input vector"
)


def infer_modality(model):
    """`"text"`, `"audio"`, `"image"` or `"table"` from the model's inputs and layers, else a `ValueError`."""
    import keras

    layers = list(all_layers(model))
    inputs = model.inputs
    if any(isinstance(layer, keras.layers.TextVectorization) for layer in layers):
        return "text"
    if audio_layer(model, required=False) is not None:
        return "audio"
    if len(inputs) == 1 and len(inputs[0].shape) in (3, 4) and any(is_conv2d(layer) for layer in layers):
        return "image"
    if encoder_layer(model) is not None or is_feature_vector_model(model):
        return "table"
    described = ", ".join(f"{t.name} {tuple(t.shape)} {t.dtype}" for t in inputs)
    raise ValueError(
        "`modality` must be given for this model: it is none the layers show. Expected a string input with a "
        "TextVectorization (text), an MFCC or spectrogram layer (audio), an image input with a Conv2D (image), "
        "or named column inputs encoded by a FeatureSpace or a single feature vector (table). "
        f"Received: a model with inputs {described}"
    )


def check_modality(model, modality):
    """A `ValueError` naming what is missing when a `modality` passed by the caller does not fit the model."""
    import keras

    inputs = model.inputs
    if modality == "text" and not any(isinstance(layer, keras.layers.TextVectorization) for layer in model.layers):
        raise ValueError("modality='text' needs a model whose string input goes through a TextVectorization layer")
    if modality == "audio":
        audio_layer(model)
    if modality == "image" and not (len(inputs) == 1 and len(inputs[0].shape) in (3, 4)):
        shapes = [tuple(t.shape) for t in inputs]
        raise ValueError(
            f"modality='image' needs one image input (batch, height, width[, channels]). Received: inputs {shapes}"
        )
    if modality == "table" and encoder_layer(model) is None and not is_feature_vector_model(model):
        raise ValueError(TABLE_NEEDS)


def all_layers(model):
    """Every layer inside `model`, nested models included, depth first."""
    for layer in getattr(model, "layers", []):
        yield layer
        yield from all_layers(layer)


def is_conv2d(layer):
    import keras

    return isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D))


def is_floating(tensor):
    return "float" in str(tensor.dtype)


def is_feature_vector_model(model):
    """A model with a single float input vector `(batch, features)`: a plain numeric table model."""
    inputs = model.inputs
    return len(inputs) == 1 and len(inputs[0].shape) == 2 and is_floating(inputs[0])


def audio_layer(model, required=True):
    """The top-level layer that computes time-frequency features (`MFCC`, mel or STFT spectrogram)."""
    import keras

    from recipes.layers import MFCC

    spectrograms = (MFCC, keras.layers.MelSpectrogram, keras.layers.STFTSpectrogram)
    for layer in model.layers:
        if isinstance(layer, spectrograms):
            return layer
    if required:
        raise ValueError(
            "modality='audio' needs a model that computes its time-frequency features with an MFCC, "
            "MelSpectrogram or STFTSpectrogram layer at its top level. Received: a model with layers "
            f"{[layer.name for layer in model.layers]}"
        )
    return None


def encoder_layer(model):
    """A nested model fed by every raw input that outputs one flat float vector: a FeatureSpace encoder."""
    import keras

    if len(model.inputs) < 1:
        return None
    for layer in model.layers:
        if isinstance(layer, keras.Model) and len(layer.outputs) == 1:
            output = layer.outputs[0]
            if len(output.shape) == 2 and is_floating(output) and all(len(t.shape) <= 2 for t in layer.inputs):
                return layer
    return None

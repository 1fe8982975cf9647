"""Images: heat maps over the pixels, with tf-keras-vis Grad-CAM and saliency or integrated gradients."""

import warnings

import numpy as np

from recipes.debug.explanations.integrated_gradients import attribute
from recipes.debug.explanations.modalities import is_conv2d
from recipes.debug.explanations.splitting import float_image_model

INSTALL_HINT = "pip install 'tf-keras-vis>=0.8.7,<0.9'"


def explain_image(model, images, class_ids, *, method, steps, batch_size, smooth_samples, **_):
    """`(attributions, layer name, scores, baseline scores, notes)`: per image a heat map `(height, width)`
    (Grad-CAM and saliency normalised to [0, 1]; integrated gradients signed)."""
    clone = float_image_model(model)
    pixels = images.astype(np.float32)
    if method in ("integrated_gradients", "gradient_x_input"):
        values, scores, baseline = attribute(
            clone, pixels, class_ids, method=method, steps=steps, batch_size=batch_size
        )
        maps = values.sum(axis=-1) if values.ndim == 4 else values
        return list(maps), model.inputs[0].name, scores, baseline, []
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError as error:
        raise ImportError(f"method={method!r} needs tf-keras-vis: {INSTALL_HINT}") from error
    score = CategoricalScore([int(t) for t in class_ids])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tf-keras-vis passes a single input as a list
        if method == "gradcam":
            convolutions = [layer for layer in clone.layers if is_conv2d(layer)]
            if not convolutions:
                raise ValueError(
                    "method='gradcam' needs a Conv2D layer at the top level of the model; use method='saliency'"
                )
            layer = convolutions[-1].name
            maps = Gradcam(clone, clone=False)(
                score, pixels, penultimate_layer=layer, seek_penultimate_conv_layer=False
            )
        else:
            layer = model.inputs[0].name
            maps = Saliency(clone, clone=False)(score, pixels, smooth_samples=smooth_samples, keepdims=True)
            maps = maps.max(axis=-1) if maps.ndim == 4 else maps
    return list(np.asarray(maps, dtype=np.float32)), layer, None, None, []

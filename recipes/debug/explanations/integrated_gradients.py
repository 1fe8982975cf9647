"""The attribution engine: integrated gradients (and gradient x input) of a class score to a layer's output.

Integrated gradients (Sundararajan et al., 2017) are written here: tf-keras-vis, the installed attribution
library, has Grad-CAM and saliency maps but no integrated gradients. The path integral from a baseline of
zeros is taken with the trapezoidal rule over `steps` intervals, so the attributions of an example sum to
`score(x) - score(baseline)` up to a small error.
"""

import numpy as np


def class_scores(outputs, class_ids):
    """The score of each row's explained class: its output, or for one sigmoid unit +-the output."""
    import tensorflow as tf

    if outputs.shape[-1] == 1:  # one sigmoid unit: class 1 pushes it up, class 0 down
        return outputs[:, 0] * tf.cast(tf.where(class_ids == 1, 1.0, -1.0), outputs.dtype)
    return tf.gather(outputs, class_ids[:, None], batch_dims=1)[:, 0]


def gradient_function(back):
    """A compiled function: (features, extras, class_ids) to the gradients of the class scores and the scores.

    Compiled once per split model and reused for every example: eager recurrent layers are many times slower.
    """
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def gradients(features, extras, class_ids):
        with tf.GradientTape() as tape:
            tape.watch(features)
            outputs = back([features, *extras] if extras else features, training=False)
            score = class_scores(outputs, class_ids)
        return tape.gradient(score, features), score

    return gradients


def _gradients(function, features, extras, class_ids, batch_size):
    """Gradients of the class score with respect to `features`, and the scores, in batches."""
    import tensorflow as tf

    gradients, scores = [], []
    for start in range(0, len(features), batch_size):
        chunk = tf.convert_to_tensor(features[start : start + batch_size], tf.float32)
        rest = [tf.convert_to_tensor(e[start : start + batch_size]) for e in extras]
        gradient, score = function(chunk, rest, tf.constant(class_ids[start : start + batch_size]))
        if gradient is None:
            raise ValueError("the model's output does not depend differentiably on the attributed layer's output")
        gradients.append(gradient.numpy())
        scores.append(score.numpy())
    return np.concatenate(gradients), np.concatenate(scores)


def attribute(back, features, class_ids, *, extras=(), method="integrated_gradients", steps=50, batch_size=64):
    """Attributions of the class score to `features`, for `back(features[, *extras])` returning the model output.

    Integrated gradients from a zero baseline, written here because no installed library has them for
    Keras 3 (tf-keras-vis has Grad-CAM and saliency only): the straight path from 0 to each example is
    split into `steps` intervals and the gradients averaged with the trapezoidal rule. Gradient x input
    is one gradient per example.

    Args:
        back: Callable (the part of the model after the split) from a float batch, plus `extras`
            (such as a padding mask) when given, to the model output. A `gradient_function` attribute,
            when it has one, is used instead of compiling a new one.
        features: Float array `(examples, ...)`: the split layer's output on the examples.
        class_ids: Int array, the class explained per example.
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
    class_ids = np.asarray(class_ids, dtype=np.int32)
    function = getattr(back, "gradient_function", None) or gradient_function(back)
    if method == "gradient_x_input":
        gradients, scores = _gradients(function, features, extras, class_ids, batch_size)
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
        gradients, path_scores = _gradients(function, path, repeated, np.full(steps + 1, class_ids[i]), steps + 1)
        attributions[i] = example * np.tensordot(weights, gradients, axes=1)
        scores[i], baseline_scores[i] = path_scores[-1], path_scores[0]
    return attributions, scores, baseline_scores

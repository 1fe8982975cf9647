"""`explain`: which tokens, pixels, time-frequency cells or columns pushed a model towards a class.

The models of this package take raw inputs (strings, waveforms, uint8 pixels, raw columns) and compute
their features inside, so gradients cannot reach the raw input. Each explanation therefore splits the
model where its features become continuous (`splitting`) and attributes the class score to that layer's
output (`integrated_gradients`), one explainer per modality:

- text (`text`): the `Embedding` output after the `TextVectorization` (summed over the embedding
  dimension, one score per token), or the TF-IDF / multi-hot vector of a bag-of-words model (one score
  per n-gram);
- audio (`audio`): the time-frequency features computed in the model (`recipes.layers.MFCC`, or Keras's
  `MelSpectrogram` / `STFTSpectrogram`), one score per frame and coefficient;
- image (`image`): the pixels (cast to float), with tf-keras-vis `Gradcam` on the last convolution or
  `Saliency` (SmoothGrad when `smooth_samples` > 0), or integrated gradients;
- table (`table`): the encoded features of a `FeatureSpace` (one-hot categories, normalised numbers, date
  features), summed back to each raw column; or the input vector of a plain numeric model.

The score explained is the logit of the class (the softmax or sigmoid of the output layer is switched
off while gradients are taken, as tf-keras-vis recommends), so saturated probabilities do not flatten
the gradients. Integrated gradients start from a baseline of zeros (no token, an utterance's mean
coefficients, a black image, the mean row with no category) and sum to `score(x) - score(baseline)` up to
a small error, reported as `Explanation.completeness_gap`.
"""

import dataclasses

from recipes._common import check_int, check_one_of
from recipes.debug.errors import class_probabilities
from recipes.debug.explanations import advice, inputs
from recipes.debug.explanations.audio import explain_audio
from recipes.debug.explanations.image import explain_image
from recipes.debug.explanations.integrated_gradients import attribute
from recipes.debug.explanations.modalities import (
    DEFAULT_METHODS,
    METHODS,
    MODALITIES,
    check_modality,
    infer_modality,
)
from recipes.debug.explanations.report import Explanation
from recipes.debug.explanations.splitting import logits
from recipes.debug.explanations.table import explain_table
from recipes.debug.explanations.text import explain_text

EXPLAINERS = {"text": explain_text, "image": explain_image, "audio": explain_audio, "table": explain_table}

__all__ = [
    "DEFAULT_METHODS",
    "EXPLAINERS",
    "METHODS",
    "MODALITIES",
    "Explanation",
    "attribute",
    "explain",
    "infer_modality",
]


def explain(model, x, *, modality=None, class_name=None, method=None, steps=50, smooth_samples=0, batch_size=64):
    """Attributes a classifier's decision on each example to its tokens, pixels, time-frequency cells or columns.

    The modality is read from the model's layers when `modality` is `None`: a string input with a
    `TextVectorization` is text, an `MFCC` or mel/STFT spectrogram layer is audio, an image input
    (height, width[, channels]) with a `Conv2D` is an image, and named scalar inputs encoded by a nested
    model (a `FeatureSpace`), or a single input vector, are a table. See the module docstring for where
    each modality is attributed and why. The verdict is `"info"`: an explanation judges nothing.

    Example:

    ```python
    import recipes
    from models import text
    from recipes.debug import explain

    reviews = recipes.datasets.load_rotten_tomatoes()
    model = text.lstm_classifier(reviews.text[:1000], 2, class_names=["rotten", "fresh"], sequence_length=32)
    model.fit(reviews.text[:1000].to_numpy(), reviews.label[:1000].to_numpy(), epochs=1, verbose=0)
    explanation = explain(model, ["a gorgeous, witty film", "dull and far too long"])
    print(explanation)  # INFO: integrated gradients over the tokens ('embedding' output), 2 examples; ...
    explanation.plot("tokens.png")
    ```

    Args:
        model: A classifier `keras.Model` with class probabilities out (softmax, or one sigmoid unit).
        x: The examples, raw as the model takes them: a sequence of strings (text), an array of
            waveforms `(examples, samples)` (audio), an array of images `(examples, height, width[,
            channels])` (image), or a dict of column arrays / a `pandas.DataFrame` (table; a 2-D array
            for a single-input numeric model). A single string, waveform or image is one example.
        modality: `None` (inferred) or one of `MODALITIES`: `"text"`, `"image"`, `"audio"`, `"table"`.
        class_name: Class to explain: `None` (the predicted class of each example, default), a class
            name or an int class id for all examples, or a sequence with one per example.
        method: `None` (the modality's default: integrated gradients, Grad-CAM for images) or one of
            `METHODS[modality]`.
        steps: Int >= 1, defaults to 50. Integration intervals for integrated gradients.
        smooth_samples: Int >= 0, defaults to 0. SmoothGrad noisy copies for `method="saliency"`.
        batch_size: Int >= 1, defaults to 64. Rows per gradient batch.

    Returns:
        An `Explanation`.
    """
    import keras

    from recipes.layers import class_names_of

    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model of type {type(model).__name__}")
    check_int("steps", steps)
    check_int("smooth_samples", smooth_samples, 0)
    check_int("batch_size", batch_size)
    if modality is None:
        modality = infer_modality(model)
    else:
        modality = check_one_of("modality", modality, MODALITIES)
        check_modality(model, modality)
    method = DEFAULT_METHODS[modality] if method is None else method
    if method not in METHODS[modality]:
        raise ValueError(f"`method` for {modality} must be one of {METHODS[modality]}. Received: method={method!r}")

    x = inputs.examples(model, x, modality)
    probabilities = class_probabilities(model.predict(x, batch_size=int(batch_size), verbose=0))
    class_names = class_names_of(model) or [str(i) for i in range(probabilities.shape[1])]
    predicted = probabilities.argmax(axis=1)
    explained = inputs.explained(class_name, predicted, class_names)
    settings = dict(method=method, steps=int(steps), batch_size=int(batch_size), smooth_samples=int(smooth_samples))
    with logits(model) as score:
        attributions, layer, scores, baseline_scores, notes = EXPLAINERS[modality](model, x, explained, **settings)
    explanation = Explanation(
        verdict="info",
        summary="",
        modality=modality,
        method=method,
        layer=layer,
        score=score,
        class_names=class_names,
        explained=explained,
        predicted=predicted,
        probabilities=probabilities,
        attributions=attributions,
        x=x,
        scores=scores,
        baseline_scores=baseline_scores,
    )
    return dataclasses.replace(
        explanation, summary=advice.summary(explanation), advice=advice.advice(explanation, notes)
    )

"""`augmentation_check`: are a model's random image layers on in training and off at inference?

Image augmentation belongs inside the model, as Keras random layers (`models.vision.augmentation()`), which
change the images in training and pass them through unchanged at inference, so the exported model serves
clean predictions. This check confirms both on real images, layer by layer, and that inference is
deterministic; a custom layer that ignores `training`, or a block left out, shows up here before it skews
an evaluation or a served prediction. (`on_the_fly` applies the same layers in a `tf.data` pipeline
instead, when the model must stay free of them.)
"""

import dataclasses

import keras
import numpy as np

from recipes.report import Report


def _random_layer_classes():
    names = [name for name in dir(keras.layers) if name.startswith("Random") or name in ("RandAugment", "AugMix")]
    return tuple(getattr(keras.layers, name) for name in names)


def _contains_random(layer, classes):
    if isinstance(layer, classes):
        return True
    return any(_contains_random(inner, classes) for inner in getattr(layer, "layers", []))


@dataclasses.dataclass(frozen=True)
class AugmentationCheck(Report):
    """What `augmentation_check` returns: a `recipes.report.Report`.

    Attributes:
        verdict: `"pass"` (every augmentation block changes images in training and none at inference, and
            inference is deterministic) or `"fail"`.
        summary: One line: what was found.
        advice: One item per problem: what is wrong and what to do; empty on a pass.
        blocks: Names of the model's top-level layers that are or hold Keras random layers.
        active_in_training: Dict from block name to whether it changed the images with `training=True`.
        identity_at_inference: Dict from block name to whether it returned its input unchanged with
            `training=False`.
        deterministic_inference: Whether two inference calls of the model on the same images agree.
    """

    blocks: tuple = ()
    active_in_training: dict = dataclasses.field(default_factory=dict)
    identity_at_inference: dict = dataclasses.field(default_factory=dict)
    deterministic_inference: bool = True

    def markdown_details(self):
        if not self.blocks:
            return ""
        rows = [
            f"| `{name}` | {'yes' if self.active_in_training[name] else '**no**'} | "
            f"{'yes' if self.identity_at_inference[name] else '**no**'} |"
            for name in self.blocks
        ]
        return "\n".join(["| block | changes images in training | unchanged at inference |", "|---|---|---|", *rows])


def augmentation_check(model, x, atol=1e-6):
    """Checks that a model's random image layers act in training only, on real images.

    For each top-level layer of `model` that is, or holds, a Keras random layer (`RandomFlip`,
    `RandomRotation`, `RandomZoom`, `RandAugment`, ... e.g. the `"augmentation"` block of
    `models.vision.cnn_classifier`), the images are run through the model up to that layer, then through
    it once with `training=True` (it must change them) and once with `training=False` (it must not). The
    whole model is also called twice at inference: the predictions must agree.

    Example:

    ```python
    import recipes
    from models import vision
    from recipes.augment import augmentation_check

    images, labels = recipes.datasets.load_digits()
    model = vision.cnn_classifier((8, 8), 10, filters=(8,))
    report = augmentation_check(model, images[:32])
    report.verdict, report.summary  # ('pass', "the augmentation ('augmentation') changes the images ...")
    ```

    Args:
        model: A functional or `Sequential` `keras.Model` with defined inputs.
        x: A batch of input images as the model takes them (e.g. uint8 `(batch, height, width)`).
        atol: Float, defaults to 1e-6. Largest absolute difference counted as "unchanged".

    Returns:
        An `AugmentationCheck`.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    images = np.asarray(x)
    if images.ndim < 2 or len(images) == 0:
        raise ValueError(f"`x` must be a non-empty batch of images. Received: x.shape={images.shape}")
    classes = _random_layer_classes()
    blocks = [layer for layer in model.layers if _contains_random(layer, classes)]
    first, second = (keras.ops.convert_to_numpy(model(images, training=False)) for _ in range(2))
    deterministic = _same(first, second, atol)
    active, identity = {}, {}
    model_inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    for block in blocks:
        block_inputs = keras.Model(model_inputs, block.input)(images, training=False)
        reference = keras.ops.convert_to_numpy(block_inputs)
        trained = keras.ops.convert_to_numpy(block(block_inputs, training=True))
        inferred = keras.ops.convert_to_numpy(block(block_inputs, training=False))
        active[block.name] = not _same(trained, reference, atol)
        identity[block.name] = _same(inferred, reference, atol)
    names = [block.name for block in blocks]
    problems = _problems(names, active, identity, deterministic)
    if problems:
        verdict = "fail"
        summary = f"{len(problems)} problem(s) with the model's random image layers: " + "; ".join(
            problem for problem, _ in problems
        )
    else:
        verdict = "pass"
        shown = ", ".join(repr(name) for name in names)
        summary = (
            f"the augmentation ({shown}) changes the images in training and passes them through unchanged at "
            "inference, and inference is deterministic: evaluation and serving see clean images"
        )
    return AugmentationCheck(verdict, summary, [fix for _, fix in problems], names, active, identity, deterministic)


def _same(a, b, atol):
    return bool(a.shape == b.shape and np.allclose(a, b, atol=atol, rtol=0))


def _problems(names, active, identity, deterministic):
    """`(what is wrong, what to do)` for each problem found."""
    problems = []
    if not names:
        fix = (
            "add a block of random image layers after rescaling (e.g. models.vision.augmentation(rotation=0.05, "
            "zoom=0.1), with horizontal_flip=True where a mirror image keeps its label), or augment "
            "in the input pipeline with recipes.augment.on_the_fly"
        )
        problems.append(("the model has no Keras random image layer", fix))
    for name in names:
        if not identity[name]:
            fix = (
                f"make {name!r} return its input when training is False: evaluation and served predictions see "
                "augmented images (a custom layer must honour `training`)"
            )
            problems.append((f"{name!r} changes the images at inference", fix))
        if not active[name]:
            fix = f"give {name!r} factors above 0, and make it act when training is True"
            problems.append((f"{name!r} leaves the images unchanged in training", fix))
    if not deterministic:
        fix = "find the layer that is random at inference with recipes.debug.mode_check"
        problems.append(("two inference calls on the same images disagree", fix))
    return problems

"""Image classifiers that take raw uint8 pixels (and, once exported, encoded image bytes)."""

import os

import keras

from models.common import classify, dtype_policy, resolve_class_names
from recipes._common import check_int, check_one_of
from recipes.training import PlannedCosineDecay


def _image_input(image_shape):
    image_shape = tuple(image_shape)
    if (
        len(image_shape) not in (2, 3)
        or not all(isinstance(d, int) and d > 0 for d in image_shape)
        or (len(image_shape) == 3 and image_shape[2] not in (1, 3))
    ):
        raise ValueError(
            "`image_shape` must be (height, width) or (height, width, channels) with 1 or 3 channels. "
            f"Received: image_shape={image_shape!r}"
        )
    image = keras.Input(shape=image_shape, dtype="uint8", name="image")
    x = image if len(image_shape) == 3 else keras.layers.Reshape((*image_shape, 1))(image)
    return image, x


def augmentation(horizontal_flip=False, rotation=0.0, zoom=0.0, contrast=0.0, seed=None):
    """Keras random image layers, active in training only (identity at inference and serving).

    Only flips by default: rotating, zooming and changing the contrast as well
    costs accuracy at the budgets `recipes train` gives (Fashion-MNIST test
    accuracy of `cnn_classifier`, flips only vs flips with rotation 0.05, zoom
    0.1 and contrast 0.1: 0.876 vs 0.840 after 36,000 examples from 12,023
    images, 3 and 2 seeds; 0.898 vs 0.877 for the earlier CNN after 5 passes
    over 58,874 images).

    Args:
        horizontal_flip: Bool, defaults to `False` (flipping changes what
            digits and letters mean; turn it on for photos and clothes).
        rotation: Float, defaults to 0 (fraction of a full turn; 0 for none).
        zoom: Float, defaults to 0 (0 for none).
        contrast: Float, defaults to 0 (0 for none).
        seed: Optional int.

    Returns:
        A `keras.Sequential` named `"augmentation"`, without layers when
        every argument turns its layer off (`cnn_classifier` and
        `transfer_classifier` then leave it out).
    """
    layers = [keras.layers.RandomFlip("horizontal", seed=seed)] if horizontal_flip else []
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, fill_mode="constant", seed=seed))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="constant", seed=seed))
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, seed=seed))
    return keras.Sequential(layers, name="augmentation")


def cnn_classifier(
    image_shape,
    num_classes,
    class_names=None,
    augment=True,
    filters=(32, 64),
    dense_units=128,
    dropout=0.3,
    batch_normalization=True,
    learning_rate=1e-3,
    cosine_decay=True,
    name="cnn",
    mixed_precision=False,
):
    """A small convolutional network: rescaling, train-only augmentation, conv blocks, a dense layer, softmax.

    What each default earns, in Fashion-MNIST test accuracy (batches of 32,
    early stopping as `recipes train`): with all of them, 0.876 after 36,000
    examples from 12,023 images (3 seeds, 26 s on one thread) and 0.918
    after 5 passes over 58,874 images (2 seeds). One seed each, with Keras's batch normalisation momentum:
    without batch normalisation 0.856 and 0.908, without the dense layer
    0.871 and 0.910, with a constant rate 0.870 and 0.912. The CNN before them
    (no dense layer, no batch normalisation, constant rate, rotation, zoom
    and contrast augmentation) got 0.817 and 0.877.

    Example:

    ```python
    import recipes
    from models import vision

    images, labels = recipes.datasets.load_fashion_mnist("test")
    model = vision.cnn_classifier((28, 28), 10, class_names=recipes.datasets.FASHION_MNIST_CLASSES)
    model.fit(images[:2000], labels[:2000], epochs=1, verbose=0)
    ```

    Args:
        image_shape: `(height, width)` for grey images or `(height, width, channels)`.
        num_classes: Int >= 2.
        class_names: Optional names in label order.
        augment: Bool or a `keras.Sequential` of random layers, defaults to
            `True` (`augmentation()`). Active in training only.
        filters: Tuple of ints, defaults to `(32, 64)`: one conv block each
            (convolution, batch normalisation, ReLU, max pooling).
        dense_units: Int, defaults to 128: the dense layer between the conv
            blocks and the softmax; 0 for none.
        dropout: Float, defaults to 0.3: before the dense layer and after it.
            Active in training only.
        batch_normalization: Bool, defaults to `True`: after each convolution
            and the dense layer.
        learning_rate: Float, defaults to 0.001: Adam's initial rate.
        cosine_decay: Bool, defaults to `True`: the rate decays to 0 along a
            cosine over the steps `recipes.fit` plans
            (`recipes.training.PlannedCosineDecay`; constant under a plain
            `model.fit`).
        name: Model name, defaults to `"cnn"`.
        mixed_precision: `False` (default), `True` or `"mixed_float16"`
            (GPUs), or `"mixed_bfloat16"` (TPUs, recent CPUs): the layers
            between the preprocessing and the output compute in 16 bits with
            float32 variables (`models.common.dtype_policy`).

    Returns:
        A compiled `keras.Model` from a uint8 input `image` to class
        probabilities. Exported, it takes encoded image bytes instead (any
        size, JPEG/PNG/GIF/BMP); corrupt bytes fail the request with the
        decoder's `InvalidArgumentError`.
    """
    class_names = resolve_class_names(num_classes, class_names)
    check_int("dense_units", dense_units, minimum=0)
    image, x = _image_input(image_shape)
    x = keras.layers.Rescaling(1 / 255)(x)
    if augment:
        x = _augment(x, augment)
    with dtype_policy(mixed_precision):
        for count in filters:
            conv = keras.layers.Conv2D(count, 3, padding="same", use_bias=not batch_normalization)
            x = _activated(conv, x, batch_normalization)
            x = keras.layers.MaxPooling2D()(x)
        # Flatten keeps where features are; on small images that beats global pooling by far (0.85 vs 0.68
        # test accuracy on Fashion-MNIST after 3 passes over 12,000 images, no augmentation).
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dropout(dropout)(x)
        if dense_units:
            x = _activated(keras.layers.Dense(dense_units, use_bias=not batch_normalization), x, batch_normalization)
            x = keras.layers.Dropout(dropout)(x)
    return classify(x, image, class_names, _learning_rate(learning_rate, cosine_decay), name, mixed_precision)


# Keras's 0.99 averages the inference statistics over ~100 steps: a short run (the doctor's 125 steps on digits)
# is validated with statistics of the first weights, at 0.12 accuracy where the batches say 0.87.
BATCH_NORM_MOMENTUM = 0.9


def _activated(layer, x, batch_normalization):
    """`layer` (without a bias when batch normalisation, which has its own, follows), then ReLU."""
    x = layer(x)
    if batch_normalization:
        x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM)(x)
    return keras.layers.Activation("relu")(x)


def _augment(x, augment):
    """`x` through the train-only random layers of `augment` (`True`: `augmentation()`); none may be chosen."""
    layers = augmentation() if augment is True else augment
    return layers(x) if layers.layers else x


def _learning_rate(learning_rate, cosine_decay):
    return PlannedCosineDecay(learning_rate) if cosine_decay else learning_rate


def linear_classifier(image_shape, num_classes, class_names=None, learning_rate=1e-3, name="pixels_linear"):
    """Logistic regression on the pixels: the linear baseline, one weight image per class.

    Returns:
        A compiled `keras.Model` from a uint8 input `image` to class
        probabilities; exported, encoded image bytes as for `cnn_classifier`.
    """
    class_names = resolve_class_names(num_classes, class_names)
    image, x = _image_input(image_shape)
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(x))
    return classify(x, image, class_names, learning_rate, name)


BACKBONES = {
    "MobileNetV2": (keras.applications.MobileNetV2, keras.applications.mobilenet_v2.preprocess_input),
    "EfficientNetB0": (keras.applications.EfficientNetB0, keras.applications.efficientnet.preprocess_input),
    "ResNet50": (keras.applications.ResNet50, keras.applications.resnet50.preprocess_input),
}


def transfer_classifier(
    image_shape,
    num_classes,
    class_names=None,
    backbone="MobileNetV2",
    weights=None,
    input_size=96,
    trainable=None,
    augment=True,
    dropout=0.2,
    learning_rate=1e-3,
    name="transfer",
    mixed_precision=False,
):
    """A `keras.applications` backbone with a new softmax head.

    Nothing is downloaded: `weights` is a local weights file of the backbone
    without its top (for example one saved with `backbone.save_weights(...)` on
    a machine with network access), or `None` for random initialisation.
    Images are resized to `input_size`, grey images repeated to three
    channels, and preprocessed as the backbone expects, inside the model.

    Args:
        image_shape: `(height, width)` or `(height, width, channels)`.
        num_classes: Int >= 2.
        class_names: Optional names in label order.
        backbone: One of `BACKBONES`, defaults to `"MobileNetV2"`.
        weights: Optional path to a `.weights.h5` file of the backbone
            (`include_top=False`), defaults to `None`.
        input_size: Int >= 32, defaults to 96. Side of the square backbone input.
        trainable: Bool, or `None` (default): train the backbone too when
            it starts from random weights (`weights=None`), the head only on
            loaded weights. A frozen random backbone learns nothing (0.100
            test accuracy on Fashion-MNIST after one pass over 58,874 images,
            input_size 32, vs 0.805 trained).
        augment: Bool or a `keras.Sequential`, defaults to `True`.
        dropout: Float, defaults to 0.2.
        learning_rate: Float, defaults to 0.001.
        name: Model name, defaults to `"transfer"`.
        mixed_precision: `False` (default), `True` or `"mixed_float16"`
            (GPUs), or `"mixed_bfloat16"` (TPUs, recent CPUs): the layers
            between the preprocessing and the output compute in 16 bits with
            float32 variables (`models.common.dtype_policy`).

    Returns:
        A compiled `keras.Model` from a uint8 input `image` to class
        probabilities; exported, encoded image bytes as for `cnn_classifier`.
    """
    backbone = check_one_of("backbone", backbone, tuple(sorted(BACKBONES)))
    if weights is not None and not os.path.isfile(weights):
        raise ValueError(
            f"`weights` must be a local weights file (nothing is downloaded). Received: weights={weights!r}"
        )
    class_names = resolve_class_names(num_classes, class_names)
    build = BACKBONES[backbone][0]
    image, x = _image_input(image_shape)
    x = keras.layers.Resizing(input_size, input_size)(keras.layers.Rescaling(1.0)(x))  # to float, then resize
    if x.shape[-1] == 1:
        x = keras.layers.Concatenate()([x, x, x])
    if augment:
        x = _augment(x, augment)
    x = BackbonePreprocessing(backbone)(x)
    with dtype_policy(mixed_precision):
        base = build(include_top=False, weights=None, input_shape=(input_size, input_size, 3), pooling="avg")
        if weights is not None:
            base.load_weights(weights)
        else:
            _follow_batches_faster(base)
        trainable = weights is None if trainable is None else trainable
        base.trainable = trainable
        # A frozen backbone keeps its BatchNormalization in inference mode (Keras's transfer-learning guide).
        x = base(x, training=False) if not trainable else base(x)
        x = keras.layers.Dropout(dropout)(x)
    return classify(x, image, class_names, learning_rate, name, mixed_precision)


def _follow_batches_faster(backbone, momentum=BATCH_NORM_MOMENTUM):
    """Batch normalisation moving statistics that keep up with a backbone trained from scratch.

    The applications' 0.999 (MobileNetV2) averages over thousands of steps,
    so that early in training the inference statistics still describe the
    random initial weights.
    """
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


@keras.saving.register_keras_serializable(package="recipes")
class BackbonePreprocessing(keras.layers.Layer):
    """The backbone's own `preprocess_input`, as a serialisable layer (a `Lambda` would pickle code)."""

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone

    def call(self, images):
        return BACKBONES[self.backbone][1](images)

    def get_config(self):
        return {**super().get_config(), "backbone": self.backbone}

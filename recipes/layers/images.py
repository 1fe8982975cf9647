"""Encoded image bytes to pixel arrays, inside the served graph."""

import keras
import tensorflow as tf

from recipes._common import check_int, check_one_of


def decode_image(encoded, height, width, channels):
    """Encoded image bytes (JPEG, PNG, GIF, BMP; any size and colour mode) as uint8 `(height, width, channels)`.

    The image is decoded with its own channels (grey, grey and alpha, RGB,
    RGBA), then made grey (`channels=1`, from RGB by luminance) or RGB (3, grey
    repeated); alpha is dropped. An image already of the size is left alone,
    others are resized with antialiasing and rounded. The input pipelines of
    `recipes.tasks` and the served `DecodeImages` both decode this way.
    """
    image = tf.io.decode_image(encoded, channels=0, expand_animations=False)
    found = tf.shape(image)[2]
    if channels == 1:
        image = tf.cond(found < 3, lambda: image[..., :1], lambda: tf.image.rgb_to_grayscale(image[..., :3]))
    else:
        image = tf.cond(found < 3, lambda: tf.tile(image[..., :1], [1, 1, 3]), lambda: image[..., :3])
    image.set_shape([None, None, channels])
    same_size = tf.logical_and(tf.equal(tf.shape(image)[0], height), tf.equal(tf.shape(image)[1], width))
    resized = tf.cond(
        same_size,
        lambda: image,
        lambda: tf.cast(
            tf.clip_by_value(tf.round(tf.image.resize(image, [height, width], antialias=True)), 0, 255), tf.uint8
        ),
    )
    return tf.ensure_shape(resized, [height, width, channels])


@keras.saving.register_keras_serializable(package="recipes")
class DecodeImages(keras.layers.Layer):
    """Decodes a batch of encoded images (JPEG, PNG, GIF, BMP) and resizes them to one shape.

    Each element is decoded on its own (`decode_image`), so one batch may mix
    formats, sizes and colour modes (grey, grey with alpha, RGB, RGBA, a
    palette GIF). An image already of the target size is not resampled, so the
    pixels of a losslessly encoded (PNG) training image come out exactly as
    the model saw them in training. Corrupt bytes fail the call with
    TensorFlow's `InvalidArgumentError` ("Unknown image file format" or the
    decoder's own complaint).

    Example:

    >>> import tensorflow as tf
    >>> from recipes.layers import DecodeImages
    >>> png = tf.io.encode_png(tf.zeros((40, 30, 3), tf.uint8))
    >>> DecodeImages(height=28, width=28, channels=1)(tf.stack([png, png])).shape
    TensorShape([2, 28, 28, 1])

    Args:
        height: Int. Output height.
        width: Int. Output width.
        channels: Int, 1 (grey) or 3 (RGB), defaults to 3. Images are
            converted to this many channels.

    Input shape: `(batch,)` strings of encoded image bytes.
    Output shape: `(batch, height, width, channels)` uint8.
    """

    def __init__(self, height, width, channels=3, **kwargs):
        super().__init__(**kwargs)
        check_int("height", height)
        check_int("width", width)
        check_one_of("channels", channels, (1, 3))
        self.height = height
        self.width = width
        self.channels = channels

    def call(self, encoded):
        encoded = tf.reshape(tf.convert_to_tensor(encoded, tf.string), [-1])
        return tf.map_fn(
            lambda one: decode_image(one, self.height, self.width, self.channels),
            encoded,
            fn_output_signature=tf.TensorSpec([self.height, self.width, self.channels], tf.uint8),
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width, channels=self.channels)
        return config

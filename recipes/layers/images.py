"""Encoded image bytes to pixel arrays, inside the served graph."""

import keras
import tensorflow as tf

from recipes._common import check_int, check_one_of


@keras.saving.register_keras_serializable(package="recipes")
class DecodeImages(keras.layers.Layer):
    """Decodes a batch of encoded images (JPEG, PNG, GIF, BMP) and resizes them to one shape.

    Each element is decoded on its own, so one batch may mix formats and
    sizes. An image already of the target size is not resampled, so the
    pixels of a losslessly encoded (PNG) training image come out exactly as
    the model saw them in training. Corrupt bytes fail the call with
    TensorFlow's `InvalidArgumentError` ("Unknown image file format" or the
    decoder's own complaint).

    Example:

    >>> import tensorflow as tf

from recipes._common import check_int, check_one_of
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

    def _decode_one(self, encoded):
        image = tf.io.decode_image(encoded, channels=self.channels, expand_animations=False)
        image.set_shape([None, None, self.channels])
        same_size = tf.logical_and(
            tf.equal(tf.shape(image)[0], self.height), tf.equal(tf.shape(image)[1], self.width)
        )
        return tf.cond(
            same_size,
            lambda: image,
            lambda: tf.cast(
                tf.clip_by_value(
                    tf.round(tf.image.resize(image, [self.height, self.width], antialias=True)), 0, 255
                ),
                tf.uint8,
            ),
        )

    def call(self, encoded):
        encoded = tf.reshape(tf.convert_to_tensor(encoded, tf.string), [-1])
        return tf.map_fn(
            self._decode_one,
            encoded,
            fn_output_signature=tf.TensorSpec([self.height, self.width, self.channels], tf.uint8),
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width, channels=self.channels)
        return config

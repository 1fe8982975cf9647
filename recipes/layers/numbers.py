"""Missing numbers filled inside the model."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="recipes")
class FillMissing(keras.layers.Layer):
    """Replaces NaN (a missing number) with a fixed value, usually the training mean of the column.

    Inside the model, so that a served table model takes a row with a
    missing number (`NaN` in a JSON request, as TF Serving reads it) as the
    training pipeline took it.

    Example:

    >>> import numpy as np
    >>> from recipes.layers import FillMissing
    >>> FillMissing(2.5)(np.array([1.0, np.nan], "float32")).numpy().tolist()
    [1.0, 2.5]

    Args:
        value: Float. What a missing number becomes.
    """

    def __init__(self, value, **kwargs):
        super().__init__(**kwargs)
        self.value = float(value)

    def call(self, numbers):
        numbers = tf.cast(numbers, tf.float32)
        return tf.where(tf.math.is_nan(numbers), tf.constant(self.value, tf.float32), numbers)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "value": self.value}

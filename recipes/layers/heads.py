"""Output layers that carry what a served model must say about its outputs."""

import keras


@keras.saving.register_keras_serializable(package="recipes")
class ClassProbabilities(keras.layers.Dense):
    """A softmax `Dense` layer whose config carries the class names.

    The names travel with the model: through `model.save` and into the
    exported SavedModel, whose serving signature returns them as `label`
    beside the `probabilities`.

    Example:

    >>> from recipes.layers import ClassProbabilities
    >>> head = ClassProbabilities(["rotten", "fresh"])
    >>> head.units, head.class_names
    (2, ['rotten', 'fresh'])

    Args:
        class_names: Sequence of at least 2 distinct strings, in label order.
        **kwargs: `Dense` arguments other than `units` (`activation`
            defaults to `"softmax"`).
    """

    def __init__(self, class_names, **kwargs):
        class_names = [str(name) for name in class_names]
        if len(class_names) < 2 or len(set(class_names)) != len(class_names):
            raise ValueError(
                f"`class_names` must hold at least 2 distinct names. Received: class_names={class_names!r}"
            )
        kwargs.pop("units", None)
        kwargs.setdefault("activation", "softmax")
        super().__init__(units=len(class_names), **kwargs)
        self.class_names = class_names

    def get_config(self):
        config = super().get_config()
        config.pop("units")
        config["class_names"] = self.class_names
        return config


def class_names_of(model):
    """The class names of a model whose output layer is a `ClassProbabilities`, else `None`."""
    output_layer = model.layers[-1] if model.layers else None
    return list(output_layer.class_names) if isinstance(output_layer, ClassProbabilities) else None

"""What every factory shares: class names, the classification head, compiling."""

import keras

from recipes.layers import ClassProbabilities


def resolve_class_names(num_classes, class_names=None):
    """Class names in label order: `class_names`, or "0", "1", ... when not given."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an int >= 2. Received: num_classes={num_classes!r}")
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    class_names = [str(name) for name in class_names]
    if len(class_names) != num_classes:
        raise ValueError(
            f"`class_names` must name {num_classes} classes. Received {len(class_names)}: {class_names!r}"
        )
    return class_names


def classify(features, inputs, class_names, learning_rate, name):
    """Adds the softmax head that carries the class names, and compiles the model."""
    probabilities = ClassProbabilities(class_names, name="probabilities")(features)
    model = keras.Model(inputs, probabilities, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model

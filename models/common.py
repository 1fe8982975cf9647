"""What every factory shares: class names, the classification head, compiling, the mixed-precision switch."""

import contextlib

import keras

from recipes._common import check_int, check_one_of
from recipes.layers import ClassProbabilities


def resolve_class_names(num_classes, class_names=None):
    """Class names in label order: `class_names`, or "0", "1", ... when not given."""
    check_int("num_classes", num_classes, minimum=2)
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    class_names = [str(name) for name in class_names]
    if len(class_names) != num_classes:
        raise ValueError(f"`class_names` must name {num_classes} classes. Received {len(class_names)}: {class_names!r}")
    return class_names


MIXED_POLICIES = {True: "mixed_float16", "mixed_float16": "mixed_float16", "mixed_bfloat16": "mixed_bfloat16"}


@contextlib.contextmanager
def dtype_policy(mixed_precision=False):
    """Layers created inside compute in 16 bits (variables stay float32); `False` changes nothing.

    Keras's mixed precision (https://keras.io/api/mixed_precision/): on GPUs
    with tensor cores (compute capability 7.0+) `"mixed_float16"` trains 2-3x
    faster and halves activation memory; a model compiled in this scope gets a
    `keras.optimizers.LossScaleOptimizer`, so small float16 gradients do not
    underflow. The factories keep their preprocessing and output layers
    float32: FFTs and large raw values need the range, and softmax
    probabilities and regression outputs the precision. The global Keras
    policy is restored on exit (not thread-safe: build models in one thread).

    Example:

    ```python
    from models.common import dtype_policy

    with dtype_policy(True):
        dense = keras.layers.Dense(8)  # dense.compute_dtype == "float16"
    ```

    Args:
        mixed_precision: `False` (default), `True` or `"mixed_float16"`
            (GPUs), or `"mixed_bfloat16"` (TPUs and CPUs with bfloat16).
    """
    if mixed_precision is False or mixed_precision is None:
        yield
        return
    mixed_precision = check_one_of("mixed_precision", mixed_precision, (True, "mixed_float16", "mixed_bfloat16"))
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(MIXED_POLICIES[mixed_precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def classify(features, inputs, class_names, learning_rate, name, mixed_precision=False):
    """Adds the softmax head that carries the class names, and compiles the model.

    The head is float32 whatever the policy; with `mixed_precision` the model
    is compiled with loss scaling. `learning_rate` is Adam's: a float or a
    schedule (`recipes.training.PlannedCosineDecay` decays over the run
    `recipes.fit` plans).
    """
    probabilities = ClassProbabilities(class_names, name="probabilities", dtype="float32")(features)
    with dtype_policy(mixed_precision):
        model = keras.Model(inputs, probabilities, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model

"""Turn in-memory arrays or a `tf.data.Dataset` into the input pipeline Keras trains on."""

import numpy as np
import tensorflow as tf

DEFAULT_SHUFFLE_BUFFER = 10_000
# The most memory a dataset's shuffle buffer of decoded examples may hold; datasets read from files
# (recipes.tasks) shuffle their file names before decoding, so a small buffer of examples still mixes well.
SHUFFLE_BUFFER_BYTES = 16 * 2**20


def _column_lengths(part, name):
    if isinstance(part, dict):
        if not part:
            raise ValueError(f"`{name}` is an empty dict; expected one array per model input")
        return {f"{name}[{key!r}]": len(value) for key, value in part.items()}
    return {name: len(part)}


def _as_arrays(part):
    if isinstance(part, dict):
        return {key: np.asarray(value) for key, value in part.items()}
    return np.asarray(part)


def to_dataset(data, name="train_data"):
    """Returns `data` as an unbatched `tf.data.Dataset` of `(x, y[, sample_weight])` and its size.

    Args:
        data: An `(x, y)` or `(x, y, sample_weight)` tuple, where `x` is an
            array or a dict of arrays (one per named model input) and `y` an
            array; or a `tf.data.Dataset` yielding such tuples one example at
            a time (unbatched).
        name: The argument name used in error messages.

    Returns:
        `(dataset, num_examples)`; `num_examples` is `None` when a dataset's
        size is unknown.
    """
    if isinstance(data, tf.data.Dataset):
        cardinality = int(data.cardinality())
        if cardinality == tf.data.INFINITE_CARDINALITY:
            raise ValueError(
                f"`{name}` is an infinite (repeated) dataset; pass it unrepeated, "
                "fit repeats it and counts the steps itself"
            )
        return data, (cardinality if cardinality >= 0 else None)
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ValueError(
            f"`{name}` must be an (x, y) tuple of arrays or dicts of arrays, or a "
            f"tf.data.Dataset of (x, y). Received: {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
        )
    lengths = {}
    for part, part_name in zip(data, ("x", "y", "sample_weight")):
        lengths.update(_column_lengths(part, f"{name} {part_name}"))
    if len(set(lengths.values())) != 1:
        raise ValueError(f"`{name}` must have one row per example in every array. Received lengths: {lengths}")
    num_examples = next(iter(lengths.values()))
    if num_examples == 0:
        raise ValueError(f"`{name}` is empty")
    return tf.data.Dataset.from_tensor_slices(tuple(_as_arrays(p) for p in data)), num_examples


def _example_bytes(element_spec):
    """The bytes of one example, from its fixed shapes (strings and open axes count 64 bytes an element)."""
    total = 0
    for spec in tf.nest.flatten(element_spec):
        size = 1
        for dim in spec.shape:
            size *= dim if dim is not None else 64
        total += size * (64 if spec.dtype == tf.string else spec.dtype.size)
    return max(total, 1)


def shuffle_buffer_size(dataset, num_examples=None):
    """Examples a dataset's shuffle buffer holds: all (up to 10,000) unless that passes `SHUFFLE_BUFFER_BYTES`.

    The buffer holds decoded examples, so its memory grows with the size of
    an example: 10,000 RGB images of 96x96 would take 276 MB. Bounded by
    bytes, memory stays flat however large the data (at least 256 examples).
    """
    buffer = min(num_examples or DEFAULT_SHUFFLE_BUFFER, DEFAULT_SHUFFLE_BUFFER)
    return max(1, min(buffer, max(256, SHUFFLE_BUFFER_BYTES // _example_bytes(dataset.element_spec))))


def training_pipeline(data, batch_size, name="train_data"):
    """A shuffled, endlessly repeated, batched and prefetched pipeline.

    Repeating means a finite dataset never "runs out of data": the number of
    steps, not the size of the data, says how long training lasts. Shuffling
    draws from the global TensorFlow seed, so `recipes.set_seed` makes it
    repeatable. A dataset's shuffle buffer is bounded in bytes
    (`shuffle_buffer_size`), so memory does not grow with the data.
    """
    dataset, num_examples = to_dataset(data, name)
    if isinstance(data, tf.data.Dataset):
        buffer = shuffle_buffer_size(dataset, num_examples)
    else:
        buffer = num_examples  # in memory already: a full shuffle costs nothing more
    return dataset.shuffle(buffer, reshuffle_each_iteration=True).repeat().batch(batch_size).prefetch(tf.data.AUTOTUNE)


def evaluation_pipeline(data, batch_size, name="validation_data"):
    """A batched, prefetched pipeline over `data` once, in order."""
    dataset, _ = to_dataset(data, name)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

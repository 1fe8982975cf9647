"""Augmented data: offline (`augment_dataset`, a labelled set multiplied by N) or on the fly (`on_the_fly`).

Offline augmentation is done once, before training, so the synthetic rows can be read, counted, filtered
and saved; on-the-fly augmentation draws new variants every pass over the data at the cost of augmenting
during training. Both are deterministic: a row's variant is fixed by `(seed, key, copy)` offline and by
`(seed, position in the stream)` on the fly.
"""

import sys
import typing

import numpy as np
import pandas as pd

from recipes._common import check_callable, check_int, check_number, check_verbose
from recipes.augment.core import derive_seed

# `verbose="auto"` shows a progress bar from this many synthetic rows on.
PROGRESS_MIN_ROWS = 1000
AUGMENTER_EXPECTED = "callable as augmenter(item, seed), e.g. recipes.augment.text_augmenter('swap')"


class AugmentedArrays(typing.NamedTuple):
    """What `augment_dataset` returns for arrays: originals first, then the synthetic rows."""

    x: np.ndarray
    y: np.ndarray
    keys: np.ndarray
    synthetic: np.ndarray


def _synthetic_rows(items, keys, augmenter, n, seed, verbose):
    """`n` variants of every item, in the order (row, copy), each seeded from (seed, key, copy)."""
    from tqdm.auto import tqdm

    total = len(items) * n
    level = check_verbose(verbose)
    show = total >= PROGRESS_MIN_ROWS if isinstance(verbose, str) else level == 1
    name = getattr(augmenter, "name", "augment")
    outputs, new_keys = [], []
    with tqdm(total=total, unit="row", desc=f"augment ({name})", disable=not show) as bar:
        for item, key in zip(items, keys):
            for copy in range(1, n + 1):
                outputs.append(augmenter(item, derive_seed(seed, key, copy)))
                new_keys.append(f"{key}#aug{copy}")
                bar.update(1)
    if level == 2:
        print(f"augment ({name}): {total} synthetic rows from {len(items)}", file=sys.stderr)
    return outputs, new_keys


def augment_dataset(
    data,
    augmenter,
    *,
    n=1,
    seed=0,
    column=None,
    key_column="key",
    label_column="label",
    synthetic_column="synthetic",
    verbose="auto",
):
    """Multiplies a labelled set by `n + 1`: the originals plus `n` synthetic variants of each row.

    Every synthetic row copies its original's label (and, for a DataFrame, every other column), has the
    key `"<original key>#aug<copy>"` (`"17#aug1"`, `"17#aug2"`, ...) and is tagged `synthetic=True`; the
    originals come first, unchanged, tagged `False`. The variant of a row depends only on `(seed, its key,
    copy number)`: the same seed gives the same output, and dropping, adding or reordering other rows does
    not change it. Keep the test set out of it: evaluate on real rows only.

    Example:

    ```python
    import recipes
    from recipes.augment import augment_dataset, text_augmenter

    reviews = recipes.datasets.load_rotten_tomatoes().head(100)
    bigger = augment_dataset(reviews, text_augmenter("swap"), n=2, seed=0, column="text")
    len(bigger), int(bigger.synthetic.sum())  # (300, 200)
    bigger.loc[bigger.synthetic, ["key", "label", "text"]].head(2)  # keys "0#aug1", "0#aug2"
    ```

    Args:
        data: A `pandas.DataFrame` with one row per example, or a tuple `(x, y)` or `(x, y, keys)` of
            arrays with one row per example (`x` 1-D strings, or waveforms as a 2-D array).
        augmenter: Callable `augmenter(item, seed) -> item`: an `Augmenter` (`text_augmenter`,
            `audio_augmenter`, ...), a `OneOf`, or a function of your own.
        n: Int >= 1, defaults to 1. Synthetic variants per row.
        seed: Non-negative int, defaults to 0.
        column: For a DataFrame, the column to augment; defaults to the only column other than the key,
            label and synthetic columns (name it when there are several).
        key_column: Name of the key column, defaults to `"key"`. Keys must be unique. A DataFrame without
            it gets one, made of its index as strings; arrays without keys use `"0"`, `"1"`, ...
        label_column: Name of the label column of a DataFrame, defaults to `"label"`; `None` for an
            unlabelled frame.
        synthetic_column: Name of the tag column added, defaults to `"synthetic"`.
        verbose: `"auto"` (default: a tqdm progress bar on stderr when at least `PROGRESS_MIN_ROWS`
            synthetic rows are made), 0 (silent), 1 (a progress bar) or 2 (one line when done).

    Returns:
        For a DataFrame: a new DataFrame with a fresh index and the columns of `data` plus `key_column`
        and `synthetic_column`. For arrays: an `AugmentedArrays` named tuple `(x, y, keys, synthetic)`.
    """
    check_callable("augmenter", augmenter, AUGMENTER_EXPECTED)
    n, seed = check_int("n", n), check_int("seed", seed, minimum=0)
    check_verbose(verbose)
    if isinstance(data, pd.DataFrame):
        return _augment_frame(data, augmenter, n, seed, column, key_column, label_column, synthetic_column, verbose)
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        return _augment_arrays(data, augmenter, n, seed, verbose)
    raise ValueError(
        "`data` must be a pandas.DataFrame or an (x, y) or (x, y, keys) tuple of arrays. Received: "
        f"{type(data).__name__}" + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
    )


def _unique_keys(keys, where):
    keys = [str(key) for key in keys]
    if len(set(keys)) != len(keys):
        seen, duplicates = set(), []
        for key in keys:
            if key in seen and key not in duplicates:
                duplicates.append(key)
            seen.add(key)
        raise ValueError(f"keys must be unique; {where} repeats {duplicates[:5]!r}")
    return keys


def _augment_frame(frame, augmenter, n, seed, column, key_column, label_column, synthetic_column, verbose):
    if frame.empty:
        raise ValueError("`data` is an empty DataFrame")
    if label_column is not None and label_column not in frame.columns:
        raise ValueError(
            f"`label_column` {label_column!r} is not a column of `data` (columns: {list(frame.columns)}); "
            "pass label_column=None for unlabelled data"
        )
    if synthetic_column in frame.columns:
        raise ValueError(
            f"`data` already has a {synthetic_column!r} column: augment the real rows only, e.g. "
            f"frame[~frame[{synthetic_column!r}]].drop(columns={synthetic_column!r})"
        )
    reserved = {key_column, label_column}
    if column is None:
        candidates = [c for c in frame.columns if c not in reserved]
        if len(candidates) != 1:
            raise ValueError(
                f"pass `column`, the column to augment: `data` has {len(candidates)} columns besides the key "
                f"and label ({candidates!r})"
            )
        column = candidates[0]
    elif column not in frame.columns or column in reserved:
        raise ValueError(
            f"`column` must be a column of `data` other than the key and label. Received: column={column!r}, "
            f"columns: {list(frame.columns)}"
        )
    frame = frame.copy()
    if key_column in frame.columns:
        keys = _unique_keys(frame[key_column], f"column {key_column!r}")
    else:
        keys = _unique_keys(frame.index, "the index (used as keys)")
        frame.insert(0, key_column, keys)
    outputs, new_keys = _synthetic_rows(frame[column].tolist(), keys, augmenter, n, seed, verbose)
    synthetic = frame.loc[frame.index.repeat(n)].reset_index(drop=True)
    synthetic[key_column] = new_keys
    values = pd.Series(outputs, index=synthetic.index, dtype=object)
    synthetic[column] = values if frame[column].dtype == object else values.astype(frame[column].dtype)
    frame[synthetic_column] = False
    synthetic[synthetic_column] = True
    return pd.concat([frame.reset_index(drop=True), synthetic], ignore_index=True)


def _augment_arrays(data, augmenter, n, seed, verbose):
    x, y = np.asarray(data[0]), np.asarray(data[1])
    keys = np.asarray(data[2]) if len(data) == 3 else np.arange(len(x)).astype(str)
    if x.ndim == 0 or len(x) == 0 or not len(x) == len(y) == len(keys):
        raise ValueError(
            "`data` must hold non-empty arrays with one row per example. Received lengths: "
            f"x={x.shape[:1]}, y={y.shape[:1]}, keys={keys.shape[:1]}"
        )
    keys = _unique_keys(keys, "`keys`")
    outputs, new_keys = _synthetic_rows(list(x), keys, augmenter, n, seed, verbose)
    if x.dtype.kind in "US":
        synthetic_x = np.asarray(outputs, dtype=str)
        x_out = np.concatenate([x.astype(str), synthetic_x])
    else:
        shapes = {np.shape(item) for item in outputs}
        if shapes != {x.shape[1:]}:
            raise ValueError(f"the augmenter changed the shape of the rows: {x.shape[1:]} -> {sorted(shapes)}")
        x_out = np.concatenate([x, np.stack(outputs).astype(x.dtype)])
    return AugmentedArrays(
        x_out,
        np.concatenate([y, np.repeat(y, n, axis=0)]),
        np.asarray(keys + new_keys),
        np.repeat([False, True], [len(x), len(x) * n]),
    )


def on_the_fly(dataset, augmenter, *, seed=0, probability=1.0, num_parallel_calls=None):
    """Augments the inputs of a `tf.data.Dataset` as it is read: new variants on every pass.

    With an `Augmenter` (text, audio, spectrogram, `OneOf`), each element is augmented in Python through
    `tf.numpy_function`, seeded from `(seed, position in the stream)`: apply it to unbatched elements
    after `shuffle` and `repeat`, so that each epoch draws new variants while a run with the same seeds
    repeats exactly. With a Keras layer (e.g. `models.vision.augmentation()`, a block of random image
    layers), the layer runs in the `tf.data` graph with `training=True`, batched or not, seeded by its
    own `seed`: the images are augmented on the CPU pipeline and the model stays free of augmentation
    layers. Inputs only are changed; labels (and sample weights) pass through.

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from recipes.augment import on_the_fly, text_augmenter

    texts = np.array(["a dark, dull thriller", "just plain dull", "hard to predict"])
    dataset = tf.data.Dataset.from_tensor_slices((texts, np.array([0, 0, 1])))
    train = on_the_fly(dataset.repeat(2), text_augmenter("swap"), seed=0).batch(2)
    [t.decode() for t in next(iter(train))[0].numpy()]
    ```

    Args:
        dataset: A `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)` tuples, or of `x` alone;
            unbatched for an `Augmenter` (one string or one waveform per element).
        augmenter: An `Augmenter`-like callable `(item, seed) -> item` that keeps the item's shape, or a
            `keras.layers.Layer`.
        seed: Non-negative int, defaults to 0. Not used with a Keras layer (its own seed applies).
        probability: Float in [0, 1], defaults to 1. Share of elements augmented (drawn per element
            from the same seed); the others pass unchanged. Not used with a Keras layer.
        num_parallel_calls: Passed to `Dataset.map`, defaults to `None` (sequential; the Python
            augmenters hold a lock, so parallel calls buy little).

    Returns:
        A `tf.data.Dataset` of the same structure.
    """
    import keras
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(f"`dataset` must be a tf.data.Dataset. Received: {type(dataset).__name__}")
    seed = check_int("seed", seed, minimum=0)
    check_number("probability", probability, minimum=0, maximum=1)
    spec = dataset.element_spec
    is_tuple = isinstance(spec, tuple)
    x_spec = spec[0] if is_tuple else spec
    if not isinstance(x_spec, tf.TensorSpec):
        raise ValueError(f"the inputs of `dataset` must be one tensor per element. Received: {x_spec!r}")

    parallel = {} if num_parallel_calls is None else {"num_parallel_calls": num_parallel_calls, "deterministic": True}

    def rebuild(element, x):
        return (x, *element[1:]) if is_tuple else x

    if isinstance(augmenter, keras.layers.Layer):
        return dataset.map(lambda *element: rebuild(element, augmenter(element[0], training=True)), **parallel)
    check_callable("augmenter", augmenter, AUGMENTER_EXPECTED)
    is_text = x_spec.dtype == tf.string
    if is_text and x_spec.shape.rank != 0:
        raise ValueError(
            f"`dataset` must be unbatched: one string per element. Received inputs of shape {x_spec.shape}; "
            "apply on_the_fly before .batch()"
        )

    def augment_one(index, x):
        element_seed = derive_seed(seed, int(index))
        if probability < 1.0 and np.random.default_rng(element_seed).random() >= probability:
            return x
        if is_text:
            return np.asarray(augmenter(x.decode("utf-8"), element_seed).encode("utf-8"), dtype=object)
        return np.asarray(augmenter(x, element_seed), dtype=x.dtype)

    def mapped(index, element):
        element = element if is_tuple else (element,)
        x = tf.numpy_function(augment_one, [index, element[0]], x_spec.dtype, stateful=False)
        x = tf.ensure_shape(x, x_spec.shape)
        return rebuild(element, x)

    return dataset.enumerate().map(mapped, **parallel)

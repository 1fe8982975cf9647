"""The two sides of a shift report: checked, their modality inferred, and put in one form per modality."""

import numpy as np
import pandas as pd

from recipes._common import check_int, check_number, check_one_of

MODALITIES = ("text", "image", "audio", "table")
# Fewer examples than this on a side test nothing.
MIN_EXAMPLES = 10


def check_arguments(reference_data, current_data, modality, alpha, seed, sample_rate, num_examples, cv):
    """The modality of both sides (given or inferred, the same on both), or a `ValueError`."""
    if modality is not None:
        modality = check_one_of("modality", modality, MODALITIES)
    check_number("alpha", alpha, 0, 1, inclusive=False)
    check_int("seed", seed, 0)
    check_int("num_examples", num_examples, 0)
    check_int("cv", cv, 2)
    if sample_rate is not None:
        check_int("sample_rate", sample_rate, 1)
    sides = (("reference_data", reference_data), ("current_data", current_data))
    inferred = [infer_modality(data, name, sample_rate) if modality is None else modality for name, data in sides]
    if inferred[0] != inferred[1]:
        raise ValueError(
            "`reference_data` and `current_data` must be of the same modality. Received: reference_data looks like "
            f"{inferred[0]} data ({describe(reference_data)}), current_data like {inferred[1]} data "
            f"({describe(current_data)})"
        )
    modality = inferred[0]
    if modality == "audio" and sample_rate is None:
        raise ValueError("`sample_rate` is required for audio, e.g. sample_rate=16000. Received: sample_rate=None")
    for name, data in sides:
        if len(data) < MIN_EXAMPLES:
            raise ValueError(
                f"`{name}` must hold at least {MIN_EXAMPLES} examples to test anything. Received: {len(data)}"
            )
    return modality


def labelled(reference_data, current_data):
    """`((x_ref, y_ref), (x_cur, y_cur))`: each side's inputs and labels, from an `(x, y)` tuple, or `(data, None)`
    for inputs alone; both sides labelled or neither."""
    sides = [_inputs_and_labels(reference_data, "reference_data"), _inputs_and_labels(current_data, "current_data")]
    given = [y is not None for _, y in sides]
    if given[0] != given[1]:
        labelled_side, other = ("reference_data", "current_data") if given[0] else ("current_data", "reference_data")
        raise ValueError(
            f"`reference_data` and `current_data` must both be (x, y) tuples to compare labels, or both inputs alone. "
            f"Received: an (x, y) tuple as `{labelled_side}` and {describe(sides[given.index(False)][0])} as `{other}`"
        )
    return sides


def _inputs_and_labels(data, name):
    if not isinstance(data, tuple) or len(data) != 2 or any(isinstance(part, (str, bytes)) for part in data):
        return data, None
    x, y = data
    if not hasattr(x, "__len__") or not hasattr(y, "__len__") or len(x) != len(y):
        shown = [len(part) if hasattr(part, "__len__") else repr(part)[:40] for part in data]
        raise ValueError(
            f"`{name}` as an (x, y) tuple must hold inputs and one label per example. Received: {shown[0]} inputs "
            f"and {shown[1]} labels"
        )
    return x, y


def describe(data):
    if isinstance(data, pd.DataFrame):
        return f"a DataFrame of shape {data.shape}"
    if isinstance(data, np.ndarray):
        return f"an array of shape {data.shape} and dtype {data.dtype}"
    return f"a {type(data).__name__} of {len(data)} items" if hasattr(data, "__len__") else repr(data)[:80]


def infer_modality(data, name, sample_rate):
    """`"table"` for a DataFrame, `"text"` for strings, `"image"` for a 3-D or 4-D array, `"audio"` for
    waveforms given with a sample rate; else a `ValueError`."""
    if isinstance(data, pd.DataFrame):
        return "table"
    if data is None or isinstance(data, (str, bytes)) or not hasattr(data, "__len__") or len(data) == 0:
        raise ValueError(
            f"`{name}` must be a DataFrame, a sequence of strings, an image array or waveforms. "
            f"Received: {name}={repr(data)[:80]}"
        )
    if isinstance(data, pd.Series):
        data = data.to_numpy()
    first = data[0]
    if isinstance(first, str):
        return "text"
    if isinstance(data, np.ndarray) and data.dtype.kind in "iufb":
        if data.ndim in (3, 4):
            return "image"
        if data.ndim == 2 and sample_rate is not None:
            return "audio"
    elif sample_rate is not None and isinstance(first, (np.ndarray, list)) and np.ndim(first) == 1:
        return "audio"
    raise ValueError(
        f"`modality` must be given: `{name}` is none that can be told apart. Expected a pandas DataFrame (table), "
        "a sequence of strings (text), an array (N, H, W) or (N, H, W, C) (images), or waveforms (N, samples) "
        f"or a list of 1-D arrays with `sample_rate` (audio); or pass modality= one of {MODALITIES}. "
        f"Received: {name}={describe(data)}"
    )


def strings(data, name):
    values = list(data.to_numpy() if isinstance(data, pd.Series) else data)
    bad = next((v for v in values if not isinstance(v, str)), None)
    if bad is not None or any(not isinstance(v, str) for v in values):
        raise ValueError(f"`{name}` must hold only strings for text. Received: an item {bad!r}")
    return np.asarray(values, dtype=object)


def images(data, name):
    data = np.asarray(data)
    if data.ndim not in (3, 4) or data.dtype.kind not in "iuf" or (data.ndim == 4 and data.shape[-1] > 4):
        raise ValueError(
            f"`{name}` must be a numeric array of images (N, H, W) or (N, H, W, C) with C <= 4. "
            f"Received: {describe(data)}"
        )
    return data if data.ndim == 4 else data[..., None]


def waveforms(data, name):
    clips = list(data) if isinstance(data, np.ndarray) and data.ndim == 2 else [np.asarray(clip) for clip in data]
    for i, clip in enumerate(clips):
        if clip.ndim != 1 or clip.size == 0 or clip.dtype.kind not in "iuf":
            raise ValueError(
                f"`{name}` must hold non-empty 1-D numeric waveforms. Received: item {i} of shape "
                f"{clip.shape} and dtype {clip.dtype}"
            )
    return clips

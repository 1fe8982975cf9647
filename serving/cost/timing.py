"""Timing a SavedModel's serving signature per device and batch size: rows/s and p50/p99 latency of one call.

The rows are cast as `recipes predict` casts them (`serving.predict.Predictor`), batches of each size are
timed call by call with their outputs fetched to the host, and every configuration is timed in interleaved
rounds, so that load from other processes on a shared machine falls on all of them alike.
"""

import os
import re
import time

import numpy as np
import pandas as pd

from recipes._common import check_int, check_number
from serving.contract import KEY, KEYED_SIGNATURE, version_folder

# The device classes a machine type and a measurement belong to.
DEVICES = ("cpu", "gpu")
MEASUREMENT_COLUMNS = (
    "tf_device",
    "device_name",
    "device",
    "batch_size",
    "calls",
    "rows_per_s",
    "p50_ms",
    "p99_ms",
    "cores",
)
_TF_DEVICE = re.compile(r"^/?(?:device:)?(cpu|gpu):(\d+)$", re.I)
_MAX_SAMPLE_ROWS = 1024
_ROUNDS = 3


def measure_throughput(
    model_path,
    x,
    batch_sizes=(1, 8, 32, 128),
    *,
    key=KEY,
    signature=KEYED_SIGNATURE,
    tf_devices=None,
    seconds=1.0,
    warmup=3,
    min_calls=5,
):
    """Times a SavedModel's serving signature per device and batch size: rows/s and p50/p99 latency per call.

    Batches of each size are made from real rows `x` (cycled when there are
    fewer rows than the batch size), cast to the signature's inputs as
    `recipes predict` casts them; a keyed signature (`serving.export_model`'s
    `serving_default`) gets one key per row. Each batch size on each device
    is called `warmup` times, then timed call by call, outputs fetched to the
    host as a server returns them, for `seconds` in all (at least `min_calls`
    calls), in three rounds through every batch size and device: all are
    measured side by side in one run, and a load that comes and goes on a
    shared machine falls on all of them. The CPU runs with TensorFlow's
    default threads: all the cores this process may use (the `cores` column).

    Example:

    ```python
    import serving

    measured = serving.measure_throughput("exports/text", "reviews.csv", batch_sizes=(1, 32, 128))
    print(measured[["tf_device", "batch_size", "rows_per_s", "p99_ms"]])
    ```

    Args:
        model_path: A SavedModel version folder or a TF Serving model base
            path (its highest numeric version is used).
        x: Sample model inputs: a dict (or DataFrame) from each signature
            input's name to its raw values, or the path of a `.csv` /
            `.jsonl` / `.ndjson` / `.json` file holding them, as `recipes
            predict` reads it (its first rows are used).
        batch_sizes: Ints >= 1, defaults to `(1, 8, 32, 128)`.
        key: Key column of an input file, defaults to `"key"`; not an input.
        signature: Defaults to `"serving_default"`.
        tf_devices: Optional list of TensorFlow devices such as `["/CPU:0",
            "/GPU:0"]`; defaults to `None`: the CPU and every GPU TensorFlow
            sees.
        seconds: Float > 0, timed seconds per device and batch size, defaults
            to 1.0.
        warmup: Int >= 0, untimed calls first, defaults to 3.
        min_calls: Int >= 1, fewest timed calls, defaults to 5.

    Returns:
        A DataFrame, one row per device and batch size: `tf_device`
        (`"/CPU:0"`), `device_name` (`"CPU"`, or the GPU's name), `device`
        (`"cpu"` or `"gpu"`), `batch_size`, `calls`, `rows_per_s`, `p50_ms`,
        `p99_ms` (latency of one call) and `cores` (logical cores TensorFlow
        could use for the CPU).
    """
    batch_sizes = _batch_sizes(batch_sizes)
    check_number("seconds", seconds, minimum=0, inclusive=False)
    warmup, min_calls = check_int("warmup", warmup, minimum=0), check_int("min_calls", min_calls)
    import tensorflow as tf

    from serving.predict import Predictor, read_inputs

    version_dir = version_folder(model_path)
    device_list = _tf_devices(tf_devices)
    # The signature loaded and read as `recipes predict` reads it: its inputs, and whether it takes a key.
    predictor = Predictor(version_dir, signature, key)
    function, specs, keyed, inputs = predictor.function, predictor.input_specs, predictor.keyed, predictor.model_inputs
    if isinstance(x, (str, os.PathLike)):
        num_examples = min(max(batch_sizes), _MAX_SAMPLE_ROWS)
        sample = read_inputs(version_dir, x, num_examples=num_examples, key=key, signature=signature)
    else:
        sample = _cast_inputs(x, inputs, specs)
    available = len(next(iter(sample.values())))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    calls = {}  # (batch size, device) -> a function running one timed call
    for size in batch_sizes:
        picks = np.arange(size) % available
        tensors = {name: tf.constant(sample[name][picks]) for name in inputs}
        if keyed:
            tensors[KEY] = tf.constant(np.array([f"row-{i}".encode() for i in range(size)], dtype=object))
        for tf_device, _, _ in device_list:
            calls[size, tf_device] = _timed_call(function, tensors, tf_device)
    latencies = _time_in_rounds(calls, seconds, warmup, min_calls)
    records = []
    for size in batch_sizes:
        for tf_device, device_name, device in device_list:
            times = np.array(latencies[size, tf_device])
            p50, p99 = np.percentile(times, [50, 99]) * 1000
            records.append(
                {
                    "tf_device": tf_device,
                    "device_name": device_name,
                    "device": device,
                    "batch_size": size,
                    "calls": len(times),
                    "rows_per_s": size * len(times) / float(np.sum(times)),
                    "p50_ms": float(p50),
                    "p99_ms": float(p99),
                    "cores": cores if device == "cpu" else None,
                }
            )
    return pd.DataFrame.from_records(records, columns=MEASUREMENT_COLUMNS)


def _timed_call(function, tensors, tf_device):
    """A function that calls the signature once on `tf_device` and returns the seconds it took."""
    import tensorflow as tf

    def call():
        before = time.perf_counter()
        with tf.device(tf_device):
            outputs = function(**tensors)
        for value in outputs.values():
            value.numpy()  # a server returns the answer: the time to fetch it counts
        return time.perf_counter() - before

    return call


def _time_in_rounds(calls, seconds, warmup, min_calls):
    """Seconds per call for each configuration, timed in interleaved rounds.

    On a machine whose load changes (other processes sharing the cores), one
    configuration after the other would give the quiet minutes to some and the
    busy ones to others; `_ROUNDS` rounds through all of them share the
    disturbance out. Each gets `warmup` untimed calls first, then about
    `seconds` of calls in all, and at least `min_calls`.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    latencies = {name: [] for name in calls}
    for _ in range(_ROUNDS):
        for name, call in calls.items():
            start = time.perf_counter()
            while time.perf_counter() - start < seconds / _ROUNDS:
                latencies[name].append(call())
    for name, call in calls.items():
        while len(latencies[name]) < min_calls:
            latencies[name].append(call())
    return latencies


def _tf_devices(tf_devices):
    """`(tf_device, device_name, device)` for the CPU and each GPU, or for those asked for (checked to exist)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    names = {"cpu": ["CPU"], "gpu": []}
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        names["gpu"].append(details.get("device_name", "GPU"))
    if tf_devices is None:
        return [("/CPU:0", "CPU", "cpu")] + [(f"/GPU:{i}", name, "gpu") for i, name in enumerate(names["gpu"])]
    if isinstance(tf_devices, str) or not tf_devices:
        raise ValueError(
            f"`tf_devices` must be a non-empty list such as ['/CPU:0', '/GPU:0']. Received: tf_devices={tf_devices!r}"
        )
    found = []
    for tf_device in tf_devices:
        match = _TF_DEVICE.match(str(tf_device))
        if not match:
            raise ValueError(f"`tf_devices` must name devices such as '/CPU:0' or '/GPU:1'. Received: {tf_device!r}")
        device, index = match.group(1).lower(), int(match.group(2))
        if index >= len(names[device]):
            seen = ["/CPU:0"] + [f"/GPU:{i}" for i in range(len(gpus))]
            raise ValueError(f"TensorFlow sees no device {tf_device!r}; it sees {seen}")
        found.append((f"/{device.upper()}:{index}", names[device][index], device))
    return found


def _cast_inputs(x, inputs, specs):
    """A dict of raw values per input, as NumPy arrays of the signature's dtypes, all of one length."""
    if isinstance(x, pd.DataFrame):
        x = {name: x[name].tolist() for name in x.columns}
    if not isinstance(x, dict):
        raise ValueError(
            "`x` must be a dict from input name to raw values, or an input file (.csv or .jsonl). "
            f"Received: {type(x).__name__}"
        )
    missing = [name for name in inputs if name not in x]
    if missing:
        raise ValueError(f"`x` lacks the inputs {missing}: the signature takes {inputs}. Received: {sorted(x)}")
    sample, lengths = {}, {}
    for name in inputs:
        spec = specs[name]
        try:
            values = np.asarray(x[name], dtype=object if spec.dtype.name == "string" else spec.dtype.as_numpy_dtype)
        except (TypeError, ValueError) as error:
            raise ValueError(f"input {name!r} must hold {spec.dtype.name} values; {error}") from None
        if values.ndim != spec.shape.rank or values.ndim == 0 or len(values) == 0:
            raise ValueError(
                f"input {name!r} must be a batch of shape {spec.shape.as_list()} with at least one row. "
                f"Received: the shape {list(values.shape)}"
            )
        sample[name], lengths[name] = values, len(values)
    if len(set(lengths.values())) > 1:
        raise ValueError(f"every input of `x` must have the same number of rows. Received lengths: {lengths}")
    return sample


def _batch_sizes(batch_sizes):
    """The batch sizes, checked, sorted and without repeats."""
    if isinstance(batch_sizes, (str, int)) or not batch_sizes:
        raise ValueError(f"`batch_sizes` must be a non-empty list of ints >= 1. Received: batch_sizes={batch_sizes!r}")
    return sorted({check_int(f"batch_sizes[{i}]", size) for i, size in enumerate(batch_sizes)})

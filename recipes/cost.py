"""Serving cost: measure an exported model's throughput and latency per device, then price it per machine type.

`measure_throughput` times the serving signature of a SavedModel (as
`serving.export_model` writes it, and as `recipes predict` runs it) on real
rows, batch size by batch size, on the CPU and on each GPU TensorFlow sees,
side by side in one run: rows per second and the p50/p99 latency of one call.
`cost_report` turns those figures and hourly machine prices into the cost per
million predictions of each machine type at its best batch size within a p99
latency target, the machines needed for a target throughput, and the cheapest
choice. Without a GPU present, GPU machine types use a throughput the user
supplies (measured elsewhere) or are reported as not measured: a GPU figure
is never made up.

The arithmetic, per machine type:

- replicas: the model replicas one machine runs. A CPU machine runs
  `vcpus // cores_per_replica` (the measurement used `cores_per_replica`
  logical cores, so one replica needs as many vCPUs), a GPU machine one per
  GPU; a price row may give `replicas` itself. Throughput is taken to scale
  linearly with replicas.
- rows/s per machine: replicas x the rows/s measured at the best batch size
  whose p99 latency is within the target (the highest rows/s, without one).
- cost per million predictions: `usd_per_hour / (rows_per_s * 3600 / 1e6)`.
- machines for a target throughput: `ceil(target_rps / rows_per_s)`; the
  cheapest choice is the one whose machines cost least per hour (without a
  target: the lowest cost per million predictions).
"""

import dataclasses
import json
import math
import os
import re
import time

import numpy as np
import pandas as pd

KINDS = ("cpu", "gpu")
# Approximate on-demand list prices of a few machine types, as dated and sourced here: check them before
# deciding, and pass your own (a file, or NAME=USD overrides) for other clouds, regions or discounts.
PRICES_DATE = "2024-06"
PRICES_SOURCE = "AWS EC2 on-demand pricing, us-east-1, Linux (https://aws.amazon.com/ec2/pricing/on-demand/)"
BUILTIN_PRICES = (
    {"machine": "c6i.large", "kind": "cpu", "vcpus": 2, "gpus": 0, "accelerator": "", "usd_per_hour": 0.085},
    {"machine": "c6i.2xlarge", "kind": "cpu", "vcpus": 8, "gpus": 0, "accelerator": "", "usd_per_hour": 0.34},
    {"machine": "c6i.8xlarge", "kind": "cpu", "vcpus": 32, "gpus": 0, "accelerator": "", "usd_per_hour": 1.36},
    {"machine": "g4dn.xlarge", "kind": "gpu", "vcpus": 4, "gpus": 1, "accelerator": "NVIDIA T4", "usd_per_hour": 0.526},
    {"machine": "g6.xlarge", "kind": "gpu", "vcpus": 4, "gpus": 1, "accelerator": "NVIDIA L4", "usd_per_hour": 0.8048},
)
PRICE_COLUMNS = ("machine", "kind", "vcpus", "gpus", "accelerator", "usd_per_hour", "replicas")
MEASUREMENT_COLUMNS = ("device", "device_name", "kind", "batch_size", "calls", "rows_per_s", "p50_ms", "p99_ms", "cores")
_DEVICE = re.compile(r"^/?(?:device:)?(cpu|gpu):(\d+)$", re.I)
_MAX_SAMPLE_ROWS = 1024
_ROUNDS = 3


# -- measurement -----------------------------------------------------------------------------------------------


def measure_throughput(
    model_dir,
    rows,
    batch_sizes=(1, 8, 32, 128),
    *,
    key="key",
    signature="serving_default",
    devices=None,
    seconds=1.0,
    warmup=3,
    min_calls=5,
):
    """Times a SavedModel's serving signature per device and batch size: rows/s and p50/p99 latency per call.

    Batches of each size are made from real rows (cycled when there are fewer
    rows than the batch size), cast to the signature's inputs as
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
    from recipes.cost import measure_throughput

    measured = measure_throughput("exports/text", "reviews.csv", batch_sizes=(1, 32, 128))
    print(measured[["device", "batch_size", "rows_per_s", "p99_ms"]])
    ```

    Args:
        model_dir: A SavedModel version folder or a TF Serving model base path
            (its highest numeric version is used).
        rows: Sample rows: a `.csv` / `.jsonl` / `.ndjson` / `.json` file as
            `recipes predict` reads it (its first rows are used), or a dict
            (or DataFrame) from each signature input's name to its raw values.
        batch_sizes: Ints >= 1, defaults to `(1, 8, 32, 128)`.
        key: Key column of an input file, defaults to `"key"`; not an input.
        signature: Defaults to `"serving_default"`.
        devices: Optional list of devices such as `["/CPU:0", "/GPU:0"]`;
            defaults to `None`: the CPU and every GPU TensorFlow sees.
        seconds: Float > 0, timed seconds per device and batch size, defaults
            to 1.0.
        warmup: Int >= 0, untimed calls first, defaults to 3.
        min_calls: Int >= 1, fewest timed calls, defaults to 5.

    Returns:
        A DataFrame, one row per device and batch size: `device`
        (`"/CPU:0"`), `device_name` (`"CPU"`, or the GPU's name), `kind`
        (`"cpu"` or `"gpu"`), `batch_size`, `calls`, `rows_per_s`, `p50_ms`,
        `p99_ms` (latency of one call) and `cores` (logical cores TensorFlow
        could use for the CPU).
    """
    batch_sizes = _check_batch_sizes(batch_sizes)
    _check_number("seconds", seconds, minimum=0, inclusive=False)
    for name, value, least in (("warmup", warmup, 0), ("min_calls", min_calls, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"`{name}` must be an int >= {least}. Received: {name}={value!r}")
    import tensorflow as tf

    from recipes.batch_predict import _Predictor, read_inputs, resolve_model_dir

    version_dir = resolve_model_dir(model_dir)
    device_list = _devices(devices)
    # The signature loaded and read as `recipes predict` reads it: its inputs, and whether it takes a key.
    predictor = _Predictor(version_dir, signature, key)
    function, specs, keyed, inputs = predictor.function, predictor.input_specs, predictor.keyed, predictor.model_inputs
    if isinstance(rows, (str, os.PathLike)):
        sample = read_inputs(version_dir, rows, rows=min(max(batch_sizes), _MAX_SAMPLE_ROWS), key=key, signature=signature)
    else:
        sample = _cast_rows(rows, inputs, specs)
    available = len(next(iter(sample.values())))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    calls = {}  # (batch size, device) -> a function running one timed call
    for size in batch_sizes:
        picks = np.arange(size) % available
        tensors = {name: tf.constant(sample[name][picks]) for name in inputs}
        if keyed:
            tensors["key"] = tf.constant(np.array([f"row-{i}".encode() for i in range(size)], dtype=object))
        for device, _, _ in device_list:
            calls[size, device] = _timed_call(function, tensors, device)
    latencies = _time_in_rounds(calls, seconds, warmup, min_calls)
    records = []
    for size in batch_sizes:
        for device, device_name, kind in device_list:
            times = np.array(latencies[size, device])
            p50, p99 = np.percentile(times, [50, 99]) * 1000
            records.append(
                {"device": device, "device_name": device_name, "kind": kind, "batch_size": size,
                 "calls": len(times), "rows_per_s": size * len(times) / float(np.sum(times)),
                 "p50_ms": float(p50), "p99_ms": float(p99), "cores": cores if kind == "cpu" else None}
            )  # fmt: skip
    return pd.DataFrame.from_records(records, columns=MEASUREMENT_COLUMNS)


def _timed_call(function, tensors, device):
    """A function that calls the signature once on `device` and returns the seconds it took."""
    import tensorflow as tf

    def call():
        before = time.perf_counter()
        with tf.device(device):
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


def _devices(devices):
    """`(device, device_name, kind)` for the CPU and each GPU, or for the devices asked for (checked to exist)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    names = {"cpu": ["CPU"], "gpu": []}
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        names["gpu"].append(details.get("device_name", "GPU"))
    if devices is None:
        return [("/CPU:0", "CPU", "cpu")] + [(f"/GPU:{i}", name, "gpu") for i, name in enumerate(names["gpu"])]
    if isinstance(devices, str) or not devices:
        raise ValueError(f"`devices` must be a non-empty list such as ['/CPU:0', '/GPU:0']. Received: {devices!r}")
    found = []
    for device in devices:
        match = _DEVICE.match(str(device))
        if not match:
            raise ValueError(f"a device must look like '/CPU:0' or '/GPU:1'. Received: {device!r}")
        kind, index = match.group(1).lower(), int(match.group(2))
        if index >= len(names[kind]):
            seen = ["/CPU:0"] + [f"/GPU:{i}" for i in range(len(gpus))]
            raise ValueError(f"TensorFlow sees no device {device!r}; it sees {seen}")
        found.append((f"/{kind.upper()}:{index}", names[kind][index], kind))
    return found


def _cast_rows(rows, inputs, specs):
    """A dict of raw values per input, as NumPy arrays of the signature's dtypes, all of one length."""
    if isinstance(rows, pd.DataFrame):
        rows = {name: rows[name].tolist() for name in rows.columns}
    if not isinstance(rows, dict):
        raise ValueError(
            f"`rows` must be an input file (.csv or .jsonl) or a dict from input name to raw values. "
            f"Received: {type(rows).__name__}"
        )
    missing = [name for name in inputs if name not in rows]
    if missing:
        raise ValueError(f"`rows` lacks the inputs {missing}; the signature takes {inputs}, `rows` has {sorted(rows)}")
    sample, lengths = {}, {}
    for name in inputs:
        spec = specs[name]
        try:
            values = np.asarray(rows[name], dtype=object if spec.dtype.name == "string" else spec.dtype.as_numpy_dtype)
        except (TypeError, ValueError) as error:
            raise ValueError(f"input {name!r} must hold {spec.dtype.name} values; {error}") from None
        if values.ndim != spec.shape.rank or values.ndim == 0 or len(values) == 0:
            raise ValueError(
                f"input {name!r} must be a batch of shape {spec.shape.as_list()} with at least one row; "
                f"received the shape {list(values.shape)}"
            )
        sample[name], lengths[name] = values, len(values)
    if len(set(lengths.values())) > 1:
        raise ValueError(f"every input of `rows` must have the same number of rows; received {lengths}")
    return sample


# -- prices ----------------------------------------------------------------------------------------------------


def price_table(prices=None, overrides=None):
    """Hourly prices of machine types: the built-in table, or a file or records of yours, with overrides.

    Each machine type has a `machine` name, a `kind` (`"cpu"` or `"gpu"`) and
    a `usd_per_hour` > 0; a CPU machine its `vcpus`, a GPU machine its `gpus`
    (or either its `replicas`, the model replicas it runs, directly), and an
    optional `accelerator` (the GPU's name). The built-in table
    (`BUILTIN_PRICES`) holds approximate on-demand prices, dated
    `PRICES_DATE`, from `PRICES_SOURCE`.

    Example:

    ```python
    from recipes.cost import price_table

    prices = price_table(overrides={"g4dn.xlarge": 0.3})  # e.g. a spot price
    print(prices.attrs["date"], prices[["machine", "kind", "usd_per_hour"]])
    ```

    Args:
        prices: Defaults to `None`: the built-in table. Else a `.csv` file
            (a row per machine type, with the columns above), a `.json` file
            (a list of such objects, or `{"date": ..., "source": ...,
            "machines": [...]}`), a DataFrame or a list of dicts. It replaces
            the built-in table.
        overrides: Optional dict from a machine name in the table to its
            price in USD per hour, defaults to `None`.

    Returns:
        A DataFrame with the columns `PRICE_COLUMNS`, and `attrs["date"]` and
        `attrs["source"]` saying where the prices come from.
    """
    date, source = PRICES_DATE, PRICES_SOURCE
    if prices is None:
        records = [dict(row) for row in BUILTIN_PRICES]
    elif isinstance(prices, (str, os.PathLike)):
        records, date, source = _read_prices(os.fspath(prices))
    elif isinstance(prices, pd.DataFrame):
        records, date, source = prices.to_dict("records"), prices.attrs.get("date"), prices.attrs.get("source", "given")
    elif isinstance(prices, (list, tuple)) and all(isinstance(row, dict) for row in prices):
        records, date, source = [dict(row) for row in prices], None, "given"
    else:
        raise ValueError(
            f"`prices` must be None, a .csv or .json file, a DataFrame or a list of dicts. Received: {type(prices).__name__}"
        )
    table = pd.DataFrame([_price_row(row, number) for number, row in enumerate(records, 1)], columns=PRICE_COLUMNS)
    if table.empty:
        raise ValueError("the price table has no machine types")
    repeated = sorted(set(table.machine[table.machine.duplicated()]))
    if repeated:
        raise ValueError(f"each machine type must appear once in the price table; repeated: {repeated}")
    if overrides is not None:
        if not isinstance(overrides, dict):
            raise ValueError(f"`overrides` must be a dict from machine name to USD per hour. Received: {overrides!r}")
        for machine, price in overrides.items():
            if machine not in set(table.machine):
                raise ValueError(f"unknown machine {machine!r} in the price overrides; known: {list(table.machine)}")
            table.loc[table.machine == machine, "usd_per_hour"] = _price(price, machine)
        if overrides:
            source += f"; overridden: {', '.join(f'{m}=${p:g}/h' for m, p in overrides.items())}"
    table.attrs.update(date=date, source=source)
    return table


def _read_prices(path):
    if not os.path.isfile(path):
        raise ValueError(f"the price file {path} does not exist")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".csv":
        frame = pd.read_csv(path, dtype={"machine": str, "kind": str, "accelerator": str}, keep_default_na=False,
                            na_values={"vcpus": [""], "gpus": [""], "replicas": [""], "usd_per_hour": [""]})  # fmt: skip
        return frame.to_dict("records"), None, os.path.basename(path)
    if extension == ".json":
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as error:
                raise ValueError(f"the price file {path} is not valid JSON: {error}") from None
        if isinstance(data, dict) and isinstance(data.get("machines"), list):
            return data["machines"], data.get("date"), data.get("source") or os.path.basename(path)
        if isinstance(data, list) and all(isinstance(row, dict) for row in data):
            return data, None, os.path.basename(path)
        raise ValueError(
            f"the price file {path} must hold a list of machine objects or {{\"machines\": [...], \"date\": ..., "
            f"\"source\": ...}}; received a {type(data).__name__}"
        )
    raise ValueError(f"the price file must end in .csv or .json. Received: {path!r}")


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _price_row(row, number):
    where = f"machine type {number} ({row.get('machine', '?')!r})"
    unknown = sorted(set(row) - set(PRICE_COLUMNS))
    if unknown:
        raise ValueError(f"{where} has unknown fields {unknown}; expected some of {list(PRICE_COLUMNS)}")
    machine = row.get("machine")
    if not isinstance(machine, str) or not machine.strip():
        raise ValueError(f"{where} needs a `machine` name. Received: {machine!r}")
    kind = row.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: `kind` must be one of {list(KINDS)}. Received: {kind!r}")
    counts = {}
    for name in ("vcpus", "gpus", "replicas"):
        value = row.get(name)
        if _missing(value):
            counts[name] = None
            continue
        try:
            whole = not isinstance(value, bool) and float(value).is_integer() and float(value) >= 0
        except (TypeError, ValueError):
            whole = False
        if not whole:
            raise ValueError(f"{where}: `{name}` must be an int >= 0. Received: {value!r}")
        counts[name] = int(float(value))
    if counts["replicas"] == 0:
        raise ValueError(f"{where}: `replicas` must be >= 1. Received: 0")
    needed = "vcpus" if kind == "cpu" else "gpus"
    if counts["replicas"] is None and not counts[needed]:
        raise ValueError(f"{where}: a {kind.upper()} machine needs `{needed}` >= 1 (or `replicas`). Received: {row}")
    accelerator = "" if _missing(row.get("accelerator")) else str(row["accelerator"])
    return {"machine": machine.strip(), "kind": kind, "vcpus": counts["vcpus"], "gpus": counts["gpus"],
            "accelerator": accelerator, "usd_per_hour": _price(row.get("usd_per_hour"), machine),
            "replicas": counts["replicas"]}  # fmt: skip


def _price(value, machine):
    try:
        price = float(value)
    except (TypeError, ValueError):
        price = math.nan
    if isinstance(value, bool) or not math.isfinite(price) or price <= 0:
        raise ValueError(f"the price of {machine!r} must be a number of USD per hour > 0. Received: {value!r}")
    return price


# -- report ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CostReport:
    """What `cost_report` returns. `str(report)` gives the verdict first, then the notes and the table.

    Attributes:
        verdict: One sentence: the cheapest machine type (and how many) for
            the target, or why none qualifies.
        cheapest: The cheapest machine type's row of `table` as a dict, or
            `None` when none meets the latency target or none is measured.
        table: DataFrame, one row per machine type, cheapest first: its
            `machine`, `kind`, `replicas`, `usd_per_hour`, `source` of the
            throughput (`"measured"`, `"supplied"` or `"not measured"`),
            `status` (`"ok"`, `"p99 above target"`, `"latency unknown"`, `"no
            replica fits"`, `"not measured"`), then at its best batch size:
            `batch_size`, `rows_per_s` (per machine), `p99_ms`,
            `cost_per_million`, and for a target `machines` and
            `usd_per_hour_total`.
        points: DataFrame, one row per machine type and measured batch size,
            with the same figures (`meets_latency` says which count).
        notes: Strings: where the GPU figures come from, the replica rule,
            what the latency covers, the prices' date and source.
        target_rps: The target throughput, or `None`.
        max_latency_ms: The p99 latency target, or `None`.
    """

    verdict: str
    cheapest: dict | None
    table: pd.DataFrame = dataclasses.field(repr=False)
    points: pd.DataFrame = dataclasses.field(repr=False)
    notes: list
    target_rps: float | None
    max_latency_ms: float | None

    def __str__(self):
        lines = [self.verdict, *(f"- {note}" for note in self.notes), ""]
        shown = self._shown()
        lines.append(shown.to_string(index=False))
        return "\n".join(lines)

    def _shown(self):
        """The table with readable column names and numbers, as text."""
        columns = {"machine": "machine", "kind": "kind", "replicas": "replicas", "usd_per_hour": "USD/h",
                   "batch_size": "batch", "rows_per_s": "rows/s", "p99_ms": "p99 ms",
                   "cost_per_million": "USD/1M pred", "machines": "machines", "usd_per_hour_total": "USD/h total",
                   "status": "status"}  # fmt: skip
        usd = lambda value: _usd(value)[1:]  # noqa: E731
        formats = {"replicas": "{:.0f}".format, "usd_per_hour": "{:.4g}".format, "batch_size": "{:.0f}".format,
                   "rows_per_s": "{:,.0f}".format, "p99_ms": "{:.1f}".format, "cost_per_million": "{:.3g}".format,
                   "machines": "{:.0f}".format, "usd_per_hour_total": usd}  # fmt: skip
        shown = self.table[[c for c in columns if c in self.table.columns]].copy()
        for column, form in formats.items():
            if column in shown.columns:
                shown[column] = [
                    "-" if v is None or (isinstance(v, float) and math.isnan(v)) else form(v)
                    for v in shown[column]
                ]
        return shown.rename(columns=columns)

    def to_markdown(self):
        """The verdict, the notes as a list and the table, as Markdown."""
        from recipes._markdown import markdown_table

        table = markdown_table(self._shown().astype(str))
        return "\n".join([f"**{self.verdict}**", "", *(f"- {note}" for note in self.notes), "", table, ""])

    def plot(self, path):
        """Writes a PNG: cost per million predictions by batch size, and rows/s against p99 latency per device.

        Args:
            path: File to write, e.g. `"cost.png"`.

        Returns:
            `path`, as a string.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

        figure = Figure(figsize=(11, 4.2), layout="constrained")
        FigureCanvasAgg(figure)
        costs, speeds = figure.subplots(1, 2)
        colours = dict(zip(self.table.machine, [f"C{i % 10}" for i in range(len(self.table))]))
        points = self.points[self.points.cost_per_million.notna()]
        for machine, rows in points.groupby("machine", sort=False):
            measured = rows[rows.batch_size.notna()].sort_values("batch_size")
            if len(measured):
                costs.plot(measured.batch_size, measured.cost_per_million, "o-", color=colours[machine], label=machine)
                late = measured[~measured.meets_latency]
                costs.plot(late.batch_size, late.cost_per_million, "x", color="black", markersize=9)
            else:  # a supplied throughput has no batch size
                costs.axhline(rows.cost_per_million.iloc[0], linestyle="--", color=colours[machine],
                              label=f"{machine} (supplied)")  # fmt: skip
        costs.set_xscale("log", base=2)
        costs.set_yscale("log")
        costs.set_xlabel("batch size" + ("" if self.max_latency_ms is None else " (x: p99 above the target)"))
        unmeasured = list(self.table.machine[self.table.source == "not measured"])
        if unmeasured:
            costs.text(0.02, 0.02, f"not measured: {', '.join(unmeasured)}", transform=costs.transAxes, fontsize="small")
        costs.set_ylabel("USD per million predictions")
        costs.set_title("cost per million predictions")
        if len(points):
            costs.legend(fontsize="small")
        replicas = self.points.drop_duplicates(["kind", "batch_size", "source"])
        for (kind, source), rows in replicas.groupby(["kind", "source"], sort=False):
            rows = rows[rows.replica_rows_per_s.notna()].sort_values("batch_size")
            if not len(rows) or rows.p99_ms.isna().all():
                continue
            speeds.plot(rows.p99_ms, rows.replica_rows_per_s, "o-", label=f"{kind.upper()} ({source})")
            for _, row in rows.iterrows():
                if not math.isnan(row.batch_size):
                    speeds.annotate(f"{row.batch_size:.0f}", (row.p99_ms, row.replica_rows_per_s), fontsize="small",
                                    textcoords="offset points", xytext=(4, -10))  # fmt: skip
        if self.max_latency_ms is not None:
            speeds.axvline(self.max_latency_ms, linestyle="--", color="grey", label=f"p99 target {self.max_latency_ms:g} ms")
        speeds.set_xscale("log")
        speeds.set_yscale("log")
        sizes = sorted(self.points.batch_size.dropna().unique())
        if sizes:
            costs.set_xticks(sizes)
        for axis in (costs.xaxis, costs.yaxis, speeds.xaxis, speeds.yaxis):
            if axis is not costs.xaxis:
                axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
            axis.set_major_formatter(StrMethodFormatter("{x:,g}"))
            axis.set_minor_formatter(NullFormatter())
        speeds.set_xlabel("p99 latency of one call (ms)")
        speeds.set_ylabel("rows/s per replica")
        speeds.set_title("throughput against latency (labels: batch size)")
        if speeds.get_legend_handles_labels()[0]:
            speeds.legend(fontsize="small")
        title = self.verdict if len(self.verdict) < 130 else self.verdict[:127] + "..."
        figure.suptitle(title.replace("$", r"\$"), fontsize="medium")  # "$" would start Matplotlib's mathtext
        path = os.fspath(path)
        figure.savefig(path, dpi=100)
        return path


def cost_report(
    measurements,
    prices=None,
    *,
    target_rps=None,
    max_latency_ms=None,
    gpu_throughput=None,
    gpu_latency_ms=None,
    cores_per_replica=None,
):
    """Prices measured throughputs per machine type: cost per million predictions, machines needed, the cheapest.

    For each machine type: its replicas (a CPU machine runs `vcpus //
    cores_per_replica`, a GPU machine one per GPU, unless its price row says
    `replicas`), the best batch size (the highest rows/s whose p99 is within
    `max_latency_ms`), its rows/s (replicas x rows/s per replica), its cost
    per million predictions (`usd_per_hour / (rows_per_s * 3600 / 1e6)`) and,
    for `target_rps`, the machines needed (`ceil(target_rps / rows_per_s)`)
    and what they cost per hour. The cheapest is the machine type whose
    machines cost least for the target (without one: the lowest cost per
    million predictions), among those within the latency target.

    GPU machine types take the GPU rows of `measurements`; without any, the
    `gpu_throughput` supplied (rows/s of one GPU, e.g. measured with
    `recipes cost` on a GPU machine), or else they are reported as not
    measured. One GPU's figures are used for every GPU machine type: other
    GPUs differ, so measure on the one you will rent.

    Example:

    ```python
    from recipes.cost import cost_report

    measured = [
        {"kind": "cpu", "batch_size": 1, "rows_per_s": 200, "p99_ms": 5},
        {"kind": "cpu", "batch_size": 32, "rows_per_s": 1600, "p99_ms": 25},
    ]
    report = cost_report(measured, target_rps=10_000, max_latency_ms=30, gpu_throughput=20_000,
                         gpu_latency_ms=10, cores_per_replica=2)
    print(report)
    ```

    Args:
        measurements: What `measure_throughput` returns, or records (a
            DataFrame or a list of dicts) with at least `kind` (`"cpu"` or
            `"gpu"`), `batch_size`, `rows_per_s` and `p99_ms` (of one call,
            per replica), optionally `p50_ms`, `cores` and `device_name`.
        prices: What `price_table` takes or returns, defaults to `None` (the
            built-in table).
        target_rps: Optional float > 0, predictions per second to serve,
            defaults to `None`.
        max_latency_ms: Optional float > 0, the largest acceptable p99 of one
            call, defaults to `None` (no limit).
        gpu_throughput: Optional float > 0, rows/s of one GPU, for when the
            measurements have no GPU rows; defaults to `None`.
        gpu_latency_ms: Optional float > 0, the p99 at `gpu_throughput`;
            defaults to `None` (unknown: the GPU cannot then meet a latency
            target).
        cores_per_replica: Optional int >= 1, vCPUs one CPU replica needs;
            defaults to `None`: the `cores` the CPU measurement used.

    Returns:
        A `CostReport`.
    """
    for name, value in (("target_rps", target_rps), ("max_latency_ms", max_latency_ms),
                        ("gpu_throughput", gpu_throughput), ("gpu_latency_ms", gpu_latency_ms)):  # fmt: skip
        if value is not None:
            _check_number(name, value, minimum=0, inclusive=False)
    if gpu_latency_ms is not None and gpu_throughput is None:
        raise ValueError("`gpu_latency_ms` is the p99 at `gpu_throughput`; pass `gpu_throughput` too")
    if cores_per_replica is not None and (
        isinstance(cores_per_replica, bool) or not isinstance(cores_per_replica, int) or cores_per_replica < 1
    ):
        raise ValueError(f"`cores_per_replica` must be an int >= 1. Received: cores_per_replica={cores_per_replica!r}")
    table = price_table(prices)
    measured = _measurements(measurements)
    notes = []

    curves = {}  # kind -> DataFrame of operating points per replica, with `source`
    for kind in KINDS:
        rows = measured[measured.kind == kind]
        if len(rows):
            agg = rows.groupby("batch_size", as_index=False).agg(
                replica_rows_per_s=("rows_per_s", "median"), p50_ms=("p50_ms", "median"), p99_ms=("p99_ms", "max")
            )
            curves[kind] = agg.assign(source="measured")
    gpu_names = sorted(set(measured.device_name[measured.kind == "gpu"].dropna())) if "device_name" in measured else []
    if "gpu" in curves:
        if gpu_throughput is not None:
            raise ValueError(
                "the measurements have GPU rows; `gpu_throughput` is for when no GPU was measured. Drop one of them"
            )
        on = f" on {', '.join(gpu_names)}" if gpu_names else ""
        notes.append(f"GPU: measured{on}; used for every GPU machine type (GPUs differ: measure on the one you rent).")
    elif gpu_throughput is not None:
        latency = "unknown p99" if gpu_latency_ms is None else f"p99 {gpu_latency_ms:g} ms"
        notes.append(
            f"No GPU was measured: GPU machine types use the supplied {gpu_throughput:,.0f} rows/s "
            f"per GPU ({latency})."
            + (" Its latency cannot be checked against the p99 target, so it is not chosen: pass gpu_latency_ms= "
               "(--gpu-latency-ms)." if gpu_latency_ms is None and max_latency_ms is not None else "")
        )  # fmt: skip
        curves["gpu"] = pd.DataFrame([{"batch_size": math.nan, "replica_rows_per_s": float(gpu_throughput),
                                       "p50_ms": math.nan, "p99_ms": math.nan if gpu_latency_ms is None
                                       else float(gpu_latency_ms), "source": "supplied"}])  # fmt: skip
    elif (table.kind == "gpu").any():
        notes.append(
            "No GPU was measured and no GPU throughput supplied: GPU machine types are not "
            "measured. Run `recipes cost` on a GPU machine, then pass its rows/s as --gpu-throughput "
            "(gpu_throughput=)."
        )

    cores_from = "given"
    if cores_per_replica is None and "cpu" in curves and (table.kind == "cpu").any():
        cores = measured.cores[measured.kind == "cpu"].dropna() if "cores" in measured else pd.Series(dtype=float)
        if not len(cores) and table.replicas[table.kind == "cpu"].isna().any():
            raise ValueError(
                "the CPU measurements do not say how many cores they used (a `cores` column); pass "
                "`cores_per_replica`, or `replicas` per CPU machine type in the prices"
            )
        cores_per_replica, cores_from = (int(cores.max()) if len(cores) else None), "the cores measured"
    if cores_per_replica is not None and "cpu" in curves:
        notes.append(
            f"CPU machines run one replica per {cores_per_replica} vCPU{'s' * (cores_per_replica > 1)} ({cores_from}); "
            "throughput is taken to grow linearly with replicas."
        )

    points = _points(table, curves, cores_per_replica, target_rps, max_latency_ms)
    summary = _summary(points, target_rps)
    cheapest = _plain(summary.iloc[0].to_dict()) if len(summary) and summary.meets_latency.iloc[0] else None

    notes.append(
        "p99 is the latency of one call with a full batch; under dynamic batching a request also waits for its "
        "batch to fill (up to the batch timeout)."
    )
    date = table.attrs.get("date") or "undated"
    notes.append(f"Prices ({date}): {table.attrs.get('source', 'given')}; approximate, check before deciding.")
    verdict = _verdict(cheapest, summary, points, target_rps, max_latency_ms)
    return CostReport(verdict, cheapest, summary, points, notes, target_rps, max_latency_ms)


def _points(table, curves, cores_per_replica, target_rps, max_latency_ms):
    """One row per machine type and operating point (batch size): its replicas, rows/s, latency and costs."""
    points = []
    for machine in table.itertuples(index=False):
        replicas = machine.replicas
        if replicas is None or (isinstance(replicas, float) and math.isnan(replicas)):
            replicas = machine.gpus if machine.kind == "gpu" else (machine.vcpus // cores_per_replica
                                                                   if cores_per_replica else 0)  # fmt: skip
        base = {"machine": machine.machine, "kind": machine.kind, "replicas": int(replicas),
                "usd_per_hour": machine.usd_per_hour}  # fmt: skip
        curve = curves.get(machine.kind)
        if curve is None:
            points.append({**base, "source": "not measured", "status": "not measured"})
            continue
        for op in curve.itertuples(index=False):
            point = {**base, "source": op.source, "batch_size": op.batch_size, "p50_ms": op.p50_ms, "p99_ms": op.p99_ms,
                     "replica_rows_per_s": op.replica_rows_per_s}  # fmt: skip
            if max_latency_ms is None:
                point["meets_latency"], point["status"] = True, "ok"
            elif math.isnan(op.p99_ms):
                point["meets_latency"], point["status"] = False, "latency unknown"
            else:
                ok = op.p99_ms <= max_latency_ms
                point["meets_latency"], point["status"] = ok, "ok" if ok else "p99 above target"
            if replicas < 1:
                point["meets_latency"], point["status"] = False, "no replica fits"
                points.append(point)
                continue
            rows_per_s = replicas * op.replica_rows_per_s
            point["rows_per_s"] = rows_per_s
            point["cost_per_million"] = machine.usd_per_hour / (rows_per_s * 3600 / 1e6)
            if target_rps is not None:
                point["machines"] = math.ceil(target_rps / rows_per_s)
                point["usd_per_hour_total"] = point["machines"] * machine.usd_per_hour
            points.append(point)
    point_columns = ["machine", "kind", "replicas", "usd_per_hour", "source", "status", "batch_size", "rows_per_s",
                     "replica_rows_per_s", "p50_ms", "p99_ms", "meets_latency", "cost_per_million"]  # fmt: skip
    if target_rps is not None:
        point_columns += ["machines", "usd_per_hour_total"]
    points = pd.DataFrame.from_records(points, columns=point_columns)
    points["meets_latency"] = points.meets_latency.astype("boolean").fillna(False).astype(bool)
    return points


def _summary(points, target_rps):
    """Each machine type at its best point within the latency target (else its lowest p99), cheapest first."""
    order = "usd_per_hour_total" if target_rps is not None else "cost_per_million"
    best_rows = []
    for machine, rows in points.groupby("machine", sort=False):
        fitting = rows[rows.meets_latency]
        if len(fitting):
            best_rows.append(fitting.loc[fitting.rows_per_s.idxmax()])
        elif rows.p99_ms.notna().any():  # none qualifies: show the lowest-latency point
            best_rows.append(rows.loc[rows.p99_ms.idxmin()])
        else:
            best_rows.append(rows.iloc[0])
    summary = pd.DataFrame(best_rows).reset_index(drop=True)
    summary["_ok"] = summary.meets_latency
    by = list(dict.fromkeys(["_ok", order, "cost_per_million"]))
    summary = summary.sort_values(by, ascending=[False] + [True] * (len(by) - 1), kind="stable", na_position="last")
    summary = summary.drop(columns=["_ok", "replica_rows_per_s", "p50_ms"]).reset_index(drop=True)
    return summary


def _plain(row):
    """A table row as plain Python values: ints for counts, `None` for missing values."""
    plain = {}
    for name, value in row.items():
        if isinstance(value, (float, np.floating)) and math.isnan(value):
            value = None
        elif isinstance(value, (np.bool_, bool)):
            value = bool(value)
        elif name in ("replicas", "batch_size", "machines"):
            value = int(value)
        elif isinstance(value, (np.floating, np.integer)):
            value = value.item()
        plain[name] = value
    return plain


def _usd(value):
    """`$0.60`, `$12.00`, but `$0.085` and `$0.00146`: cents, or three significant digits below them."""
    return f"${value:,.2f}" if math.isclose(value, round(value, 2), rel_tol=1e-9) or value >= 10 else f"${value:.3g}"


def _verdict(cheapest, summary, points, target_rps, max_latency_ms):
    within = "" if max_latency_ms is None else f" with p99 <= {max_latency_ms:g} ms"
    if cheapest is None:
        priced = points[points.replica_rows_per_s.notna() & points.p99_ms.notna()]
        if max_latency_ms is not None and len(priced):
            lowest = priced.loc[priced.p99_ms.idxmin()]
            batch = "" if math.isnan(lowest.batch_size) else f", batch {lowest.batch_size:.0f}"
            return (
                f"No machine type meets p99 <= {max_latency_ms:g} ms: the lowest p99 is {lowest.p99_ms:.1f} ms "
                f"({lowest.kind.upper()}{batch}): raise the target, or serve a smaller model or a faster device."
            )
        if max_latency_ms is not None and points.replica_rows_per_s.notna().any():
            return (
                f"No machine type is known to meet p99 <= {max_latency_ms:g} ms: no latency was measured or supplied "
                "(pass gpu_latency_ms= / --gpu-latency-ms with a supplied GPU throughput)."
            )
        return "No machine type can be priced: no throughput is measured or supplied for any of them."
    batch = "" if cheapest["batch_size"] is None else f", batch {cheapest['batch_size']:.0f}"
    what = f"{cheapest['machine']} ({cheapest['kind'].upper()}{batch}, {cheapest['source']})"
    per_million = f"{_usd(cheapest['cost_per_million'])} per million predictions"
    if target_rps is not None:
        text = (
            f"Cheapest for {target_rps:,.0f} rows/s{within}: {cheapest['machines']} x {what} at "
            f"{_usd(cheapest['usd_per_hour_total'])}/h ({per_million})"
        )
    else:
        text = (
            f"Cheapest per prediction{within}: {what}, {per_million} "
            f"({cheapest['rows_per_s']:,.0f} rows/s per machine at {_usd(cheapest['usd_per_hour'])}/h)"
        )
    others = summary[summary.meets_latency & (summary.machine != cheapest["machine"])]
    if len(others):
        runner = others.iloc[0]
        if target_rps is not None:
            text += f"; next: {runner.machines:.0f} x {runner.machine} at {_usd(runner.usd_per_hour_total)}/h"
        else:
            text += f"; next: {runner.machine} at {_usd(runner.cost_per_million)} per million"
    return text + "."


def _measurements(measurements):
    """The measurement records as a checked DataFrame."""
    if isinstance(measurements, pd.DataFrame):
        frame = measurements.copy()
    elif isinstance(measurements, (list, tuple)) and all(isinstance(row, dict) for row in measurements):
        frame = pd.DataFrame.from_records(list(measurements))
    else:
        raise ValueError(
            f"`measurements` must be what `measure_throughput` returns, or a list of dicts. "
            f"Received: {type(measurements).__name__}"
        )
    needed = ["kind", "batch_size", "rows_per_s", "p99_ms"]
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise ValueError(f"the measurements lack the columns {missing}; found {list(frame.columns)}")
    if "p50_ms" not in frame.columns:
        frame["p50_ms"] = math.nan
    for index, row in enumerate(frame.to_dict("records"), 1):
        if row["kind"] not in KINDS:
            raise ValueError(f"measurement {index}: `kind` must be one of {list(KINDS)}. Received: {row['kind']!r}")
        size = row["batch_size"]
        if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)) or not (
            float(size).is_integer() and size >= 1
        ):
            raise ValueError(f"measurement {index}: `batch_size` must be an int >= 1. Received: {size!r}")
        for name in ("rows_per_s", "p99_ms"):
            value = row[name]
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
                math.isfinite(value) and value > 0
            ):
                raise ValueError(f"measurement {index}: `{name}` must be a number > 0. Received: {value!r}")
    frame["batch_size"] = frame.batch_size.astype(float)
    frame["rows_per_s"] = frame.rows_per_s.astype(float)
    frame["p99_ms"] = frame.p99_ms.astype(float)
    frame["p50_ms"] = frame.p50_ms.astype(float)
    return frame


# -- checks ----------------------------------------------------------------------------------------------------


def _check_batch_sizes(batch_sizes):
    if isinstance(batch_sizes, (str, int)) or not batch_sizes:
        raise ValueError(f"`batch_sizes` must be a non-empty list of ints >= 1. Received: batch_sizes={batch_sizes!r}")
    sizes = list(batch_sizes)
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"`batch_sizes` must be ints >= 1. Received: batch_sizes={batch_sizes!r}")
    return sorted(set(int(size) for size in sizes))


def _check_number(name, value, minimum, inclusive):
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)
    ok = ok and (value >= minimum if inclusive else value > minimum)
    if not ok:
        raise ValueError(f"`{name}` must be a number {'>=' if inclusive else '>'} {minimum:g}. Received: {name}={value!r}")

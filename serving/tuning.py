"""TF Serving's batching guide as a measurement, ending in a parameters file: `tune_batching`.

The guide (tensorflow_serving/batching/README.md, "CPU-only: One Approach") says: as many batch threads as
cores; `batch_timeout_micros` 0 first, while `max_batch_size` is swept; then a timeout of 1-10 ms, kept only
if it pays. `tune_batching` does exactly that against `recipes-model-server` serving the model in a process
of its own, with concurrent clients sending keyed single-row requests made from real rows (read as
`serving.predict_file` reads them). Each configuration's requests/s and p50/p99 latency go into a table and
a plot; the fastest configuration whose p99 stays within `latency_budget_ms` is written as
`batching_parameters.txt`, ready for `--enable_batching --batching_parameters_file`.
"""

import dataclasses
import math
import os

from recipes._common import check_int, check_number, check_one_of, check_verbose
from serving.contract import KEY, version_folder

PARAMETERS_FILE = "batching_parameters.txt"
TABLE_FILE = "batching_sweep.csv"
PLOT_FILE = "batching_sweep.png"
_CANDIDATE_FILE = "candidate_batching_parameters.txt"


@dataclasses.dataclass(frozen=True)
class BatchingSweep:
    """What `tune_batching` measured and chose.

    Attributes:
        configurations: One dict per configuration, in the order measured: `label`, `max_batch_size` and
            `batch_timeout_ms` (`None` without batching), `parameters` (the parameters file's text, `None`
            without batching), `requests_per_s`, `p50_ms`, `p99_ms`.
        best: The chosen configuration: the fastest within the latency budget, else the one with the lowest
            p99.
        no_batching: The configuration without batching, the baseline.
        within_budget: Whether `best` keeps its p99 within the budget (always, without a budget).
        directory: The folder holding `batching_parameters.txt`, `batching_sweep.csv` and
            `batching_sweep.png`.
    """

    configurations: list
    best: dict
    no_batching: dict
    within_budget: bool
    directory: str

    @property
    def parameters_path(self):
        return os.path.join(self.directory, PARAMETERS_FILE)

    @property
    def speedup(self):
        """The best configuration's requests/s over those without batching."""
        return self.best["requests_per_s"] / self.no_batching["requests_per_s"]


def parameters_text(max_batch_size, timeout_ms, threads, clients):
    """TF Serving's text format for one configuration; the queue holds every client's request twice over."""
    enqueued = max(10, 2 * math.ceil(clients / max_batch_size))
    return (
        f"max_batch_size {{ value: {max_batch_size} }}\n"
        f"batch_timeout_micros {{ value: {round(timeout_ms * 1000)} }}\n"
        f"max_enqueued_batches {{ value: {enqueued} }}\n"
        f"num_batch_threads {{ value: {threads} }}\n"
    )


def tune_batching(
    model_path,
    input_path,
    directory="batching",
    *,
    key=KEY,
    protocol="grpc",
    clients=64,
    seconds=3.0,
    threads=None,
    max_batch_sizes=(8, 16, 32, 64, 128),
    timeouts_ms=(1, 2, 5, 10),
    latency_budget_ms=None,
    verbose="auto",
):
    """Sweeps TF Serving's batching parameters under load and writes the best as a parameters file.

    First without batching, then each of `max_batch_sizes` with a timeout of 0, then each of `timeouts_ms`
    at the best size: each configuration is served by a `recipes-model-server` process of its own
    (`--enable_batching --batching_parameters_file`), loaded by `clients` concurrent clients for `seconds`.

    Example:

    ```python
    import serving

    sweep = serving.tune_batching("exports/text", "reviews.jsonl", "batching", clients=16, seconds=1)
    print(sweep.best["label"], f"{sweep.speedup:.2f} x", sweep.parameters_path)
    ```

    Args:
        model_path: The model's export folder (TF Serving's base path, holding numeric version folders).
        input_path: A `.csv` or JSON Lines file of rows to send, as `serving.predict_file` reads it.
        directory: Folder for `batching_parameters.txt`, `batching_sweep.csv` and `batching_sweep.png`;
            defaults to `"batching"`.
        key: The key column of `input_path`, defaults to `"key"`.
        protocol: `"grpc"` (default) or `"rest"`.
        clients: Int >= 1, concurrent clients, defaults to 64.
        seconds: Float > 0, measured seconds per configuration, defaults to 3.
        threads: Optional int >= 1, `num_batch_threads`; defaults to the CPU count.
        max_batch_sizes: Ints >= 1 swept with a timeout of 0, defaults to `(8, 16, 32, 64, 128)`.
        timeouts_ms: Batch timeouts in ms tried next at the best size (0 is skipped), defaults to
            `(1, 2, 5, 10)`.
        latency_budget_ms: Optional float > 0, the largest acceptable p99; defaults to `None`.
        verbose: `"auto"` (default), 1 or 2: one line per configuration as it is measured; 0: silent.

    Returns:
        A `BatchingSweep`.
    """
    from serving.load import ServerProcess, run_load
    from serving.predict import read_inputs

    protocol = check_one_of("protocol", protocol, ("grpc", "rest"))
    clients = check_int("clients", clients)
    check_number("seconds", seconds, minimum=0, inclusive=False)
    threads = (os.cpu_count() or 1) if threads is None else check_int("threads", threads)
    if isinstance(max_batch_sizes, (str, int)) or not max_batch_sizes:
        raise ValueError(f"`max_batch_sizes` must be a non-empty list of ints. Received: {max_batch_sizes!r}")
    for index, size in enumerate(max_batch_sizes):
        check_int(f"max_batch_sizes[{index}]", size)
    for index, timeout in enumerate(timeouts_ms):
        check_number(f"timeouts_ms[{index}]", timeout, minimum=0)
    if latency_budget_ms is not None:
        check_number("latency_budget_ms", latency_budget_ms, minimum=0, inclusive=False)
    level = check_verbose(verbose)

    model_path = os.path.abspath(os.fspath(model_path))
    version_folder(model_path)  # a clear error for a folder without a SavedModel version
    name = os.path.basename(model_path.rstrip(os.sep))
    x = {column: list(values) for column, values in read_inputs(model_path, input_path, key=key).items()}
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    flags = [f"--model_name={name}", f"--model_base_path={model_path}", f"--grpc_max_threads={clients}"]
    configurations = []

    def say(text):
        if level:
            print(text, flush=True)

    def measure(size=None, timeout_ms=0.0):
        label, parameters, extra = "no batching", None, []
        if size is not None:
            label = f"size {size}, {timeout_ms:g} ms"
            parameters = parameters_text(size, timeout_ms, threads, clients)
            path = os.path.join(directory, _CANDIDATE_FILE)
            with open(path, "w") as f:
                f.write(parameters)
            extra = ["--enable_batching", f"--batching_parameters_file={os.path.abspath(path)}"]
        server = ServerProcess(flags + extra)
        try:
            address = server.grpc_address if protocol == "grpc" else server.rest_address
            report = run_load(address, name, x, protocol=protocol, concurrency=clients, seconds=seconds)
        finally:
            server.stop()
        if report.errors:
            raise ValueError(f"{label}: requests failed: {report.errors}")
        configuration = {
            "label": label,
            "max_batch_size": size,
            "batch_timeout_ms": timeout_ms if size else None,
            "parameters": parameters,
            "requests_per_s": report.throughput,
            "p50_ms": report.p50_ms,
            "p99_ms": report.p99_ms,
        }
        configurations.append(configuration)
        say(f"{label:<24}{report.throughput:>12,.0f}{report.p50_ms:>10.1f}{report.p99_ms:>10.1f}")
        return configuration

    say(f"{clients} clients, single-row keyed requests over {protocol}, {seconds:g} s each")
    say(f"{'configuration':<24}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    unbatched = measure()
    sized = [measure(size) for size in max_batch_sizes]
    size = _best(sized, latency_budget_ms)["max_batch_size"]
    timed = [measure(size, timeout) for timeout in timeouts_ms if timeout > 0]
    best = _best(sized + timed, latency_budget_ms)

    budget = "" if latency_budget_ms is None else f", p99 budget {latency_budget_ms:g} ms"
    note = (
        f"recipes tune-batching: {best['label']}, {best['requests_per_s']:,.0f} requests/s (no batching "
        f"{unbatched['requests_per_s']:,.0f}), p99 {best['p99_ms']:.1f} ms; {clients} {protocol} clients{budget}"
    )
    with open(os.path.join(directory, PARAMETERS_FILE), "w") as f:
        f.write(f"# {note}\n" + best["parameters"])
    os.remove(os.path.join(directory, _CANDIDATE_FILE))
    with open(os.path.join(directory, TABLE_FILE), "w") as f:
        f.write("max_batch_size,batch_timeout_ms,requests_per_s,p50_ms,p99_ms\n")  # empty: no batching
        for c in configurations:
            batched = c["max_batch_size"] is not None
            size, timeout = (c["max_batch_size"], f"{c['batch_timeout_ms']:g}") if batched else ("", "")
            f.write(f"{size},{timeout},{c['requests_per_s']:.1f},{c['p50_ms']:.2f},{c['p99_ms']:.2f}\n")
    _plot(configurations, os.path.join(directory, PLOT_FILE), f"{name}: {clients} {protocol} clients")
    return BatchingSweep(configurations, best, unbatched, _within(best, latency_budget_ms), directory)


def _within(configuration, budget):
    return budget is None or configuration["p99_ms"] <= budget


def _best(configurations, budget):
    """The fastest configuration within the budget; without any, the one with the lowest p99."""
    fitting = [c for c in configurations if _within(c, budget)]
    if fitting:
        return max(fitting, key=lambda c: c["requests_per_s"])
    return min(configurations, key=lambda c: c["p99_ms"])


def _plot(configurations, path, title):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [c["label"] for c in configurations]
    figure = Figure(figsize=(max(6, 0.9 * len(configurations)), 6), layout="tight")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    top.bar(labels, [c["requests_per_s"] for c in configurations], color="tab:blue")
    top.set_ylabel("requests/s")
    top.set_title(title)
    bottom.plot(labels, [c["p50_ms"] for c in configurations], "o-", label="p50")
    bottom.plot(labels, [c["p99_ms"] for c in configurations], "s-", label="p99")
    bottom.set_ylabel("latency (ms)")
    bottom.legend()
    for tick in bottom.get_xticklabels():
        tick.set_rotation(30)
        tick.set_horizontalalignment("right")
    figure.savefig(path, dpi=100)

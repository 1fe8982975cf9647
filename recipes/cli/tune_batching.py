"""`recipes tune-batching`: TF Serving's batching guide as a measurement, ending in a parameters file.

The guide (tensorflow_serving/batching/README.md, "CPU-only: One Approach")
says: as many batch threads as cores; `batch_timeout_micros` 0 first, while
`max_batch_size` is swept; then a timeout of 1-10 ms, kept only if it pays.
This command does exactly that against `recipes-model-server` serving the
model in a process of its own, with concurrent clients sending keyed
single-row requests made from real rows (`--input`, as `recipes predict`
reads them). Each configuration's requests/s and p50/p99 latency go into a
table and a plot; the fastest configuration whose p99 stays within
`--latency-budget-ms` is written as `batching_parameters.txt`, ready for
`--enable_batching --batching_parameters_file`.
"""

import math
import os

EXAMPLE = """example:
  recipes train text
  recipes tune-batching --model exports/text --input reviews.jsonl --output-dir batching
  recipes tune-batching --model exports/text --input reviews.csv --latency-budget-ms 50 --protocol rest
"""


def add_arguments(parser):
    parser.add_argument("--model", required=True, help="the model's base path (its numeric version folders)")
    parser.add_argument("--input", required=True, help="CSV or JSON Lines rows to send (as `recipes predict` reads)")
    parser.add_argument("--key", default="key", help="key column of --input (default: key)")
    parser.add_argument("--protocol", choices=("grpc", "rest"), default="grpc", help="default: grpc")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (default: 64)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per configuration (default: 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="num_batch_threads (default: cores)")
    parser.add_argument("--max-batch-sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128],
                        help="swept with timeout 0 (default: 8 16 32 64 128)")  # fmt: skip
    parser.add_argument("--timeouts-ms", type=float, nargs="+", default=[1, 2, 5, 10],
                        help="batch timeouts tried next, at the best size (default: 1 2 5 10)")  # fmt: skip
    parser.add_argument("--latency-budget-ms", type=float, help="largest acceptable p99 (default: none)")
    parser.add_argument("--output-dir", default="batching", help="where the table, plot and file go (default: batching)")


def _check(args):
    for name in ("clients", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1; received {getattr(args, name)}")
    if args.seconds <= 0:
        raise ValueError(f"--seconds must be > 0; received {args.seconds}")
    if any(size < 1 for size in args.max_batch_sizes):
        raise ValueError(f"--max-batch-sizes must be >= 1; received {args.max_batch_sizes}")
    if any(timeout < 0 for timeout in args.timeouts_ms):
        raise ValueError(f"--timeouts-ms must be >= 0; received {args.timeouts_ms}")
    if args.latency_budget_ms is not None and args.latency_budget_ms <= 0:
        raise ValueError(f"--latency-budget-ms must be > 0; received {args.latency_budget_ms}")


def parameters_text(max_batch_size, timeout_ms, threads, clients):
    """TF Serving's text format for one configuration; the queue holds every client's request twice over."""
    enqueued = max(10, 2 * math.ceil(clients / max_batch_size))
    return (
        f"max_batch_size {{ value: {max_batch_size} }}\n"
        f"batch_timeout_micros {{ value: {round(timeout_ms * 1000)} }}\n"
        f"max_enqueued_batches {{ value: {enqueued} }}\n"
        f"num_batch_threads {{ value: {threads} }}\n"
    )


def _within(row, budget):
    return budget is None or row["p99_ms"] <= budget


def _best(rows, budget):
    """The fastest row within the budget; without any, the one with the lowest p99."""
    fitting = [row for row in rows if _within(row, budget)]
    if fitting:
        return max(fitting, key=lambda row: row["throughput"])
    return min(rows, key=lambda row: row["p99_ms"])


def _plot(rows, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [row["label"] for row in rows]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(max(6, 0.9 * len(rows)), 6), sharex=True)
    top.bar(labels, [row["throughput"] for row in rows], color="tab:blue")
    top.set_ylabel("requests/s")
    top.set_title(title)
    bottom.plot(labels, [row["p50_ms"] for row in rows], "o-", label="p50")
    bottom.plot(labels, [row["p99_ms"] for row in rows], "s-", label="p99")
    bottom.set_ylabel("latency (ms)")
    bottom.legend()
    plt.setp(bottom.get_xticklabels(), rotation=30, ha="right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(args):
    _check(args)
    from recipes.batch_predict import read_inputs, resolve_model_dir
    from serving.load import ServerProcess, run_load

    base_path = os.path.abspath(args.model)
    resolve_model_dir(base_path)  # a clear error for a folder without a SavedModel version
    name = os.path.basename(base_path.rstrip(os.sep))
    inputs = {n: list(values) for n, values in read_inputs(base_path, args.input, key=args.key).items()}
    os.makedirs(args.output_dir, exist_ok=True)
    flags = [f"--model_name={name}", f"--model_base_path={base_path}", f"--grpc_max_threads={args.clients}"]
    rows = []

    def measure(size=None, timeout_ms=0.0):
        label, parameters, extra = "no batching", None, []
        if size is not None:
            label = f"size {size}, {timeout_ms:g} ms"
            parameters = parameters_text(size, timeout_ms, args.threads, args.clients)
            path = os.path.join(args.output_dir, "candidate_batching_parameters.txt")
            with open(path, "w") as f:
                f.write(parameters)
            extra = ["--enable_batching", f"--batching_parameters_file={os.path.abspath(path)}"]
        server = ServerProcess(flags + extra)
        try:
            address = server.grpc_address if args.protocol == "grpc" else server.rest_address
            report = run_load(address, name, inputs, protocol=args.protocol, concurrency=args.clients,
                              seconds=args.seconds)  # fmt: skip
        finally:
            server.stop()
        if report.errors:
            raise ValueError(f"{label}: requests failed: {report.errors}")
        row = {"label": label, "size": size, "timeout_ms": timeout_ms if size else None, "parameters": parameters,
               "throughput": report.throughput, "p50_ms": report.p50_ms, "p99_ms": report.p99_ms}  # fmt: skip
        rows.append(row)
        print(f"{label:<24}{row['throughput']:>12,.0f}{row['p50_ms']:>10.1f}{row['p99_ms']:>10.1f}", flush=True)
        return row

    print(f"{args.clients} clients, single-row keyed requests over {args.protocol}, {args.seconds:g} s each")
    print(f"{'configuration':<24}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}", flush=True)
    unbatched = measure()
    sized = [measure(size) for size in args.max_batch_sizes]
    size = _best(sized, args.latency_budget_ms)["size"]
    timed = [measure(size, timeout) for timeout in args.timeouts_ms if timeout > 0]
    best = _best(sized + timed, args.latency_budget_ms)

    budget = "" if args.latency_budget_ms is None else f", p99 budget {args.latency_budget_ms:g} ms"
    note = (f"recipes tune-batching: {best['label']}, {best['throughput']:,.0f} requests/s (no batching "
            f"{unbatched['throughput']:,.0f}), p99 {best['p99_ms']:.1f} ms; {args.clients} {args.protocol} "
            f"clients{budget}")  # fmt: skip
    chosen = os.path.join(args.output_dir, "batching_parameters.txt")
    with open(chosen, "w") as f:
        f.write(f"# {note}\n" + best["parameters"])
    os.remove(os.path.join(args.output_dir, "candidate_batching_parameters.txt"))
    with open(os.path.join(args.output_dir, "batching_sweep.csv"), "w") as f:
        f.write("max_batch_size,batch_timeout_ms,requests_per_s,p50_ms,p99_ms\n")  # empty: no batching
        for r in rows:
            size, timeout = ("", "") if r["size"] is None else (r["size"], f"{r['timeout_ms']:g}")
            f.write(f"{size},{timeout},{r['throughput']:.1f},{r['p50_ms']:.2f},{r['p99_ms']:.2f}\n")
    plot = os.path.join(args.output_dir, "batching_sweep.png")
    _plot(rows, plot, f"{name}: {args.clients} {args.protocol} clients")
    if not _within(best, args.latency_budget_ms):
        print(f"no configuration kept p99 within {args.latency_budget_ms:g} ms; chose the lowest p99")
    print(f"chose {best['label']}: {best['throughput'] / unbatched['throughput']:.2f} x the requests/s of no batching")
    print(f"wrote {chosen}, {plot} and the table batching_sweep.csv")

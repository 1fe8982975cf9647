"""`recipes tune-batching`: TF Serving's batching guide as a measurement, ending in a parameters file.

Serves the model in a `recipes-model-server` process per configuration, loads it with concurrent clients
sending keyed single-row requests made from real rows (INPUT, as `recipes predict` reads them), and writes
the fastest configuration within `--latency-budget-ms` as `batching_parameters.txt`, with the table and a
plot (see `serving.tune_batching`).
"""

import os

EXAMPLE = """example:
  recipes train text
  recipes tune-batching --model-path exports/text reviews.jsonl --directory batching
  recipes tune-batching --model-path exports/text reviews.csv --latency-budget-ms 50 --protocol rest
"""


def add_arguments(parser):
    from recipes.cli import add_verbose_arguments

    parser.add_argument(
        "input_path", metavar="INPUT", help="CSV or JSON Lines rows to send (as `recipes predict` reads)"
    )
    parser.add_argument("--model-path", required=True, help="the model's export folder (its numeric version folders)")
    parser.add_argument("--key", default="key", help="key column of INPUT (default: key)")
    parser.add_argument("--protocol", choices=("grpc", "rest"), default="grpc", help="default: grpc")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (default: 64)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per configuration (default: 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="num_batch_threads (default: cores)")
    parser.add_argument(
        "--max-batch-sizes",
        type=int,
        nargs="+",
        default=[8, 16, 32, 64, 128],
        help="swept with timeout 0 (default: 8 16 32 64 128)",
    )
    parser.add_argument(
        "--timeouts-ms",
        type=float,
        nargs="+",
        default=[1, 2, 5, 10],
        help="batch timeouts tried next, at the best size (default: 1 2 5 10)",
    )
    parser.add_argument("--latency-budget-ms", type=float, help="largest acceptable p99 (default: none)")
    parser.add_argument("--directory", default="batching", help="where the table, plot and file go (default: batching)")
    add_verbose_arguments(parser, "1 or 2: one line per configuration")


def run(args):
    from serving.tuning import PARAMETERS_FILE, PLOT_FILE, TABLE_FILE, tune_batching

    sweep = tune_batching(
        args.model_path,
        args.input_path,
        args.directory,
        key=args.key,
        protocol=args.protocol,
        clients=args.clients,
        seconds=args.seconds,
        threads=args.threads,
        max_batch_sizes=args.max_batch_sizes,
        timeouts_ms=args.timeouts_ms,
        latency_budget_ms=args.latency_budget_ms,
        verbose=args.verbose,
    )
    if not sweep.within_budget:
        print(f"no configuration kept p99 within {args.latency_budget_ms:g} ms; chose the lowest p99")
    print(f"chose {sweep.best['label']}: {sweep.speedup:.2f} x the requests/s of no batching")
    files = [os.path.join(args.directory, name) for name in (PARAMETERS_FILE, PLOT_FILE)]
    print(f"wrote {files[0]}, {files[1]} and the table {TABLE_FILE}")

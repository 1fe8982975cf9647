"""`recipes cost`: an exported model's throughput and latency per device and batch size, priced per machine type.

Measures the serving signature on real rows (INPUT, as `recipes predict`
reads them) on the CPU and every GPU TensorFlow sees, then prints the cost per
million predictions of each machine type, the machines needed for
`--target-rps` and the cheapest choice within `--max-latency-ms` (see
`serving.cost`). Writes the measurements and the table as CSV and a plot.
With `--json`, prints the report as JSON; exits 0 when a machine type
qualifies, 1 when none does.
"""

import os

EXAMPLE = """example:
  recipes train text
  recipes cost --model-path exports/text reviews.csv --target-rps 5000 --max-latency-ms 50
  recipes cost --model-path exports/text reviews.jsonl --key id --batch-sizes 1,32,256 \\
      --prices prices.csv --price g4dn.xlarge=0.21 --gpu-throughput 40000 --gpu-latency-ms 12 --json

prices: built in, approximate and dated (AWS on-demand, us-east-1); --prices FILE replaces them: a .csv with
  the columns machine,device,usd_per_hour and vcpus (cpu) or gpus (gpu), or replicas; or a .json list of such
  objects (or {"date": ..., "source": ..., "machines": [...]}); --price NAME=USD overrides one machine's price.
no GPU here? GPU machine types are "not measured" unless --gpu-throughput gives one GPU's rows/s (measured on
  a GPU machine, e.g. with this command there).
exit status: 0 when a machine type qualifies, 1 when none does (or none can be priced), 2 for bad usage.
"""


def add_arguments(parser):
    from recipes.cli.checking import add_json_argument

    parser.add_argument("input_path", metavar="INPUT", help="rows to send: .csv or .jsonl (as `recipes predict` reads)")
    parser.add_argument(
        "--model-path", required=True, help="SavedModel version folder, or export folder (its highest version)"
    )
    parser.add_argument("--key", default="key", help="key column of INPUT (default: key)")
    parser.add_argument("--signature", default="serving_default", help="default: serving_default")
    parser.add_argument("--batch-sizes", default="1,8,32,128", help="comma-separated (default: 1,8,32,128)")
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="timed seconds per device and batch size (default: 1)"
    )
    parser.add_argument("--prices", help="a .csv or .json price table replacing the built-in one")
    parser.add_argument(
        "--price",
        action="append",
        default=[],
        metavar="NAME=USD",
        help="a machine's price in USD per hour (repeatable)",
    )
    parser.add_argument("--cores-per-replica", type=int, help="vCPUs per CPU replica (default: the cores measured)")
    parser.add_argument(
        "--gpu-throughput", type=float, metavar="ROWS_PER_S", help="one GPU's rows/s, when none is here"
    )
    parser.add_argument("--gpu-latency-ms", type=float, help="p99 of one call at --gpu-throughput")
    parser.add_argument("--target-rps", type=float, help="predictions per second to serve (default: none)")
    parser.add_argument("--max-latency-ms", type=float, help="largest acceptable p99 of one call (default: none)")
    parser.add_argument("--directory", default="cost", help="where the CSVs and the plot go (default: cost)")
    add_json_argument(parser)


def parse_batch_sizes(text):
    """`"1,8,32"` -> `[1, 8, 32]`; anything else is a `ValueError` quoting it."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(size < 1 for size in sizes):
        raise ValueError(f"--batch-sizes must be comma-separated ints >= 1, such as 1,8,32. Received: {text!r}")
    return sizes


def parse_prices(items):
    """`["g4dn.xlarge=0.21"]` -> `{"g4dn.xlarge": 0.21}`; the price table checks the names and values."""
    prices = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            price = float(value)
        except ValueError:
            price = None
        if not sep or not name.strip() or price is None:
            raise ValueError(f"--price must be NAME=USD_PER_HOUR, such as g4dn.xlarge=0.526. Received: {item!r}")
        prices[name.strip()] = price
    return prices


def run(args):
    from recipes._common import check_number
    from recipes.cli.checking import finish, report_output

    check_number("--seconds", args.seconds, minimum=0, inclusive=False)
    sizes = parse_batch_sizes(args.batch_sizes)
    from serving.cost import cost_report, measure_throughput, price_table
    from serving.cost.pricing import check_targets

    arguments = dict(
        target_rps=args.target_rps,
        max_latency_ms=args.max_latency_ms,
        gpu_throughput=args.gpu_throughput,
        gpu_latency_ms=args.gpu_latency_ms,
        cores_per_replica=args.cores_per_replica,
    )
    check_targets(**arguments)  # bad arguments and prices fail before the measurement
    prices = price_table(args.prices, parse_prices(args.price))
    import tensorflow as tf

    with report_output(args):
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            print(f"TensorFlow sees {len(gpus)} GPU(s): measuring the CPU and each GPU side by side")
        else:
            supplied = "use the supplied --gpu-throughput" if args.gpu_throughput else "are reported as not measured"
            print(f"TensorFlow sees no GPU: measuring the CPU only; GPU machine types {supplied}")
        measured = measure_throughput(
            args.model_path, args.input_path, sizes, key=args.key, signature=args.signature, seconds=args.seconds
        )
        formats = {"rows_per_s": "{:,.0f}".format, "p50_ms": "{:.2f}".format, "p99_ms": "{:.2f}".format}
        columns = ["tf_device", "batch_size", "calls", "rows_per_s", "p50_ms", "p99_ms"]
        print(measured[columns].to_string(index=False, formatters=formats))
        print()
        report = cost_report(measured, prices, **arguments)
        os.makedirs(args.directory, exist_ok=True)
        measured.to_csv(os.path.join(args.directory, "measurements.csv"), index=False)
        report.table.to_csv(os.path.join(args.directory, "cost.csv"), index=False)
        plot = report.plot(os.path.join(args.directory, "cost.png"))
        files = f"wrote {plot}, the table cost.csv and the measurements measurements.csv in {args.directory}"
    return finish(args, report, f"{report}\n\n{files}")

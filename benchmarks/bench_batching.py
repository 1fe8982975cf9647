"""Batched mode under load: what dynamic batching buys at 64 concurrent clients.

An LSTM text classifier (raw review strings in) and a CNN image classifier
(PNG bytes in) are trained briefly on their real data sets and exported
with keys. Four servers run side by side, each in its own process:

- `recipes-model-server --enable_batching` with TF Serving's CPU starting
  point (`serving/deploy/batching_parameters.txt`: max batch 128, timeout 0)
  but one batch thread fewer than cores (`--batch-threads`): this server's
  front end, the gRPC event loop or the REST threads, is Python and keeps a
  core busy, and a batch thread that finds requests waiting while the other
  runs takes them at once, so with two threads on two cores the LSTM's
  batches stay half as large. Prometheus metrics are on, for the batch size
  the scheduler forms;
- the same server without batching;
- a naive peer: `http.server` calling `model.predict` on the Keras model
  for each request, what tutorials do.

Each side gets 64 concurrent clients sending single-row keyed requests, over
gRPC and REST (the naive peer speaks only REST), in alternating rounds (each
round runs every protocol and side once, so that the figures compared were
measured under the same load on the machine); every answer is checked to
carry its own key. The in-process limit is the serving signature called in
a loop on batches of the mean size the scheduler formed. Prints requests/s,
p50/p99 latency, the CPU the load generator and the server used (as a share
of the machine's cores, to show the load generator is not the bottleneck),
the ratios with their goals, and each server's peak memory.

With h2load installed (Debian's nghttp2-client, `make bench-deps`), each
round also sends gRPC load from h2load, a native HTTP/2 client whose CPU
per request is a fraction of the Python client's: the "h2load" rows. It
sends one keyed request over and over and sees neither keys nor gRPC
statuses, so the request is checked once first and the server's metrics
count any failure.

Usage: python benchmarks/bench_batching.py [--clients 64] [--seconds 4] [--rounds 2] [--models text,image]
       [--batch-threads N]
"""

import argparse
import base64
import http.server
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import recipes  # noqa: E402
import serving  # noqa: E402
from serving.batching import BatchingParameters  # noqa: E402
from serving.load import ServerProcess, free_port, peak_memory_bytes, run_h2load, run_load  # noqa: E402

DEPLOY = os.path.join(os.path.dirname(serving.__file__), "deploy")
GOALS = {
    "batched / unbatched": 3.0,
    "batched / naive peer": 10.0,
    "batched / in-process limit": 0.5,
    "batched gRPC / batched REST": 1.0,
    "batched / unbatched (h2load)": 3.0,
    "the same, per server CPU s": 1.0,
}
CORES = os.cpu_count() or 1


def _train(root, names=("text", "image")):
    """Trains and exports the models named; returns {name: (Keras path, serving inputs of 512 rows)}."""
    from models import text, vision

    recipes.set_seed(0)
    trained = []
    if "text" in names:
        reviews = recipes.datasets.load_rotten_tomatoes()
        texts, labels = reviews.text.to_numpy()[:2000], reviews.label.to_numpy()[:2000]
        lstm = text.lstm_classifier(texts, 2, class_names=["rotten", "fresh"])
        lstm.fit(texts, labels, epochs=1, batch_size=64, verbose=0)
        trained.append(("text", lstm, texts[:512]))
    if "image" in names:
        images, image_labels = recipes.datasets.load_fashion_mnist("test")
        cnn = vision.cnn_classifier((28, 28), 10)
        cnn.fit(images[:2000], image_labels[:2000], epochs=1, batch_size=64, verbose=0)
        trained.append(("image", cnn, images[:512]))

    built = {}
    for name, model, x in trained:
        serving.export_model(model, os.path.join(root, "models", name))
        keras_path = os.path.join(root, f"{name}.keras")
        model.save(keras_path)
        inputs = serving.to_serving_inputs(model, x)
        built[name] = (keras_path, {input_name: list(values) for input_name, values in inputs.items()})
    with open(os.path.join(root, "models.config"), "w") as config:
        entries = "".join(
            f'  config {{ name: "{name}" base_path: "{os.path.join(root, "models", name)}" model_platform: "tensorflow" }}\n'
            for name in built
        )
        config.write(f"model_config_list {{\n{entries}}}\n")
    return built


def naive_peer(port, keras_paths):
    """A tutorial's model server: one `model.predict` per request, in a thread per connection."""
    import keras

    import models.text  # noqa: F401 - registers the factories' layers and schedules the saved models use
    import models.vision  # noqa: F401
    import recipes.layers  # noqa: F401

    models = {name: keras.models.load_model(path) for name, path in keras_paths.items()}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802 - http.server's name
            name = self.path.split("/")[3].split(":")[0]
            inputs = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["inputs"]
            keys = inputs.pop("key")
            (values,) = inputs.values()
            if name == "image":
                x = np.stack([tf.io.decode_png(base64.b64decode(v["b64"]))[..., 0].numpy() for v in values])
            else:
                x = np.asarray(values, dtype=object)
            probabilities = models[name].predict(x, verbose=0)
            data = json.dumps({"outputs": {"key": keys, "probabilities": probabilities.tolist()}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    http.server.ThreadingHTTPServer.request_queue_size = 128  # Flask's (werkzeug's) listen backlog
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("naive peer ready", file=sys.stderr, flush=True)
    server.serve_forever()


def _start_naive_peer(built):
    port = free_port()
    paths = json.dumps({name: keras_path for name, (keras_path, _) in built.items()})
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--naive-peer", str(port), paths],
        stderr=subprocess.PIPE,
        text=True,
    )
    log = []
    for line in process.stderr:
        if "naive peer ready" in line:
            break
        log.append(line)
    else:
        raise RuntimeError("the naive peer exited before it was ready:\n" + "".join(log[-20:]))
    threading.Thread(target=process.stderr.read, daemon=True).start()  # keep draining its log
    return process, f"127.0.0.1:{port}"


def _in_process_limit(export_dir, inputs, batch_size, seconds):
    """Rows/s of the keyed serving signature called in a loop on batches of `batch_size` rows."""
    path = os.path.join(export_dir, max(os.listdir(export_dir), key=int))
    signature = tf.saved_model.load(path).signatures["serving_default"]
    arguments = {
        name: tf.constant(
            list(np.resize(np.asarray(values, dtype=object), batch_size))
            if isinstance(values[0], (bytes, str))
            else np.resize(values, batch_size)
        )
        for name, values in inputs.items()
    }
    arguments["key"] = tf.constant([f"k{i}" for i in range(batch_size)])
    for _ in range(5):
        signature(**arguments)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        signature(**arguments)
        calls += 1
    return calls * batch_size / (time.perf_counter() - start)


def batching_parameters_file(root, num_batch_threads):
    """The shipped CPU parameters with `num_batch_threads` replaced, written under `root`; returns the path."""
    with open(os.path.join(DEPLOY, "batching_parameters.txt")) as shipped:
        text = re.sub(
            r"num_batch_threads \{ value: \d+ \}", f"num_batch_threads {{ value: {num_batch_threads} }}", shipped.read()
        )
    if BatchingParameters.from_text(text).num_batch_threads != num_batch_threads:
        raise RuntimeError(f"no `num_batch_threads {{ value: N }}` line to replace in {DEPLOY}/batching_parameters.txt")
    path = os.path.join(root, "batching_parameters.txt")
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per run (default 4)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument(
        "--models",
        default="text,image",
        help="models to serve, comma-separated: text (LSTM), image (CNN) (default: both)",
    )
    parser.add_argument(
        "--batch-threads",
        type=int,
        default=max(1, CORES - 1),
        help=f"the batched server's num_batch_threads (default: cores - 1, here {max(1, CORES - 1)})",
    )
    parser.add_argument("--naive-peer", nargs=2, metavar=("PORT", "PATHS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_peer:
        return naive_peer(int(args.naive_peer[0]), json.loads(args.naive_peer[1]))
    models = args.models.split(",")
    if not models or not set(models) <= {"text", "image"}:
        parser.error(f"--models takes text, image or text,image. Received: {args.models!r}")
    if args.batch_threads < 1:
        parser.error(f"--batch-threads must be >= 1. Received: {args.batch_threads}")

    root = tempfile.mkdtemp(prefix="bench-batching-")
    built = _train(root, models)
    common = [
        f"--model_config_file={os.path.join(root, 'models.config')}",
        f"--grpc_max_threads={args.clients}",
        f"--monitoring_config_file={os.path.join(DEPLOY, 'monitoring.config')}",
    ]
    batched = ServerProcess(
        common
        + ["--enable_batching", f"--batching_parameters_file={batching_parameters_file(root, args.batch_threads)}"]
    )
    unbatched = ServerProcess(common)
    naive_process, naive_address = _start_naive_peer(built)

    results = {}  # (model, protocol, side) -> list of LoadReport
    batch_sizes = {}  # (model, protocol, side) -> [(batches, rows)]
    try:
        for name, (_, inputs) in built.items():
            # Not measured: the first seconds of load on a fresh server run slower (TensorFlow meets each batch size
            # for the first time), and would count against whichever protocol the first round sends first.
            for server in (batched, unbatched):
                run_load(server.grpc_address, name, inputs, concurrency=args.clients, seconds=args.seconds)
            for _ in range(args.rounds):  # each round runs every protocol and side: the ratios compare neighbours
                for protocol in ("grpc", "rest"):
                    sides = {"batched": batched, "unbatched": unbatched}
                    if protocol == "grpc" and shutil.which("h2load"):
                        sides.update({"batched h2load": batched, "unbatched h2load": unbatched})
                    if protocol == "rest":
                        sides["naive peer"] = naive_address
                    for side, server in sides.items():
                        if isinstance(server, str):
                            address, pid = server, naive_process.pid
                        else:
                            address, pid = getattr(server, f"{protocol}_address"), server.process.pid
                        before = batched.batch_totals(name) if side.startswith("batched") else None
                        if side.endswith("h2load"):
                            statuses = server.request_counts(name)
                            report = run_h2load(
                                address, name, inputs, concurrency=args.clients, seconds=args.seconds, server_pid=pid
                            )
                            failures = {
                                status: count - statuses.get(status, 0)
                                for status, count in server.request_counts(name).items()
                                if status not in ("OK", "CANCELLED")  # CANCELLED: the streams h2load drops at its end
                                and count > statuses.get(status, 0)
                            }
                            if failures or report.failed:
                                print(f"  {name} {side}: failed requests {failures or report.failed}", flush=True)
                        else:
                            report = run_load(
                                address,
                                name,
                                inputs,
                                protocol=protocol,
                                concurrency=args.clients,
                                seconds=args.seconds,
                                server_pid=pid,
                            )
                        if side.startswith("batched"):
                            after = batched.batch_totals(name)
                            batch_sizes.setdefault((name, protocol, side), []).append(
                                (after[0] - before[0], after[1] - before[1])
                            )
                        if getattr(report, "errors", None):
                            print(f"  {name} {protocol} {side}: failed requests {report.errors}", flush=True)
                        results.setdefault((name, protocol, side), []).append(report)
                        print(
                            f"  {name:<6}{protocol:<6}{side:<17}{report.throughput:>9,.0f} requests/s"
                            f"  client CPU {report.client_cores / CORES:>4.0%}  server CPU {report.server_cores / CORES:>4.0%}",
                            flush=True,
                        )
        memory = {
            "batched": batched.peak_memory_bytes(),
            "unbatched": unbatched.peak_memory_bytes(),
            "naive peer": peak_memory_bytes(naive_process.pid),
        }
    finally:
        batched.stop()
        unbatched.stop()
        naive_process.terminate()
        naive_process.wait()

    print(
        f"\n{args.clients} concurrent clients, single-row keyed requests, {args.rounds} x {args.seconds:g} s per side"
    )
    print(f"client and server CPU: the share of the machine's {CORES} cores each used while measured")
    print(f"batched: serving/deploy/batching_parameters.txt with num_batch_threads {args.batch_threads}")
    print(
        f"{'model':<7}{'protocol':<10}{'side':<20}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'mean batch':>12}"
        f"{'client CPU':>12}{'server CPU':>12}{'req/CPU s':>11}"
    )
    ratios = []
    for name, (_, inputs) in built.items():
        batched_throughput, batched_per_cpu = {}, {}
        for protocol in ("grpc", "rest"):
            throughput = {}
            for side in ("batched", "unbatched", "batched h2load", "unbatched h2load", "naive peer"):
                reports = results.get((name, protocol if side != "naive peer" else "rest", side))
                if not reports:
                    continue
                throughput[side] = statistics.median(r.throughput for r in reports)
                if side.endswith("h2load"):  # h2load gives a mean time, no percentiles
                    latency = f"{'mean ' + format(statistics.mean(r.mean_ms for r in reports), '.1f'):>18}"
                else:
                    latencies = np.concatenate([r.latencies for r in reports])
                    p50, p99 = np.percentile(latencies, [50, 99]) * 1e3 if len(latencies) else (np.nan, np.nan)
                    latency = f"{p50:>9.1f}{p99:>9.1f}"
                mean_batch = ""
                if side.startswith("batched"):
                    batches = sum(b for b, _ in batch_sizes[(name, protocol, side)])
                    rows = sum(r for _, r in batch_sizes[(name, protocol, side)])
                    mean_batch = f"{rows / max(batches, 1):.1f}"
                    if side == "batched":
                        mean = rows / max(batches, 1)
                client_cpu = statistics.median(r.client_cores for r in reports) / CORES
                server_cpu = statistics.median(r.server_cores for r in reports) / CORES
                # requests per second of the server's CPU: on a machine shared with other work, a server with more
                # runnable threads gets a larger share of the cores, and this figure does not depend on that share
                per_cpu = statistics.median(r.throughput / r.server_cores for r in reports if r.server_cores)
                if side != "naive peer" or protocol == "rest":
                    print(
                        f"{name:<7}{protocol:<10}{side:<20}{throughput[side]:>12,.0f}{latency}"
                        f"{mean_batch:>12}{client_cpu:>12.0%}{server_cpu:>12.0%}{per_cpu:>11,.0f}"
                    )
            limit = _in_process_limit(os.path.join(root, "models", name), inputs, max(1, round(mean)), args.seconds)
            print(f"{name:<7}{protocol:<10}{'in-process limit':<20}{limit:>12,.0f}{'':>18}{round(mean):>12}")
            ratios.append((name, protocol, "batched / unbatched", throughput["batched"] / throughput["unbatched"]))
            naive = throughput["naive peer"]
            ratios.append((name, protocol, "batched / naive peer", throughput["batched"] / naive if naive else np.inf))
            ratios.append((name, protocol, "batched / in-process limit", throughput["batched"] / limit))
            batched_throughput[protocol] = throughput["batched"]
            batched_per_cpu[protocol] = statistics.median(
                r.throughput / r.server_cores for r in results[(name, protocol, "batched")] if r.server_cores
            )
            if "batched h2load" in throughput:
                ratio = throughput["batched h2load"] / throughput["unbatched h2load"]
                ratios.append((name, protocol, "batched / unbatched (h2load)", ratio))
        grpc_over_rest = batched_throughput["grpc"] / batched_throughput["rest"]
        ratios.append((name, "both", "batched gRPC / batched REST", grpc_over_rest))
        per_cpu = batched_per_cpu["grpc"] / batched_per_cpu["rest"]
        ratios.append((name, "both", "the same, per server CPU s", per_cpu))

    print(f"\n{'model':<7}{'protocol':<10}{'ratio':<30}{'value':>8}  goal")
    for name, protocol, ratio, value in ratios:
        verdict = "meets" if value >= GOALS[ratio] else "MISSES"
        print(f"{name:<7}{protocol:<10}{ratio:<30}{value:>8.2f}  {verdict} >= {GOALS[ratio]:g}")
    if any(np.isinf(value) for *_, value in ratios):
        print("inf: the naive peer answered no request within the measured window (try more --seconds)")
    print("\nPeak server memory (VmHWM): " + ", ".join(f"{side} {b / 2**20:,.0f} MiB" for side, b in memory.items()))


if __name__ == "__main__":
    sys.exit(main())

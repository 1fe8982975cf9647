"""Peers under the same load: LitServe, BentoML and FastAPI + uvicorn against `recipes-model-server`'s batched REST.

An LSTM text classifier (raw review strings in) is trained briefly on Rotten Tomatoes and exported with
keys; four servers load that one export, each in its own process, one worker each:

- `recipes-model-server --enable_batching` with the peers' settings in TF Serving's parameters: max batch
  64 (`--max-batch`), a batch timeout of 5 ms (LitServe's wait, `--wait-ms`) and one batch thread (one
  worker), answering TF Serving's REST predict API;
- LitServe (`benchmarks/peers/litserve_peer.py`): max batch 64, 5 ms batch timeout, one inference worker,
  one API server;
- BentoML (`benchmarks/peers/bentoml_peer.py`): a batchable API, max batch 64, BentoML's adaptive wait (it
  has no fixed one to set), one worker;
- FastAPI + uvicorn (`benchmarks/peers/fastapi_peer.py`): no batching of its own, one uvicorn worker.

The peers run from their own virtual environment (`make bench-peers` makes `.venv-peers` with pinned
versions; nothing of them goes into the project's). Each loads the SavedModel with TensorFlow and calls the
same keyed signature, counting the batches it runs (`benchmarks/peers/keyed_model.py`).

One load generator (`serving.load.run_load`, through an `HttpTarget` per peer) sends 64 concurrent
single-row keyed requests over keep-alive HTTP/1.1 to each side in turn, in alternating rounds; every
answer is checked to carry its own key. Prints requests/s (median of the rounds), p50/p99 latency (all
rounds), the mean batch each side formed, its peak memory (VmHWM summed over the server's processes: LitServe
and BentoML run the model in a child process), and the ratio of the batched REST server's requests/s to
each side's, with the date, versions and the machine's load average before and after.

Every server binds 127.0.0.1 and all traffic stays on the loopback interface: after start-up the benchmark
lists the listening TCP and UDP sockets of each server's processes (`ss -ltunp`) and stops if any is bound
elsewhere; the table shows where each side listened. Ray Serve is left out: it binds the host's own
address by default.

Usage: python benchmarks/bench_peers.py [--clients 64] [--seconds 4] [--rounds 3] [--peers-python PATH]
"""

import argparse
import datetime
import http.client
import ipaddress
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import recipes  # noqa: E402
import serving  # noqa: E402
from serving.contract import KEY  # noqa: E402
from serving.load import HttpTarget, ServerProcess, free_port, peak_memory_bytes, run_load  # noqa: E402
from serving.tuning import parameters_text  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "benchmarks", "peers")
DEPLOY = os.path.join(os.path.dirname(serving.__file__), "deploy")
BATCHED = "recipes-model-server batched REST"
# Side name -> (peer program, distribution whose version is reported).
PEER_PROGRAMS = {
    "LitServe": ("litserve_peer.py", "litserve"),
    "BentoML": ("bentoml_peer.py", "bentoml"),
    "FastAPI + uvicorn": ("fastapi_peer.py", "fastapi"),
}


def _one_row(columns):
    """The row of a single-row request as a JSON object; the peers that take one row per request get this."""
    lengths = {len(values) for values in columns.values()}
    if lengths != {1}:
        raise ValueError(f"this peer takes one row per request. Received columns of lengths {sorted(lengths)}")
    return {name: values[0] for name, values in columns.items()}


def _rows(columns):
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


TARGETS = {
    "LitServe": HttpTarget("/predict", _one_row, lambda answer: [answer[KEY]]),
    "BentoML": HttpTarget("/predict", lambda columns: {"rows": _rows(columns)}, lambda rows: [r[KEY] for r in rows]),
    "FastAPI + uvicorn": HttpTarget("/predict", _one_row, lambda answer: [answer[KEY]]),
}


def _train(root):
    """Trains and exports the LSTM text model; returns its export folder and serving inputs of 512 rows."""
    from models import text

    recipes.set_seed(0)
    reviews = recipes.datasets.load_rotten_tomatoes()
    texts, labels = reviews.text.to_numpy()[:2000], reviews.label.to_numpy()[:2000]
    lstm = text.lstm_classifier(texts, 2, class_names=["rotten", "fresh"])
    lstm.fit(texts, labels, epochs=1, batch_size=64, verbose=0)
    export_dir = os.path.join(root, "models", "text")
    serving.export_model(lstm, export_dir)
    inputs = serving.to_serving_inputs(lstm, texts[:512])
    with open(os.path.join(root, "models.config"), "w") as config:
        config.write(
            f'model_config_list {{\n  config {{ name: "text" base_path: "{export_dir}" model_platform: "tensorflow" }}\n}}\n'
        )
    return export_dir, {name: [str(v) for v in values] for name, values in inputs.items()}


def process_tree(pid):
    """`pid` and the ids of all its live descendants."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    # the command name (field 2) may hold spaces; the parent id follows the state after it
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grew = {pid}, True
    while grew:
        children = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return tree


def listening_addresses(pids):
    """The local addresses of the TCP and UDP sockets the processes `pids` listen on, from `ss -Hltunp`."""
    lines = subprocess.run(["ss", "-Hltunp"], capture_output=True, text=True, check=True).stdout.splitlines()
    found = set()
    for line in lines:
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            found.add(line.split()[4])
    return sorted(found)


def _is_loopback(address):
    host = address.rsplit(":", 1)[0].strip("[]").split("%")[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # "*" (all addresses) or a name
        return False
    # gRPC listens on "[::ffff:127.0.0.1]", which Python before 3.13 does not call loopback
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback


def check_loopback(side, pid):
    """The addresses the server `pid` listens on; raises `RuntimeError` if any is not on the loopback interface."""
    addresses = listening_addresses(process_tree(pid))
    elsewhere = [address for address in addresses if not _is_loopback(address)]
    if not addresses or elsewhere:
        raise RuntimeError(
            f"{side} must listen on 127.0.0.1 only. Received listening sockets: {addresses or 'none found'}"
        )
    return addresses


def _group_alive(group):
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


class PeerProcess:
    """A peer server program of `benchmarks/peers` in the peers' Python, on a free port of 127.0.0.1, until `stop()`.

    Args:
        side: Key of `PEER_PROGRAMS`.
        python: The peers' virtual environment's Python.
        export_dir: The export to serve.
        root: Folder for the peer's log and batch-count file.
        probe: Columns of one keyed row, sent until the peer answers it with its key.
        max_batch: Largest batch the peer may form (default 64).
        wait_ms: Milliseconds a batching peer waits to fill a batch (default 5).
        timeout: Seconds to wait for the peer to answer the probe (default 300).
    """

    def __init__(self, side, python, export_dir, root, probe, max_batch=64, wait_ms=5.0, timeout=300.0):
        program, _ = PEER_PROGRAMS[side]
        slug = program.removesuffix(".py")
        self.side, self.port = side, free_port()
        self.stats_path = os.path.join(root, f"{slug}.stats")
        self.log_path = os.path.join(root, f"{slug}.log")
        command = [
            os.path.abspath(python),
            os.path.join(PEERS, program),
            f"--export={export_dir}",
            f"--port={self.port}",
        ]
        command += [f"--stats={self.stats_path}", f"--max-batch={max_batch}", f"--wait-ms={wait_ms:g}"]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", DO_NOT_TRACK="1", BENTOML_DO_NOT_TRACK="True")
        env.pop("PYTHONPATH", None)  # the peer imports nothing of this project
        with open(self.log_path, "w") as log:
            # a session of its own, so that `stop()` reaches the worker processes LitServe and BentoML start
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True
            )
        self.address = f"127.0.0.1:{self.port}"
        self._wait_until_answering(probe, time.monotonic() + timeout)

    def _wait_until_answering(self, probe, deadline):
        target = TARGETS[self.side]
        body = json.dumps(target.body(probe))
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                connection.request("POST", target.path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
                if response.status == 200 and target.answer_keys(json.loads(data)) == probe[KEY]:
                    return
                last = f"HTTP {response.status}: {data[:200]!r}"
            except (OSError, http.client.HTTPException) as error:
                last = repr(error)
            finally:
                connection.close()
            time.sleep(0.5)
        self.stop()
        with open(self.log_path) as log:
            tail = log.read()[-3000:]
        raise RuntimeError(f"{self.side} did not answer a keyed request ({last}); its log ends:\n{tail}")

    def batch_totals(self):
        """`(batches, rows)` the peer has run so far, from the file its model rewrites after every batch."""
        with open(self.stats_path) as stats:
            fields = stats.read().split()
        return (int(fields[0]), int(fields[1])) if len(fields) == 2 else (0, 0)

    def stop(self):
        """Terminates the peer and every process of its group, killing what is left after 30 s."""
        group = self.process.pid
        for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _group_alive(group):
                self.process.poll()  # reaps the leader
                time.sleep(0.2)
            if not _group_alive(group):
                break
        self.process.wait()


def peer_versions(python):
    """Versions of the peers' packages and their TensorFlow in the peers' virtual environment."""
    names = [distribution for _, distribution in PEER_PROGRAMS.values()] + ["uvicorn", "tensorflow"]
    code = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    return json.loads(subprocess.run([python, "-c", code, *names], capture_output=True, text=True, check=True).stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per run (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--max-batch", type=int, default=64, help="the batching peers' max batch (default 64)")
    parser.add_argument(
        "--wait-ms",
        type=float,
        default=5.0,
        help="the batch timeout of recipes-model-server and LitServe, in ms (default 5)",
    )
    parser.add_argument(
        "--peers-python",
        default=os.path.join(ROOT, ".venv-peers", "bin", "python"),
        help="Python of the peers' virtual environment (default .venv-peers/bin/python, made by `make bench-peers`)",
    )
    args = parser.parse_args()
    if not os.access(args.peers_python, os.X_OK):
        parser.error(f"--peers-python must be the peers' virtual environment's Python. Received: {args.peers_python}")
    versions = peer_versions(args.peers_python)
    load_before = os.getloadavg()

    root = tempfile.mkdtemp(prefix="bench-peers-")
    export_dir, inputs = _train(root)
    probe = {name: values[:1] for name, values in inputs.items()} | {KEY: ["probe"]}
    parameters_path = os.path.join(root, "batching_parameters.txt")
    with open(parameters_path, "w") as f:  # the peers' settings: max batch, wait, one worker
        f.write(parameters_text(args.max_batch, args.wait_ms, threads=1, clients=args.clients))
    batched = ServerProcess(
        [
            f"--model_config_file={os.path.join(root, 'models.config')}",
            f"--monitoring_config_file={os.path.join(DEPLOY, 'monitoring.config')}",
            "--enable_batching",
            f"--batching_parameters_file={parameters_path}",
        ]
    )
    servers = {BATCHED: batched}
    try:
        for side in PEER_PROGRAMS:
            print(f"starting {side} ...", flush=True)
            servers[side] = PeerProcess(side, args.peers_python, export_dir, root, probe, args.max_batch, args.wait_ms)
        pids = {side: server.process.pid for side, server in servers.items()}
        listening = {side: check_loopback(side, pid) for side, pid in pids.items()}

        results, batch_counts = {}, {}  # side -> [LoadReport], side -> [(batches, rows)]
        for round_number in range(args.rounds):
            for side, server in servers.items():
                before = server.batch_totals("text") if side == BATCHED else server.batch_totals()
                address = server.rest_address if side == BATCHED else server.address
                report = run_load(
                    address,
                    "text",
                    inputs,
                    protocol="rest",
                    concurrency=args.clients,
                    seconds=args.seconds,
                    http_target=TARGETS.get(side),
                )
                after = server.batch_totals("text") if side == BATCHED else server.batch_totals()
                batch_counts.setdefault(side, []).append((after[0] - before[0], after[1] - before[1]))
                results.setdefault(side, []).append(report)
                failed = f"  failed: {report.errors}" if report.errors else ""
                print(
                    f"  round {round_number + 1}  {side:<34}{report.throughput:>8,.0f} requests/s{failed}", flush=True
                )
        memory = {side: sum(peak_memory_bytes(p) for p in process_tree(pid)) for side, pid in pids.items()}
    finally:
        for server in servers.values():
            server.stop()
    load_after = os.getloadavg()

    print(
        f"\n{datetime.date.today().isoformat()}, {platform.node()}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average (1, 5, 15 min) before "
        f"{', '.join(f'{x:.2f}' for x in load_before)}, after {', '.join(f'{x:.2f}' for x in load_after)}"
    )
    print(
        f"keras-recipes {recipes.__version__} with TensorFlow "
        f"{tf.__version__}; peers: " + ", ".join(f"{name} {version}" for name, version in versions.items())
    )
    print(
        f"LSTM text export, {args.clients} concurrent clients, single-row keyed requests, {args.rounds} x "
        f"{args.seconds:g} s per side in alternating rounds; batching sides: max batch {args.max_batch}; "
        f"recipes-model-server and LitServe wait {args.wait_ms:g} ms, one batch thread or worker"
    )
    header = f"{'side':<34}{'requests/s':>11}{'p50 ms':>8}{'p99 ms':>8}{'mean batch':>11}{'peak MiB':>10}"
    print(header + f"{'batched REST / side':>21}  listening")
    reference = statistics.median(r.throughput for r in results[BATCHED])
    for side, reports in results.items():
        throughput = statistics.median(r.throughput for r in reports)
        latencies = np.concatenate([r.latencies for r in reports])
        p50, p99 = np.percentile(latencies, [50, 99]) * 1e3 if len(latencies) else (np.nan, np.nan)
        batches = sum(b for b, _ in batch_counts[side])
        mean_batch = sum(r for _, r in batch_counts[side]) / batches if batches else float("nan")
        ratio = reference / throughput if throughput else float("inf")
        print(
            f"{side:<34}{throughput:>11,.0f}{p50:>8.1f}{p99:>8.1f}{mean_batch:>11.1f}{memory[side] / 2**20:>10,.0f}"
            f"{ratio:>21.2f}  {' '.join(listening[side])}"
        )
    answered = sum(r.requests for reports in results.values() for r in reports)
    errors = {}
    for reports in results.values():
        for report in reports:
            for error, count in report.errors.items():
                errors[error] = errors.get(error, 0) + count
    print(f"{answered:,} answers in the measured windows, each with its own key; failed requests: {errors or 'none'}")


if __name__ == "__main__":
    sys.exit(main())

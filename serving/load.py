"""Concurrent keyed load on a model server: throughput, latency, and a check that every answer has its key.

Used by `recipes tune-batching`, `benchmarks/bench_batching.py` and `benchmarks/bench_peers.py` (which drives
other serving frameworks' JSON endpoints through an `HttpTarget`). Each simulated
client is a thread with its own connection (a keep-alive HTTP/1.1
connection for REST, one shared gRPC channel for gRPC), sending one request
after the other, each with rows whose keys are unique to that client. All
requests are built before the clock starts, so the load generator spends
its time waiting on the server, not encoding.

The standard tools (`ab`, `wrk`, `ghz`) are not installed on our machines
and do not check that each answer carries its own keys; hence this module.

Example:

```python
from serving.load import run_load

report = run_load("127.0.0.1:8500", "text", {"text": ["A gripping thriller.", "Dull."]}, protocol="grpc")
print(report.throughput, report.p50_ms, report.p99_ms)
```
"""

import dataclasses
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable

import numpy as np

from recipes._common import check_int, check_one_of
from serving.client import ClientError, GrpcClient, RestClient
from serving.contract import KEY, KEYED_SIGNATURE

PROTOCOLS = ("grpc", "rest")


@dataclasses.dataclass
class LoadReport:
    """What one load run measured.

    Attributes:
        protocol: `"grpc"` or `"rest"`.
        concurrency: Clients sending at once.
        rows_per_request: Rows in each request.
        seconds: Measured wall time (after the warm-up).
        latencies: Seconds of each measured request that succeeded.
        errors: Failed requests by status (`"503"`, `"UNAVAILABLE"`, `"wrong keys"`, ...).
    """

    protocol: str
    concurrency: int
    rows_per_request: int
    seconds: float
    latencies: np.ndarray
    errors: dict

    @property
    def requests(self):
        return len(self.latencies)

    @property
    def throughput(self):
        """Successful requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self):
        return float(np.percentile(self.latencies, 50) * 1e3) if self.requests else float("nan")

    @property
    def p99_ms(self):
        return float(np.percentile(self.latencies, 99) * 1e3) if self.requests else float("nan")


@dataclasses.dataclass(frozen=True)
class HttpTarget:
    """A JSON predict endpoint over HTTP: where requests go, what they carry, and where an answer's keys are.

    Attributes:
        path: URL path each request is POSTed to, e.g. `"/predict"`.
        body: Function from one request's columns (a dict from input name to equal-length lists, the keys
            under `serving.contract.KEY`) to its JSON-serialisable body.
        answer_keys: Function from a parsed JSON answer to the keys it carries, in row order.
    """

    path: str
    body: Callable[[dict], object]
    answer_keys: Callable[[object], list]


def tf_serving_rest_target(model, signature_name=KEYED_SIGNATURE):
    """The `HttpTarget` of TF Serving's REST predict API: `/v1/models/<model>:predict`, columnar `inputs`."""
    client = RestClient(signature_name=signature_name)
    return HttpTarget(f"/v1/models/{model}:predict", client.predict_body, lambda answer: answer["outputs"][KEY])


def free_port():
    """A TCP port of 127.0.0.1 free right now (`--rest_api_port=0` disables REST, as in TF Serving)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def peak_memory_bytes(pid):
    """A process's peak resident memory (Linux `VmHWM`)."""
    with open(f"/proc/{pid}/status") as status:
        kib = re.search(r"VmHWM:\s+(\d+) kB", status.read())
    return int(kib.group(1)) * 1024


class ServerProcess:
    """`recipes-model-server` in a process of its own, on free ports of 127.0.0.1, until `stop()`.

    A load test needs the server out of its own process: the clients' threads
    would otherwise share the server's interpreter lock and its memory figure.

    Args:
        flags: The server's flags besides the ports, e.g.
            `["--model_config_file=models.config", "--enable_batching"]`.
        timeout: Seconds to wait for the server to be up (default 120).
    """

    def __init__(self, flags, timeout=120.0):
        rest_port = free_port()
        executable = os.path.join(os.path.dirname(sys.executable), "recipes-model-server")
        command = [executable, "--port=0", f"--rest_api_port={rest_port}", *flags]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
        self.log = []
        deadline = time.monotonic() + timeout
        grpc_port = None
        for line in self.process.stderr:
            self.log.append(line)
            found = re.search(r"Running gRPC ModelServer at [^:]+:(\d+)", line)
            grpc_port = int(found.group(1)) if found else grpc_port
            if "Exporting HTTP/REST API" in line or time.monotonic() > deadline:
                break
        if grpc_port is None or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("recipes-model-server did not start:\n" + "".join(self.log[-20:]))
        threading.Thread(target=lambda: self.log.extend(self.process.stderr), daemon=True).start()
        self.grpc_address = f"127.0.0.1:{grpc_port}"
        self.rest_address = f"127.0.0.1:{rest_port}"

    def peak_memory_bytes(self):
        """The server's peak resident memory (Linux `VmHWM`)."""
        return peak_memory_bytes(self.process.pid)

    def metrics(self, path="/monitoring/prometheus/metrics"):
        """The Prometheus text the server exposes (needs `--monitoring_config_file`)."""
        connection = http.client.HTTPConnection(*self.rest_address.split(":"), timeout=30)
        try:
            connection.request("GET", path)
            return connection.getresponse().read().decode("utf-8")
        finally:
            connection.close()

    def batch_totals(self, model):
        """`(batches, rows)` the server has run for `model` so far, from its batch size histogram."""
        totals = {}
        for suffix in ("count", "sum"):
            found = re.search(
                rf'^:tensorflow:serving:batching_session:batch_size_{suffix}\{{model_name="{re.escape(model)}"\}} (\S+)$',
                self.metrics(),
                re.MULTILINE,
            )
            totals[suffix] = float(found.group(1)) if found else 0.0
        return int(totals["count"]), int(totals["sum"])

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _rest_sender(address, target, bodies, timeout):
    parsed = urllib.parse.urlsplit(address if "//" in address else f"http://{address}")
    path = target.path
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    headers = {"Content-Type": "application/json"}

    def send(i):
        body, keys = bodies[i]
        try:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()  # the next request opens a new connection
            raise
        if response.status != 200:
            return str(response.status)
        try:
            answered = target.answer_keys(json.loads(data))
        except (ValueError, LookupError, TypeError):  # not JSON, or no keys where the target says they are
            return "no keys"
        return None if answered == keys else "wrong keys"

    return send, connection.close


def _grpc_sender(stub, requests, timeout):
    import grpc

    def send(i):
        request, keys = requests[i]
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            return error.code().name
        answered = [k.decode("utf-8") for k in response.outputs[KEY].string_val]
        return None if answered == keys else "wrong keys"

    return send, lambda: None


def run_load(
    address,
    model,
    x,
    *,
    protocol="grpc",
    concurrency=64,
    rows_per_request=1,
    seconds=5.0,
    warmup_seconds=1.0,
    signature_name=KEYED_SIGNATURE,
    timeout=30.0,
    http_target=None,
):
    """Sends keyed requests from `concurrency` clients for `seconds` and reports what came back.

    Args:
        address: `"host:port"` of the gRPC port (protocol `"grpc"`) or of the REST port.
        model: Model name.
        x: Dict from signature input name to a list of raw values, one per
            row; requests cycle through these rows.
        protocol: `"grpc"` (default) or `"rest"`.
        concurrency: Clients sending at once, each one request at a time (default 64).
        rows_per_request: Rows in each request (default 1).
        seconds: Measured time (default 5), after `warmup_seconds` (default 1) not measured.
        signature_name: Defaults to `"serving_default"`, a keyed signature of `serving.export_model`.
        timeout: Seconds per request (default 30).
        http_target: For protocol `"rest"`, the `HttpTarget` to send to; defaults to TF Serving's REST
            predict API of `model` and `signature_name` (`tf_serving_rest_target`).

    Returns:
        A `LoadReport`.
    """
    protocol = check_one_of("protocol", protocol, PROTOCOLS)
    concurrency, rows_per_request = (
        check_int("concurrency", concurrency),
        check_int("rows_per_request", rows_per_request),
    )
    if not isinstance(x, dict) or not x or KEY in x:
        raise ValueError(f"`x` must be a non-empty dict of input columns without {KEY!r}. Received: x={x!r:.80}")
    rows = {len(values) for values in x.values()}
    if len(rows) != 1:
        raise ValueError(f"every input of `x` must have the same number of rows. Received lengths: {sorted(rows)}")
    rows = rows.pop()

    requests_per_client = max(1, min(64, rows // rows_per_request))
    grpc_client = GrpcClient(address, model, signature_name=signature_name) if protocol == "grpc" else None
    if http_target is not None and protocol != "rest":
        raise ValueError(f"`http_target` is for protocol 'rest' only. Received: protocol={protocol!r}")
    if protocol == "rest" and http_target is None:
        http_target = tf_serving_rest_target(model, signature_name)
    input_dtypes = {}
    if grpc_client is not None:
        try:
            input_dtypes = grpc_client.input_dtypes()
        except ClientError:  # no such model or version: the requests go as given, and their refusals are counted
            pass
    senders, closers = [], []
    for client in range(concurrency):
        prepared = []
        for j in range(requests_per_client):
            take = [(client * requests_per_client + j) * rows_per_request + i for i in range(rows_per_request)]
            columns = {name: [values[t % rows] for t in take] for name, values in x.items()}
            keys = [f"c{client}-r{j}-{i}" for i in range(rows_per_request)]
            columns[KEY] = keys
            if grpc_client is not None:
                prepared.append((grpc_client.predict_request(columns, input_dtypes), keys))
            else:
                prepared.append((json.dumps(http_target.body(columns)).encode("utf-8"), keys))
        if grpc_client is not None:
            send, close = _grpc_sender(grpc_client.stub, prepared, timeout)
        else:
            send, close = _rest_sender(address, http_target, prepared, timeout)
        senders.append(send)
        closers.append(close)

    start_at = time.perf_counter() + 0.2  # every thread is up before the first request
    measure_from = start_at + warmup_seconds
    stop_at = measure_from + seconds
    latencies = [[] for _ in range(concurrency)]
    errors = [{} for _ in range(concurrency)]

    def client_loop(c):
        send, i = senders[c], 0
        while time.perf_counter() < start_at:
            time.sleep(0.001)
        while True:
            begin = time.perf_counter()
            if begin >= stop_at:
                return
            try:
                error = send(i % requests_per_client)
            except (OSError, http.client.HTTPException) as failure:
                error = type(failure).__name__
            end = time.perf_counter()
            if begin >= measure_from:
                if error is None:
                    latencies[c].append(end - begin)
                else:
                    errors[c][error] = errors[c].get(error, 0) + 1
            i += 1

    threads = [threading.Thread(target=client_loop, args=(c,), daemon=True) for c in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for close in closers:
        close()
    if grpc_client is not None:
        grpc_client.close()
    merged = {}
    for per_client in errors:
        for error, count in per_client.items():
            merged[error] = merged.get(error, 0) + count
    return LoadReport(protocol, concurrency, rows_per_request, seconds, np.asarray(sum(latencies, [])), merged)

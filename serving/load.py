"""Concurrent keyed load on a model server: throughput, latency, and a check that every answer has its key.

Used by `recipes tune-batching`, `benchmarks/bench_batching.py` and `benchmarks/bench_peers.py` (which
drives other serving frameworks' JSON endpoints through an `HttpTarget`). Each simulated
client sends one request after the other, each with rows whose keys are
unique to that client: over REST a thread with its own keep-alive HTTP/1.1
connection, over gRPC a coroutine of grpcio's asyncio API on one shared
channel (64 threads blocking in grpcio's synchronous stub cost the client
about as much CPU per request as the server spends). All requests are built
before the clock starts, so the load generator spends its time waiting on
the server, not encoding; the report gives the CPU time the client (and,
given its process id, the server) used in the measured window, to show
which side was the bottleneck.

The standard tools (`ab`, `wrk`, `ghz`) are not installed on our machines
and do not check that each answer carries its own keys; hence this module.

Example:

```python
from serving.load import run_load

report = run_load("127.0.0.1:8500", "text", {"text": ["A gripping thriller.", "Dull."]}, protocol="grpc")
print(report.throughput, report.p50_ms, report.p99_ms)
```
"""

import asyncio
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
        client_cpu_seconds: CPU time the load generator's process used in the measured window.
        server_cpu_seconds: CPU time the server's process used in the measured window
            (`None` unless `run_load` was given its process id).
    """

    protocol: str
    concurrency: int
    rows_per_request: int
    seconds: float
    latencies: np.ndarray
    errors: dict
    client_cpu_seconds: float = 0.0
    server_cpu_seconds: float = None

    @property
    def requests(self):
        return len(self.latencies)

    @property
    def throughput(self):
        """Successful requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def client_cores(self):
        """Cores the load generator kept busy on average (CPU seconds per second)."""
        return self.client_cpu_seconds / self.seconds if self.seconds else 0.0

    @property
    def server_cores(self):
        """Cores the server kept busy on average, or `None` when its process was not measured."""
        return self.server_cpu_seconds / self.seconds if self.seconds and self.server_cpu_seconds is not None else None

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


def cpu_seconds(pid):
    """CPU time (user and system, all threads) a process has used so far (Linux `/proc/<pid>/stat`)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


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

    def cpu_seconds(self):
        """CPU time the server's process has used so far."""
        return cpu_seconds(self.process.pid)

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

    def request_counts(self, model):
        """`{status: requests}` the server has answered for `model` so far, from its request counter."""
        found = re.findall(
            rf'^:tensorflow:serving:request_count(?:_total)?\{{model_name="{re.escape(model)}",status="(\w+)"\}} (\S+)$',
            self.metrics(),
            re.MULTILINE,
        )
        return {status: int(float(count)) for status, count in found}

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


async def _grpc_clients(address, requests, timeout, window):
    """Runs one coroutine per client on one asyncio channel; returns `(latencies, errors)` per client."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    start_at, measure_from, stop_at = window.start_at, window.measure_from, window.stop_at
    latencies = [[] for _ in requests]
    errors = [{} for _ in requests]
    options = [("grpc.max_receive_message_length", 2**31 - 1), ("grpc.max_send_message_length", 2**31 - 1)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        predict = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict

        async def client(c):
            own, i = requests[c], 0
            while True:
                begin = time.perf_counter()
                if begin >= stop_at:
                    return
                request, keys = own[i % len(own)]
                try:
                    response = await predict(request, timeout=timeout)
                    answered = [k.decode("utf-8") for k in response.outputs[KEY].string_val]
                    error = None if answered == keys else "wrong keys"
                except grpc.RpcError as failure:
                    error = failure.code().name
                end = time.perf_counter()
                if begin >= measure_from:
                    if error is None:
                        latencies[c].append(end - begin)
                    else:
                        errors[c][error] = errors[c].get(error, 0) + 1
                i += 1

        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        await asyncio.gather(window.measure_async(), *(client(c) for c in range(len(requests))))
    return latencies, errors


class _Window:
    """The measured window, and the CPU time the client and the server used in it."""

    def __init__(self, warmup_seconds, seconds, server_pid, start_in=0.2):
        self.start_at = time.perf_counter() + start_in  # by default every client is up before the first request
        self.measure_from = self.start_at + warmup_seconds
        self.stop_at = self.measure_from + seconds
        self.server_pid = server_pid
        self.client_cpu_seconds, self.server_cpu_seconds = 0.0, None

    def _cpu(self):
        # process_time: every thread of this process, grpcio's own threads included
        return time.process_time(), cpu_seconds(self.server_pid) if self.server_pid else None

    def _measured(self, before, after):
        self.client_cpu_seconds = after[0] - before[0]
        self.server_cpu_seconds = after[1] - before[1] if self.server_pid else None

    def measure(self):
        """Waits through the window (in a thread of its own), taking the CPU times at its two ends."""
        time.sleep(max(0.0, self.measure_from - time.perf_counter()))
        before = self._cpu()
        time.sleep(max(0.0, self.stop_at - time.perf_counter()))
        self._measured(before, self._cpu())

    async def measure_async(self):
        """`measure` as a coroutine, beside the clients' coroutines."""
        await asyncio.sleep(max(0.0, self.measure_from - time.perf_counter()))
        before = self._cpu()
        await asyncio.sleep(max(0.0, self.stop_at - time.perf_counter()))
        self._measured(before, self._cpu())


def _rest_clients(senders, requests_per_client, window):
    """Runs one thread per client (`senders`); returns `(latencies, errors)` per client."""
    latencies = [[] for _ in senders]
    errors = [{} for _ in senders]

    def client_loop(c):
        send, i = senders[c], 0
        while time.perf_counter() < window.start_at:
            time.sleep(0.001)
        while True:
            begin = time.perf_counter()
            if begin >= window.stop_at:
                return
            try:
                error = send(i % requests_per_client)
            except (OSError, http.client.HTTPException) as failure:
                error = type(failure).__name__
            end = time.perf_counter()
            if begin >= window.measure_from:
                if error is None:
                    latencies[c].append(end - begin)
                else:
                    errors[c][error] = errors[c].get(error, 0) + 1
            i += 1

    threads = [threading.Thread(target=client_loop, args=(c,), daemon=True) for c in range(len(senders))]
    for thread in threads:
        thread.start()
    window.measure()
    for thread in threads:
        thread.join()
    return latencies, errors


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
    server_pid=None,
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
        server_pid: Optional process id of the server, whose CPU time in the
            measured window the report then gives too.

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
    requests, senders, closers = [], [], []  # gRPC: each client's requests; REST: each client's sender
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
            requests.append(prepared)
        else:
            send, close = _rest_sender(address, http_target, prepared, timeout)
            senders.append(send)
            closers.append(close)
    if grpc_client is not None:
        grpc_client.close()

    window = _Window(warmup_seconds, seconds, server_pid)
    if protocol == "grpc":
        latencies, errors = asyncio.run(_grpc_clients(address, requests, timeout, window))
    else:
        latencies, errors = _rest_clients(senders, requests_per_client, window)
        for close in closers:
            close()
    merged = {}
    for per_client in errors:
        for error, count in per_client.items():
            merged[error] = merged.get(error, 0) + count
    return LoadReport(
        protocol,
        concurrency,
        rows_per_request,
        seconds,
        np.asarray([latency for per_client in latencies for latency in per_client]),
        merged,
        window.client_cpu_seconds,
        window.server_cpu_seconds,
    )


@dataclasses.dataclass
class H2loadReport:
    """What one run of h2load measured.

    Attributes:
        concurrency: Streams h2load kept open at once, on one HTTP/2 connection.
        seconds: Measured wall time (after the warm-up).
        requests: Requests answered with HTTP status 200 in the measured time.
        failed: Requests h2load counted as failed, errored or timed out, or answered with another status.
        mean_ms: Mean time of a request.
        client_cores: Cores h2load kept busy on average over its whole run (warm-up included).
        server_cpu_seconds: CPU time the server's process used in the measured window, or `None`.
    """

    concurrency: int
    seconds: float
    requests: int
    failed: int
    mean_ms: float
    client_cores: float
    server_cpu_seconds: float = None

    @property
    def throughput(self):
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_cores(self):
        return self.server_cpu_seconds / self.seconds if self.seconds and self.server_cpu_seconds is not None else None


def grpc_frame(message):
    """A protobuf message as gRPC sends it over HTTP/2: not compressed, its 4-byte big-endian length, its bytes."""
    data = message.SerializeToString()
    return b"\0" + len(data).to_bytes(4, "big") + data


def run_h2load(
    address,
    model,
    x,
    *,
    concurrency=64,
    seconds=5.0,
    warmup_seconds=1.0,
    signature_name=KEYED_SIGNATURE,
    server_pid=None,
):
    """gRPC Predict load from nghttp2's native `h2load` (Debian's nghttp2-client): a client that costs less CPU.

    h2load sends one request body over and over and reads HTTP statuses only:
    it cannot check keys nor gRPC's status, which travels in trailers. So
    the one keyed request (the first row of `x`) is first sent once here and
    its answer checked; count the server's failures from its metrics
    (`:tensorflow:serving:request_count` by status) to be sure none failed.

    Args:
        address: `"host:port"` of the gRPC port.
        model: Model name.
        x: Dict from signature input name to a list of raw values; the first row is sent.
        concurrency: Streams open at once on one HTTP/2 connection (default 64),
            as `run_load`'s clients share one channel.
        seconds: Measured time (default 5), after `warmup_seconds` (default 1).
        signature_name: Defaults to `"serving_default"`.
        server_pid: Optional process id of the server, whose CPU time in the measured window is reported.

    Returns:
        An `H2loadReport`.

    Raises:
        FileNotFoundError: without h2load (`apt-get install nghttp2-client`).
        ClientError: when the request is refused or answered with other keys.
    """
    import resource
    import shutil
    import tempfile

    import grpc

    if shutil.which("h2load") is None:
        raise FileNotFoundError("h2load is not installed; it is in Debian's nghttp2-client package")
    client = GrpcClient(address, model, signature_name=signature_name)
    try:
        columns = {name: values[:1] for name, values in x.items()}
        columns[KEY] = ["h2load-0"]
        request = client.predict_request(columns)
        try:
            response = client.stub.Predict(request, timeout=30)
        except grpc.RpcError as error:
            raise ClientError(error.code().name, error.details()) from None
        if list(response.outputs[KEY].string_val) != [b"h2load-0"]:
            raise ClientError("wrong keys", f"the request keyed h2load-0 was answered {response.outputs[KEY]}")
    finally:
        client.close()
    with tempfile.NamedTemporaryFile(suffix=".grpc") as body:
        body.write(grpc_frame(request))
        body.flush()
        command = [
            "h2load",
            f"--duration={round(seconds * 1000)}ms",  # an integer and a unit
            f"--warm-up-time={round(warmup_seconds * 1000)}ms",
            "--clients=1",
            f"--max-concurrent-streams={concurrency}",
            "--header=content-type: application/grpc",
            "--header=te: trailers",
            f"--data={body.name}",
            f"http://{address}/tensorflow.serving.PredictionService/Predict",
        ]
        window = _Window(warmup_seconds, seconds, server_pid, start_in=0)  # h2load's warm-up starts at once
        measuring = threading.Thread(target=window.measure, daemon=True)
        before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        measuring.start()
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        elapsed, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
        measuring.join()
    counts = re.search(r"requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded", output)
    status = re.search(r"status codes: (\d+) 2xx", output)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b", output)  # min, max, mean
    if not (counts and status and mean):
        raise RuntimeError(f"cannot read h2load's report:\n{output}")
    done, ok = int(counts.group(1)), int(status.group(1))
    mean_ms = float(mean.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[mean.group(2)]
    client_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return H2loadReport(concurrency, seconds, ok, done - ok, mean_ms, client_cpu / elapsed, window.server_cpu_seconds)

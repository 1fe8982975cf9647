"""Prometheus metrics under TF Serving's names, enabled by `--monitoring_config_file`.

TF Serving's MonitoringConfig (`prometheus_config { enable: true path: "..." }`)
turns on a Prometheus text endpoint on the REST port, by default
`/monitoring/prometheus/metrics`. The metric names are TF Serving's:
`:tensorflow:serving:request_count` (by model and status),
`:tensorflow:serving:request_latency` (microseconds, by model, API and entry
point) and `:tensorflow:serving:batching_session:batch_size` (rows per batch
when batching is on).
"""

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

DEFAULT_PATH = "/monitoring/prometheus/metrics"
_LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))  # TF Serving's exponential buckets: 10 us x 1.8^i
_BATCH_BUCKETS = tuple(2**i for i in range(15))


def read_monitoring_config(text):
    """The metrics path a MonitoringConfig enables, or `None` when it leaves Prometheus off."""
    block = re.search(r"prometheus_config\s*\{([^}]*)\}", text)
    if block is None:
        if re.sub(r"#.*", "", text).strip():
            raise ValueError("expected a MonitoringConfig with a prometheus_config { ... } block")
        return None
    body = block.group(1)
    enable = re.search(r"\benable\s*:\s*(\w+)", body)
    if enable and enable.group(1) not in ("true", "false"):
        raise ValueError(f"prometheus_config.enable must be true or false; received {enable.group(1)}")
    if not enable or enable.group(1) != "true":
        return None
    path = re.search(r'\bpath\s*:\s*"([^"]*)"', body)
    path = path.group(1) if path and path.group(1) else DEFAULT_PATH
    if not path.startswith("/"):
        raise ValueError(f"prometheus_config.path must start with '/'; received {path!r}")
    return path


class Metrics:
    """The server's metrics, in a registry of their own (several servers may share a process in tests)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        self.request_count = Counter(
            ":tensorflow:serving:request_count",
            "The total number of requests.",
            ["model_name", "status"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"],
            buckets=_LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            ":tensorflow:serving:batching_session:batch_size",
            "Tracks the batch size distribution on processing.",
            ["model_name"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )

    def observe_request(self, model_name, api, entrypoint, status, seconds):
        self.request_count.labels(model_name=model_name, status=status).inc()
        self.request_latency.labels(model_name=model_name, API=api, entrypoint=entrypoint).observe(seconds * 1e6)

    def observe_batch(self, model_name, rows):
        self.batch_size.labels(model_name=model_name).observe(rows)

    def render(self):
        return generate_latest(self.registry)

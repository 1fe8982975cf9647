"""`recipes-model-server`: a local model server with TF Serving's flags, REST API and gRPC API.

The real `tensorflow_model_server` ships only as a Docker image or from
Google's apt repository; this server stands in for it in development, demos
and tests, so that clients and configs written against it work unchanged
against TF Serving. It serves TF2 and TF1 SavedModels the way TF Serving
does (see `serving.servable`).

Example:

    recipes-model-server --port=8500 --rest_api_port=8501 \\
        --model_name=text --model_base_path=$PWD/exports/text

    curl -d '{"instances": [{"text": "a gripping thriller", "key": "r1"}]}' \\
        localhost:8501/v1/models/text:predict
"""

import argparse
import logging
import os
import signal
import sys
import threading

from google.protobuf import text_format

log = logging.getLogger("recipes-model-server")


def _bool(value):
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false; received {value!r}")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="recipes-model-server",
        description="Serve SavedModels through TF Serving's REST and gRPC APIs (same flags, same defaults).",
        epilog=__doc__.split("Example:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    flag = parser.add_argument
    flag("--port", type=int, default=8500, help="gRPC port (default: 8500; 0 picks a free one)")
    flag("--rest_api_port", type=int, default=0, help="REST port; 0, the default, disables REST, as in TF Serving")
    flag("--model_name", default="default", help="name of the single model (default: default)")
    flag("--model_base_path", default="", help="folder of the single model's numeric version folders")
    flag("--model_config_file", default="", help="text-format ModelServerConfig; replaces the two flags above")
    flag("--model_config_file_poll_wait_seconds", type=int, default=0,
         help="seconds between re-reads of --model_config_file; 0 (default) reads it once")  # fmt: skip
    flag("--file_system_poll_wait_seconds", type=int, default=1,
         help="seconds between scans for new versions (default: 1); 0 scans once")  # fmt: skip
    flag("--grpc_max_threads", type=int, default=4 * (os.cpu_count() or 1),
         help="threads answering gRPC calls; more calls wait (default: 4 x cores, as TF Serving)")  # fmt: skip
    flag("--rest_api_timeout_in_ms", type=int, default=30000,
         help="REST requests whose model run takes longer fail with 504 (default: 30000)")  # fmt: skip
    flag("--enable_model_warmup", type=_bool, nargs="?", const=True, default=True,
         help="replay assets.extra/tf_serving_warmup_requests on load (default: true)")  # fmt: skip
    flag("--enable_batching", type=_bool, nargs="?", const=True, default=False,
         help="batch requests dynamically (default: false)")  # fmt: skip
    flag("--enable_signature_method_name_check", type=_bool, nargs="?", const=True, default=False,
         help="Classify, Regress and MultiInference require classify/regress method names (default: false)")  # fmt: skip
    flag("--enable_serialization_as_tensor_content", type=_bool, nargs="?", const=True, default=False,
         help="gRPC Predict answers in tensor_content instead of float_val, string_val, ... (default: false)")  # fmt: skip
    flag("--batching_parameters_file", default="",
         help="text-format BatchingParameters; TF Serving's defaults without it")  # fmt: skip
    flag("--monitoring_config_file", default="",
         help="text-format MonitoringConfig; prometheus_config { enable: true } serves metrics on the REST port")  # fmt: skip
    flag("--bind_address", default="127.0.0.1",
         help="address to listen on (ours, not TF Serving's: it listens on all; default: 127.0.0.1)")  # fmt: skip
    flag("--rest_api_max_body_bytes", type=int, default=64 * 1024 * 1024,
         help="largest REST request body (ours; default: 64 MiB)")  # fmt: skip
    return parser


def read_model_config(path):
    """The `ModelConfig`s of a text-format `ModelServerConfig` file."""
    from tensorflow_serving.config import model_server_config_pb2

    from serving.manager import ModelConfig

    with open(path) as f:
        text = f.read()
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ValueError(f"{path}: not a text-format ModelServerConfig: {error}") from None
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{path}: needs a model_config_list")
    return [ModelConfig.from_proto(c) for c in config.model_config_list.config]


class ModelServer:
    """The running server: model manager, REST and gRPC endpoints; `stop()` shuts all down.

    Args:
        configs: `serving.manager.ModelConfig`s to serve.
        grpc_port: gRPC port, 0 for a free one, `None` for no gRPC.
        rest_port: REST port, 0 for a free one, `None` for no REST.
        host: Address to bind, defaults to "127.0.0.1".
        poll_seconds: `--file_system_poll_wait_seconds`.
        enable_warmup: `--enable_model_warmup`.
        max_body_bytes: REST request body limit.
        rest_timeout_ms: `--rest_api_timeout_in_ms`.
        batching: Optional `serving.batching.BatchingParameters` (`--enable_batching`).
        grpc_max_threads: `--grpc_max_threads`; requests beyond it wait for a
            thread, so batching sees at most this many gRPC requests at once.
        metrics_path: Optional path of the Prometheus endpoint on the REST
            port (`--monitoring_config_file`); `None` turns metrics off.
        enable_signature_method_name_check: `--enable_signature_method_name_check`.
        enable_serialization_as_tensor_content: `--enable_serialization_as_tensor_content`.
    """

    def __init__(self, configs, grpc_port=8500, rest_port=8501, host="127.0.0.1", poll_seconds=1,
                 enable_warmup=True, max_body_bytes=64 * 1024 * 1024, rest_timeout_ms=30_000,
                 batching=None, metrics_path=None, grpc_max_threads=4 * (os.cpu_count() or 1),
                 enable_signature_method_name_check=False, enable_serialization_as_tensor_content=False):  # fmt: skip
        from serving.batching import BatchScheduler
        from serving.grpc_api import serve_grpc
        from serving.manager import ModelManager
        from serving.metrics import Metrics
        from serving.rest import RestServer
        from serving.service import Service

        self.manager = ModelManager(configs, poll_seconds=poll_seconds, enable_warmup=enable_warmup).start()
        self.metrics = Metrics() if metrics_path else None
        self.scheduler = BatchScheduler(batching, self.metrics) if batching is not None else None
        self.service = Service(self.manager, self.scheduler, enable_signature_method_name_check)
        self.grpc_server = self.rest_server = None
        self.grpc_port = self.rest_port = None
        if grpc_port is not None:
            self.grpc_server, self.grpc_port = serve_grpc(
                f"{host}:{grpc_port}", self.service, self.reload_config, grpc_max_threads, metrics=self.metrics,
                enable_serialization_as_tensor_content=enable_serialization_as_tensor_content,
            )
            log.info("Running gRPC ModelServer at %s:%d ...", host, self.grpc_port)
        if rest_port is not None:
            self.rest_server = RestServer(
                (host, rest_port), self.service, max_body_bytes, rest_timeout_ms, self.metrics, metrics_path
            )
            self.rest_port = self.rest_server.server_address[1]
            threading.Thread(target=self.rest_server.serve_forever, name="rest", daemon=True).start()
            log.info("Exporting HTTP/REST API at:%s:%d ...", host, self.rest_port)

    def reload_config(self, config):
        """`HandleReloadConfigRequest`: a `ModelServerConfig` proto replaces the served models."""
        from serving.errors import ServingError
        from serving.manager import ModelConfig

        if config.WhichOneof("config") != "model_config_list":
            raise ServingError("INVALID_ARGUMENT", "the config needs a model_config_list")
        try:
            configs = [ModelConfig.from_proto(c) for c in config.model_config_list.config]
        except ValueError as error:
            raise ServingError("INVALID_ARGUMENT", str(error)) from None
        self.manager.reload(configs)

    def stop(self):
        if self.rest_server:
            self.rest_server.shutdown()
            self.rest_server.server_close()
        if self.grpc_server:
            self.grpc_server.stop(grace=2).wait()
        if self.scheduler:
            self.scheduler.stop()
        self.manager.stop()


def main(argv=None):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    from serving.manager import ModelConfig

    if args.model_config_file:
        if args.model_base_path:
            print("recipes-model-server: error: give --model_config_file or --model_base_path, not both", file=sys.stderr)
            return 2
        try:
            configs = read_model_config(args.model_config_file)
        except (OSError, ValueError) as error:
            print(f"recipes-model-server: error: {error}", file=sys.stderr)
            return 2
    elif args.model_base_path:
        configs = [ModelConfig(args.model_name, os.path.abspath(args.model_base_path))]
    else:
        print("recipes-model-server: error: --model_base_path or --model_config_file is required", file=sys.stderr)
        return 2
    batching = None
    if args.enable_batching:
        from serving.batching import BatchingParameters

        try:
            batching = (
                BatchingParameters.from_text(open(args.batching_parameters_file).read())
                if args.batching_parameters_file
                else BatchingParameters()
            )
        except (OSError, ValueError) as error:
            print(f"recipes-model-server: error: --batching_parameters_file: {error}", file=sys.stderr)
            return 2
    metrics_path = None
    if args.monitoring_config_file:
        from serving.metrics import read_monitoring_config

        try:
            metrics_path = read_monitoring_config(open(args.monitoring_config_file).read())
        except (OSError, ValueError) as error:
            print(f"recipes-model-server: error: --monitoring_config_file: {error}", file=sys.stderr)
            return 2
    server = ModelServer(
        configs,
        grpc_port=args.port,
        rest_port=args.rest_api_port or None,
        host=args.bind_address,
        poll_seconds=args.file_system_poll_wait_seconds,
        enable_warmup=args.enable_model_warmup,
        max_body_bytes=args.rest_api_max_body_bytes,
        rest_timeout_ms=args.rest_api_timeout_in_ms,
        batching=batching,
        metrics_path=metrics_path,
        grpc_max_threads=args.grpc_max_threads,
        enable_signature_method_name_check=args.enable_signature_method_name_check,
        enable_serialization_as_tensor_content=args.enable_serialization_as_tensor_content,
    )
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    if args.model_config_file and args.model_config_file_poll_wait_seconds > 0:
        def poll_config():
            while not stopped.wait(args.model_config_file_poll_wait_seconds):
                try:
                    server.manager.reload(read_model_config(args.model_config_file))
                except (OSError, ValueError) as error:
                    log.error("keeping the current models: %s", error)

        threading.Thread(target=poll_config, name="config-poller", daemon=True).start()
    stopped.wait()
    log.info("Shutting down")
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

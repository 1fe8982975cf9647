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

Every flag of TF Serving's `tensorflow_model_server` (its main.cc) is
accepted. TF Serving's parser (TensorFlow's `tensorflow::Flags`) takes
`--flag=value`, and for booleans `--flag` and `--flag=true|false|1|0`;
this one also takes gflags' spellings, `--flag value`, `-flag=value`,
`-flag value` and `--noflag`, which TF Serving reports as unknown
arguments. A few stand for parts of TF Serving's C++ runtime this server
does not have (TensorFlow Lite, XLA, TPUs, its profiler service...): they
are accepted, and one line at start-up names those given as having no
effect here. As in TF Serving, an unknown argument is reported with the
usage and the server starts all the same, `--help` (as the first unknown
argument) prints the usage and exits with status 255, and a start-up that
fails prints "Failed to start server. Error: ..." and exits with status
255. `--bind_address` and
`--rest_api_max_body_bytes` are ours.
"""

import argparse
import datetime
import logging
import os
import signal
import sys
import threading

from google.protobuf import text_format

log = logging.getLogger("recipes-model-server")
CPUS = os.cpu_count() or 1
# TF Serving flags for parts of its C++ runtime that this server does not have, accepted without effect.
NO_EFFECT_FLAGS = (
    "prefer_tflite_model",
    "num_tflite_pools",
    "num_tflite_interpreters_per_pool",  # TensorFlow Lite
    "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",  # XLA is TensorFlow's own choice here
    "skip_initialize_tpu",  # TPUs
    "enable_profiler",  # TF Serving's profiler gRPC service
    "thread_pool_factory_config_file",  # per-request thread pools of its C++ session runs
    "platform_config_file",  # its registry of servable platforms; the flags below configure the one here
    "flush_filesystem_caches",  # the caches of its remote file systems; models are read from local folders
    "remove_unused_fields_from_bundle_metagraph",  # only the SignatureDefs of a MetaGraph are kept here anyway
)


def _bool(value):
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false; received {value!r}")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """A flag value TF Serving cannot read either: the problem logged, the usage on stdout, exit status 255."""
        print(f"{self.prog}: error: {message}", file=sys.stderr, flush=True)
        print(self.format_help(), end="", flush=True)
        self.exit(255)


def build_parser():
    parser = _Parser(
        prog="recipes-model-server",
        description="Serve SavedModels through TF Serving's REST and gRPC APIs (same flags, same defaults).",
        epilog=__doc__.split("Example:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # TF Serving takes exact flag names only
        add_help=False,  # TensorFlow's flag parser knows --help only as the first unknown argument (see main)
    )
    flag = parser.add_argument
    flag("--port", type=int, default=8500, help="gRPC port (default: 8500; 0 picks a free one)")
    flag("--rest_api_port", type=int, default=0, help="REST port; 0, the default, disables REST, as in TF Serving")
    flag("--model_name", default="default", help="name of the single model (default: default)")
    flag("--model_base_path", default="", help="folder of the single model's numeric version folders")
    flag("--model_config_file", default="", help="text-format ModelServerConfig; replaces the two flags above")
    flag(
        "--model_config_file_poll_wait_seconds",
        type=int,
        default=0,
        help="seconds between re-reads of --model_config_file; 0 (default) reads it once",
    )
    flag(
        "--file_system_poll_wait_seconds",
        type=int,
        default=1,
        help="seconds between scans for new versions (default: 1); 0 scans once",
    )
    flag(
        "--grpc_max_threads",
        type=int,
        default=4 * (os.cpu_count() or 1),
        help="threads answering gRPC calls; more calls wait (default: 4 x cores, as TF Serving)",
    )
    flag(
        "--rest_api_timeout_in_ms",
        type=int,
        default=30000,
        help="REST requests whose model run takes longer fail with 504 (default: 30000)",
    )
    flag(
        "--enable_model_warmup",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        help="replay assets.extra/tf_serving_warmup_requests on load (default: true)",
    )
    flag(
        "--enable_batching",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="batch requests dynamically (default: false)",
    )
    flag(
        "--enable_signature_method_name_check",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="Classify, Regress and MultiInference require classify/regress method names (default: false)",
    )
    flag(
        "--enable_serialization_as_tensor_content",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="gRPC Predict answers in tensor_content instead of float_val, string_val, ... (default: false)",
    )
    flag(
        "--batching_parameters_file",
        default="",
        help="text-format BatchingParameters; TF Serving's defaults without it",
    )
    flag(
        "--monitoring_config_file",
        default="",
        help="text-format MonitoringConfig; prometheus_config { enable: true } serves metrics on the REST port",
    )
    # The rest of TF Serving's flags, with its defaults.
    flag("--grpc_socket_path", default="", help="also listen for gRPC on this unix socket; with --port=0, only there")
    flag(
        "--rest_api_num_threads",
        type=int,
        default=4 * CPUS,
        help="requests processed at once over REST; more wait (default: 4 x cores, as TF Serving)",
    )
    flag(
        "--rest_api_enable_cors_support",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="add CORS headers (Access-Control-Allow-*) to REST answers (default: false)",
    )
    flag(
        "--allow_version_labels_for_unavailable_models",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="let a new version label name a version not loaded yet, e.g. in the config read at start-up "
        "(default: false: labels may only name available versions)",
    )
    flag(
        "--enable_per_model_batching_parameters",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="with --enable_batching, a version batches with the parameters of the batching_params.pbtxt in its "
        "folder, and not at all without one; the threads stay those of --batching_parameters_file",
    )
    flag("--num_load_threads", type=int, default=0, help="versions loaded at once; 0 (default) loads them in turn")
    flag(
        "--num_unload_threads",
        type=int,
        default=0,
        help="versions unloaded at once in the background; 0 (default) unloads them in turn",
    )
    flag(
        "--max_num_load_retries",
        type=int,
        default=5,
        help="retries of a version that fails to load before giving up (default: 5; 0 tries once)",
    )
    flag(
        "--load_retry_interval_micros",
        type=int,
        default=60_000_000,
        help="microseconds between load retries (default: 1 minute; negative does not wait)",
    )
    flag("--flush_filesystem_caches", type=_bool, nargs="?", const=True, default=True, help="no effect here")
    flag(
        "--tensorflow_session_parallelism",
        type=int,
        default=0,
        help="threads of both TensorFlow thread pools; 0 (default) lets TensorFlow choose",
    )
    flag(
        "--tensorflow_session_config_file",
        default="",
        help="text-format TensorFlow ConfigProto of every model's session; the thread flags override its threads",
    )
    flag(
        "--tensorflow_intra_op_parallelism",
        type=int,
        default=0,
        help="threads running one op; 0 (default) lets TensorFlow choose (not with all three thread flags)",
    )
    flag(
        "--tensorflow_inter_op_parallelism",
        type=int,
        default=0,
        help="ops run at once; 0 (default) lets TensorFlow choose",
    )
    flag(
        "--use_alts_credentials",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="secure gRPC with Google ALTS (works on Google Cloud only; not with --ssl_config_file)",
    )
    flag(
        "--ssl_config_file",
        default="",
        help="text-format SSLConfig (server_key, server_cert: PEM text; custom_ca; client_verify): TLS on gRPC",
    )
    flag("--platform_config_file", default="", help="no effect here")
    flag(
        "--per_process_gpu_memory_fraction",
        type=float,
        default=0.0,
        help="share of each GPU's memory to take at start (0, the default, lets TensorFlow grow it)",
    )
    flag("--saved_model_tags", default="serve", help="comma-separated tags of the MetaGraph to load (default: serve)")
    flag(
        "--grpc_channel_arguments",
        default="",
        help="comma-separated gRPC server arguments, e.g. grpc.max_connection_age_ms=2000",
    )
    flag(
        "--num_request_iterations_for_warmup",
        type=int,
        default=0,
        help="times each warmup request is replayed; used when > 0",
    )
    flag("--version", type=_bool, nargs="?", const=True, default=False, help="print the version and exit")
    flag(
        "--remove_unused_fields_from_bundle_metagraph",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        help="no effect here",
    )
    flag("--prefer_tflite_model", type=_bool, nargs="?", const=True, default=False, help="no effect here")
    flag("--num_tflite_pools", type=int, default=CPUS, help="no effect here")
    flag("--num_tflite_interpreters_per_pool", type=int, default=1, help="no effect here")
    flag("--xla_cpu_compilation_enabled", type=_bool, nargs="?", const=True, default=False, help="no effect here")
    flag("--xla_gpu_compilation_enabled", type=_bool, nargs="?", const=True, default=False, help="no effect here")
    flag("--enable_profiler", type=_bool, nargs="?", const=True, default=True, help="no effect here")
    flag("--thread_pool_factory_config_file", default="", help="no effect here")
    flag("--mixed_precision", default="", help="bfloat16 turns on TensorFlow's bfloat16 auto mixed precision")
    flag("--skip_initialize_tpu", type=_bool, nargs="?", const=True, default=False, help="no effect here")
    flag(
        "--enable_grpc_healthcheck_service",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="serve gRPC's standard health service, grpc.health.v1.Health (default: false)",
    )
    # Ours.
    flag(
        "--bind_address",
        default="127.0.0.1",
        help="address to listen on (ours, not TF Serving's: it listens on all; default: 127.0.0.1)",
    )
    flag(
        "--rest_api_max_body_bytes",
        type=int,
        default=64 * 1024 * 1024,
        help="largest REST request body (ours; default: 64 MiB)",
    )
    return parser


def parse_flags(parser, argv):
    """Parses a command line as TF Serving's binary reads it, plus gflags' spellings.

    `-flag` is `--flag`; a boolean flag takes no separate value (`--flag` is
    true, `--noflag` false); every other flag takes `=value` or the next
    argument.

    Returns:
        `(args, unknown, given)`: the parsed flags, the arguments that are
        none of them, and the names of the flags the command line sets.
    """
    actions = {
        option[2:]: action for action in parser._actions for option in action.option_strings if option.startswith("--")
    }
    booleans = {name for name, action in actions.items() if action.type is _bool}
    normalized, given = [], set()
    remaining = list(sys.argv[1:] if argv is None else argv)
    while remaining:
        argument = remaining.pop(0)
        if argument == "--":
            normalized += [argument, *remaining]
            break
        name, equals, value = argument.lstrip("-").partition("=")
        dashes = len(argument) - len(argument.lstrip("-"))
        if dashes not in (1, 2) or not name:
            normalized.append(argument)
        elif name in booleans:
            given.add(name)
            normalized.append(f"--{name}={value if equals else 'true'}")
        elif name.startswith("no") and name[2:] in booleans and not equals:
            given.add(name[2:])
            normalized.append(f"--{name[2:]}=false")
        elif name in actions:
            given.add(name)
            if not equals and remaining and actions[name].nargs != 0:  # the next argument is the value, even "-x"
                equals, value = "=", remaining.pop(0)
            normalized.append(f"--{name}{equals}{value}")
        else:
            normalized.append(argument)
    args, unknown = parser.parse_known_args(normalized)
    return args, unknown, given


def version_text():
    """What `--version` prints, in TF Serving's words: the serving API this server implements and TensorFlow's version."""
    from importlib import metadata

    def version(*distributions):
        for distribution in distributions:
            try:
                return metadata.version(distribution)
            except metadata.PackageNotFoundError:
                continue
        return "unknown"

    return (
        f"TensorFlow ModelServer: {version('tensorflow-serving-api')}+recipes-model-server."
        f"{version('keras-recipes')}\n"
        f"TensorFlow Library: {version('tensorflow', 'tensorflow-cpu', 'tf-nightly')}"
    )


class StartupError(Exception):
    """A start-up TF Serving would refuse too; printed as its "Failed to start server. Error: CODE: message"."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")


def _read(path, what):
    try:
        with open(path) as f:
            return f.read()
    except OSError as error:
        raise StartupError("NOT_FOUND", f"{what} {path}: {error.strerror}") from None


def grpc_channel_arguments(text):
    """`(key, value)` pairs of `--grpc_channel_arguments`; values that are 32-bit integers are passed as ints."""
    pairs = []
    for item in filter(None, text.split(",")):
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise StartupError(
                "INVALID_ARGUMENT",
                f"--grpc_channel_arguments takes key=value pairs separated by commas; received {item!r}",
            )
        value = value.split("=")[0]  # TF Serving keeps what comes before a second "="
        try:
            number = int(value)
            pairs.append((key, number if -(2**31) <= number < 2**31 else value))
        except ValueError:
            pairs.append((key, value))
    return pairs


def session_config(args):
    """The TensorFlow `ConfigProto` of every model's session, as TF Serving builds it from its flags."""
    from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2

    config = config_pb2.ConfigProto()
    if args.tensorflow_session_config_file:
        try:
            text_format.Parse(_read(args.tensorflow_session_config_file, "--tensorflow_session_config_file"), config)
        except text_format.ParseError as error:
            raise StartupError(
                "INVALID_ARGUMENT", f"{args.tensorflow_session_config_file}: not a text-format ConfigProto: {error}"
            ) from None
    config.gpu_options.per_process_gpu_memory_fraction = args.per_process_gpu_memory_fraction
    intra, inter = args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism
    if intra <= 0 and inter <= 0:
        intra = inter = args.tensorflow_session_parallelism
    config.intra_op_parallelism_threads, config.inter_op_parallelism_threads = max(intra, 0), max(inter, 0)
    if args.mixed_precision == "bfloat16":
        log.info("Running inference with bfloat16 auto mixed precision")
        config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = (
            rewriter_config_pb2.RewriterConfig.ON
        )
    elif args.mixed_precision:
        log.warning("%s auto mixed precision is not supported. Valid option: bfloat16", args.mixed_precision)
    return config


def read_model_server_config(path):
    """The text-format `ModelServerConfig` proto of a file (`--model_config_file`).

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not a text-format ModelServerConfig.
    """
    from tensorflow_serving.config import model_server_config_pb2

    with open(path) as f:
        text = f.read()
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ValueError(f"{path}: not a text-format ModelServerConfig: {error}") from None
    return config


def model_configs(server_config):
    """The `ModelConfig`s of a `ModelServerConfig` proto, checked as TF Serving's ServerCore checks it.

    Returns:
        A list of `serving.manager.ModelConfig`, or `None` for a config that
        sets neither list, on which TF Serving takes no action.

    Raises:
        ValueError: ServerCore's message for a config it refuses.
    """
    from serving.manager import configs_from_proto

    kind = server_config.WhichOneof("config")
    if kind is None:
        return None
    if kind != "model_config_list":
        raise ValueError("ModelServer does not yet support custom model config.")
    return configs_from_proto(server_config.model_config_list)


def read_model_config(path):
    """The `ModelConfig`s of a text-format `ModelServerConfig` file; `[]` for a file that sets no config."""
    return model_configs(read_model_server_config(path)) or []


class ModelServer:
    """The running server: model manager, REST and gRPC endpoints; `stop()` shuts all down.

    Args:
        configs: `serving.manager.ModelConfig`s to serve.
        grpc_port: gRPC port, 0 for a free one, `None` for no gRPC port.
        rest_port: REST port, 0 for a free one, `None` for no REST; the gRPC
            port's number logs an error and leaves REST out, as in TF Serving.
        host: Address to bind, defaults to "127.0.0.1" ("::" and other IPv6 addresses too).
        poll_seconds: `--file_system_poll_wait_seconds`.
        enable_warmup: `--enable_model_warmup`.
        max_body_bytes: REST request body limit.
        rest_timeout_ms: `--rest_api_timeout_in_ms`.
        batching: Optional `serving.batching.BatchingParameters` (`--enable_batching`).
        metrics_path: Optional path of the Prometheus endpoint on the REST
            port (`--monitoring_config_file`); `None` turns metrics off.
        grpc_max_threads: `--grpc_max_threads`; requests beyond it wait for a
            thread, so batching sees at most this many gRPC requests at once.
        rest_num_threads: `--rest_api_num_threads`: REST requests processed at once.
        grpc_socket_path: Optional unix socket gRPC listens on as well (`--grpc_socket_path`).
        ssl_config: Optional `serving.tls.SSLConfig`: TLS on the gRPC listeners (`--ssl_config_file`).
        use_alts_credentials: ALTS on the gRPC listeners (`--use_alts_credentials`).
        grpc_options: gRPC server arguments, `(key, value)` pairs (`--grpc_channel_arguments`).
        health_check: Serve `grpc.health.v1.Health` (`--enable_grpc_healthcheck_service`).
        cors: Add CORS headers to REST answers (`--rest_api_enable_cors_support`).
        manager_options: Keyword arguments of `serving.manager.ModelManager`
            (load retries and threads, tags, session config, version labels...).
        enable_signature_method_name_check: `--enable_signature_method_name_check`.
        enable_serialization_as_tensor_content: `--enable_serialization_as_tensor_content`.
    """

    def __init__(
        self,
        configs,
        grpc_port=8500,
        rest_port=8501,
        host="127.0.0.1",
        poll_seconds=1,
        enable_warmup=True,
        max_body_bytes=64 * 1024 * 1024,
        rest_timeout_ms=30_000,
        batching=None,
        metrics_path=None,
        grpc_max_threads=4 * CPUS,
        *,
        rest_num_threads=4 * CPUS,
        grpc_socket_path=None,
        ssl_config=None,
        use_alts_credentials=False,
        grpc_options=(),
        health_check=False,
        cors=False,
        manager_options=None,
        enable_signature_method_name_check=False,
        enable_serialization_as_tensor_content=False,
    ):
        from serving.batching import BatchScheduler
        from serving.grpc_api import serve_grpc
        from serving.health import HealthService
        from serving.manager import ModelManager
        from serving.metrics import Metrics
        from serving.rest import RestServer
        from serving.service import Service

        self.manager = ModelManager(
            configs,
            poll_seconds=poll_seconds,
            enable_warmup=enable_warmup,
            batching=batching,
            **(manager_options or {}),
        ).start()
        self.metrics = Metrics() if metrics_path else None
        self.scheduler = BatchScheduler(batching, self.metrics) if batching is not None else None
        self.service = Service(self.manager, self.scheduler, enable_signature_method_name_check)
        self.health = HealthService() if health_check else None
        self.grpc_server = self.rest_server = None
        self.grpc_port = self.rest_port = None
        if grpc_port is not None or grpc_socket_path:
            self.grpc_server, self.grpc_port = serve_grpc(
                _host_port(host, grpc_port) if grpc_port is not None else None,
                self.service,
                self.reload_config,
                grpc_max_threads,
                metrics=self.metrics,
                socket_path=grpc_socket_path,
                credentials=_grpc_credentials(ssl_config, use_alts_credentials),
                options=grpc_options,
                health=self.health,
                enable_serialization_as_tensor_content=enable_serialization_as_tensor_content,
            )
            if self.grpc_port is not None:
                log.info("Running gRPC ModelServer at %s ...", _host_port(host, self.grpc_port))
            if grpc_socket_path:
                log.info("Running gRPC ModelServer at UNIX socket %s ...", grpc_socket_path)
        if rest_port is not None and rest_port != 0 and rest_port == grpc_port:
            log.error(
                "server_options.http_port cannot be same as grpc_port. Please use a different port for HTTP/REST API. "
                "Skipped exporting HTTP/REST API."
            )
        elif rest_port is not None:
            try:
                self.rest_server = RestServer(
                    (host, rest_port),
                    self.service,
                    max_body_bytes,
                    rest_timeout_ms,
                    self.metrics,
                    metrics_path,
                    num_threads=rest_num_threads,
                    enable_cors_support=cors,
                )
            except OSError as error:  # TF Serving goes on serving gRPC
                log.error("Failed to start HTTP Server at %s: %s", _host_port(host, rest_port), error)
            else:
                self.rest_port = self.rest_server.server_address[1]
                threading.Thread(target=self.rest_server.serve_forever, name="rest", daemon=True).start()
                log.info("Exporting HTTP/REST API at:%s ...", _host_port(host, self.rest_port))

    def reload_config(self, config):
        """`HandleReloadConfigRequest`: a `ModelServerConfig` proto with a model list replaces the served models."""
        from serving.errors import ServingError

        if config.WhichOneof("config") != "model_config_list":
            raise ServingError(
                "INVALID_ARGUMENT",
                "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                "Only ModelConfigList is currently supported",
            )
        try:
            configs = model_configs(config)
        except ValueError as error:
            raise ServingError("INVALID_ARGUMENT", str(error)) from None
        self.manager.reload(configs)

    def stop(self):
        if self.health:
            self.health.shutdown()
        if self.rest_server:
            self.rest_server.shutdown()
            self.rest_server.server_close()
        if self.grpc_server:
            self.grpc_server.stop(grace=2)
        if self.scheduler:
            self.scheduler.stop()
        self.manager.stop()


def _host_port(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _grpc_credentials(ssl_config, use_alts_credentials):
    """The gRPC listeners' credentials, chosen and logged as TF Serving's `BuildServerCredentials` does."""
    import grpc

    if use_alts_credentials:
        log.info("Using ALTS credentials")
        return grpc.alts_server_credentials()
    if ssl_config is None:
        log.info("Using InsecureServerCredentials")
        return None
    from serving.tls import server_credentials

    log.info("Using SSL credentials")
    return server_credentials(ssl_config)


class _TensorFlowLogFormatter(logging.Formatter):
    """Log lines as TensorFlow's C++ logging writes them: `2024-05-01 12:00:00.123456: I serving/server.py:74] ...`."""

    def format(self, record):
        stamp = datetime.datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S.%f")
        line = f"{stamp}: {record.levelname[0]} serving/{record.filename}:{record.lineno}] {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _check_flags(args):
    """The combinations of flags TF Serving refuses, with its messages; before TensorFlow is imported."""
    if args.use_alts_credentials and args.ssl_config_file:
        raise StartupError(
            "INVALID_ARGUMENT", "Either use_alts_credentials must be false or ssl_config_file must be empty."
        )
    if not args.model_base_path and not args.model_config_file:
        raise StartupError(
            "INVALID_ARGUMENT", "Both server_options.model_base_path and server_options.model_config_file are empty!"
        )
    if args.batching_parameters_file and not args.enable_batching:
        raise StartupError(
            "INVALID_ARGUMENT",
            "server_options.batching_parameters_file is set without setting server_options.enable_batching to true.",
        )
    if (
        min(
            args.tensorflow_intra_op_parallelism,
            args.tensorflow_inter_op_parallelism,
            args.tensorflow_session_parallelism,
        )
        > 0
    ):
        raise StartupError(
            "INVALID_ARGUMENT",
            "Either configure server_options.tensorflow_session_parallelism or (server_options.tensorflow_intra_op_"
            "parallelism, server_options.tensorflow_inter_op_parallelism) separately. You cannot configure all.",
        )


def _server_arguments(args, given):
    """`(configs, keyword arguments)` of the `ModelServer` the flags describe; the files they name are read here."""
    _check_flags(args)
    grpc_options = grpc_channel_arguments(args.grpc_channel_arguments)
    ssl_config = None
    if args.ssl_config_file:
        from serving.tls import read_ssl_config, server_credentials

        try:
            ssl_config = read_ssl_config(_read(args.ssl_config_file, "--ssl_config_file"))
            server_credentials(ssl_config)  # its problems now, not once the models have loaded
        except ValueError as error:
            raise StartupError("INVALID_ARGUMENT", f"{args.ssl_config_file}: {error}") from None
    batching = None
    if args.enable_batching:
        from serving.batching import BatchingParameters

        try:
            batching = (
                BatchingParameters.from_text(_read(args.batching_parameters_file, "--batching_parameters_file"))
                if args.batching_parameters_file
                else BatchingParameters()
            )
        except ValueError as error:
            raise StartupError("INVALID_ARGUMENT", f"{args.batching_parameters_file}: {error}") from None
    metrics_path = None
    if args.monitoring_config_file:
        from serving.metrics import read_monitoring_config

        try:
            metrics_path = read_monitoring_config(_read(args.monitoring_config_file, "--monitoring_config_file"))
        except ValueError as error:
            raise StartupError("INVALID_ARGUMENT", f"{args.monitoring_config_file}: {error}") from None

    # What TensorFlow takes only before it starts: its thread pools.
    import tensorflow as tf

    config = session_config(args)
    if config.intra_op_parallelism_threads:
        tf.config.threading.set_intra_op_parallelism_threads(config.intra_op_parallelism_threads)
    if config.inter_op_parallelism_threads:
        tf.config.threading.set_inter_op_parallelism_threads(config.inter_op_parallelism_threads)
    no_effect = [name for name in NO_EFFECT_FLAGS if name in given]
    if "per_process_gpu_memory_fraction" in given and not tf.config.list_physical_devices("GPU"):
        no_effect.append("per_process_gpu_memory_fraction")
    if no_effect:
        log.warning(
            "These TF Serving flags have no effect in this server, which has no TensorFlow Lite, XLA, TPU, GPU, "
            "profiler or platform registry of TF Serving's C++ runtime: %s",
            ", ".join(f"--{n}" for n in no_effect),
        )

    if args.model_config_file:  # as in TF Serving, it wins over --model_name and --model_base_path
        try:
            configs = model_configs(read_model_server_config(args.model_config_file))
        except OSError as error:
            raise StartupError("NOT_FOUND", f"{args.model_config_file}: {error.strerror}") from None
        except ValueError as error:
            raise StartupError("INVALID_ARGUMENT", str(error)) from None
        if configs is None:
            log.info("Taking no action for empty config.")
            configs = []
    else:
        from serving.manager import ModelConfig, is_relative_path

        log.info(
            "Building single TensorFlow model file config:  model_name: %s model_base_path: %s",
            args.model_name,
            args.model_base_path,
        )
        if is_relative_path(args.model_base_path):  # ServerCore's ValidateModelConfigList
            raise StartupError(
                "INVALID_ARGUMENT",
                f"Expected model {args.model_name} to have an absolute path or URI; "
                f"got base_path()={args.model_base_path}",
            )
        configs = [ModelConfig(args.model_name, args.model_base_path)]
    tags = tuple(tag for tag in args.saved_model_tags.split(",") if tag) or ("serve",)
    return configs, dict(
        grpc_port=args.port if args.port or not args.grpc_socket_path else None,
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
        rest_num_threads=args.rest_api_num_threads,
        grpc_socket_path=args.grpc_socket_path or None,
        ssl_config=ssl_config,
        use_alts_credentials=args.use_alts_credentials,
        grpc_options=grpc_options,
        health_check=args.enable_grpc_healthcheck_service,
        cors=args.rest_api_enable_cors_support,
        manager_options=dict(
            warmup_iterations=args.num_request_iterations_for_warmup,
            tags=tags,
            session_config=config,
            per_model_batching=args.enable_per_model_batching_parameters,
            num_load_threads=args.num_load_threads,
            num_unload_threads=args.num_unload_threads,
            max_load_retries=args.max_num_load_retries,
            load_retry_interval_seconds=args.load_retry_interval_micros / 1e6,
            allow_version_labels_for_unavailable_models=args.allow_version_labels_for_unavailable_models,
            freeze_heap=True,
        ),
    )


def _startup_error(error):
    """What stopped the start-up, as a `StartupError`; an unexpected exception is raised again."""
    if isinstance(error, StartupError):  # the flags' checks, done before TensorFlow is imported
        return error
    from serving.errors import ServingError

    if isinstance(error, ServingError):  # e.g. a version label the model manager refuses
        return StartupError(error.code, error.message)
    if isinstance(error, OSError):  # a port or socket taken
        return StartupError("UNAVAILABLE", str(error))
    if isinstance(error, ValueError):  # a model config the manager refuses
        return StartupError("INVALID_ARGUMENT", str(error))
    raise error


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported, which reads it once
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TensorFlowLogFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    parser = build_parser()
    args, unknown, given = parse_flags(parser, argv)
    if unknown[:1] == ["--help"]:  # tensorflow::Flags::Parse fails: main.cc prints the usage and returns -1
        print(parser.format_help(), end="", flush=True)
        return 255
    if args.version:
        print(version_text())
        return 0
    if unknown:  # TF Serving reports the first one with its usage, and starts all the same
        print(f"unknown argument: {unknown[0]}\n{parser.format_help()}", flush=True)
    try:
        configs, arguments = _server_arguments(args, given)
        server = ModelServer(configs, **arguments)
    except Exception as error:
        print(f"Failed to start server. Error: {_startup_error(error)}", flush=True)
        return 255
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    if args.model_config_file and args.model_config_file_poll_wait_seconds > 0:

        def poll_config():  # TF Serving's PollFilesystemAndReloadConfig
            from serving.errors import ServingError

            while not stopped.wait(args.model_config_file_poll_wait_seconds):
                try:
                    server_config = read_model_server_config(args.model_config_file)
                except (OSError, ValueError) as error:
                    log.error("Failed to read ModelServerConfig file: %s", getattr(error, "strerror", None) or error)
                    continue
                try:
                    configs = model_configs(server_config)
                    if configs is None and server.manager.configs:
                        raise ServingError(
                            "FAILED_PRECONDITION",
                            "Cannot transition to requested config. It is only legal to transition from one "
                            "ModelConfigList to another.",
                        )
                    server.manager.reload(configs or [])
                except ValueError as error:
                    log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", error)
                except ServingError as error:
                    log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", error.message)

        threading.Thread(target=poll_config, name="config-poller", daemon=True).start()
    stopped.wait()
    log.info("Shutting down")
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""recipes-model-server takes every flag of TF Serving's tensorflow_model_server, spelled as its users spell them.

Two server processes take all of main.cc's flags, one in `--flag=value` form, the other in gflags' `-flag=value`
form, and the tests check what the flags do there: TLS from an SSLConfig, a unix socket, gRPC arguments, the
health service, CORS, batching, TensorFlow's thread pools, the config file winning over --model_base_path, the
start-up lines. The rest runs in this process: flag spellings and defaults, start-up errors, load retries,
version labels, REST threads, load threads and per-model batching.
"""

import collections
import concurrent.futures
import gc
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import weakref

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from conftest import TESTDATA, rest_request, tf_serving_model

from serving.errors import ServingError
from serving.load import ServerProcess, free_port
from serving.manager import ModelConfig, ModelManager
from serving.server import NO_EFFECT_FLAGS, build_parser, parse_flags, read_model_config
from serving.server import ModelServer

pytestmark = pytest.mark.skipif(not os.path.isdir(TESTDATA), reason="../shared/tfserving_testdata is not here")
EXECUTABLE = os.path.join(os.path.dirname(sys.executable), "recipes-model-server")
CPUS = os.cpu_count() or 1

# Every flag of tensorflow_serving/model_servers/main.cc with its default there.
MAIN_CC_DEFAULTS = {
    "port": 8500,
    "grpc_socket_path": "",
    "rest_api_port": 0,
    "rest_api_num_threads": 4 * CPUS,
    "rest_api_timeout_in_ms": 30000,
    "rest_api_enable_cors_support": False,
    "enable_batching": False,
    "allow_version_labels_for_unavailable_models": False,
    "batching_parameters_file": "",
    "enable_per_model_batching_parameters": False,
    "model_config_file": "",
    "model_config_file_poll_wait_seconds": 0,
    "model_name": "default",
    "model_base_path": "",
    "num_load_threads": 0,
    "num_unload_threads": 0,
    "max_num_load_retries": 5,
    "load_retry_interval_micros": 60_000_000,
    "file_system_poll_wait_seconds": 1,
    "flush_filesystem_caches": True,
    "tensorflow_session_parallelism": 0,
    "tensorflow_session_config_file": "",
    "tensorflow_intra_op_parallelism": 0,
    "tensorflow_inter_op_parallelism": 0,
    "use_alts_credentials": False,
    "ssl_config_file": "",
    "platform_config_file": "",
    "per_process_gpu_memory_fraction": 0.0,
    "saved_model_tags": "serve",
    "grpc_channel_arguments": "",
    "grpc_max_threads": 4 * CPUS,
    "enable_model_warmup": True,
    "num_request_iterations_for_warmup": 0,
    "version": False,
    "monitoring_config_file": "",
    "remove_unused_fields_from_bundle_metagraph": True,
    "prefer_tflite_model": False,
    "num_tflite_pools": CPUS,
    "num_tflite_interpreters_per_pool": 1,
    "xla_cpu_compilation_enabled": False,
    "xla_gpu_compilation_enabled": False,
    "enable_profiler": True,
    "thread_pool_factory_config_file": "",
    "mixed_precision": "",
    "skip_initialize_tpu": False,
    "enable_grpc_healthcheck_service": False,
    "enable_serialization_as_tensor_content": False,
    "enable_signature_method_name_check": False,
}


# -- flag spellings and defaults (no server) ------------------------------------------------------


def test_every_main_cc_flag_is_known_with_tf_servings_default():
    args, unknown, given = parse_flags(build_parser(), [])
    assert (unknown, given) == ([], set())
    assert {name: getattr(args, name) for name in MAIN_CC_DEFAULTS} == MAIN_CC_DEFAULTS
    assert (args.bind_address, args.rest_api_max_body_bytes) == ("127.0.0.1", 64 * 1024 * 1024)  # ours


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--port=9000", "--model_name=m"], {"port": 9000, "model_name": "m"}),
        (["--port", "9000", "--model_name", "m"], {"port": 9000, "model_name": "m"}),
        (["-port=9000", "-model_name=m"], {"port": 9000, "model_name": "m"}),
        (
            ["-port", "9000", "-model_name", "-m"],
            {"port": 9000, "model_name": "-m"},
        ),  # the next argument, whatever it is
        (["--enable_batching"], {"enable_batching": True}),
        (["-enable_batching", "--enable_model_warmup=false"], {"enable_batching": True, "enable_model_warmup": False}),
        (
            ["--enable_batching=TRUE", "--enable_model_warmup=0"],
            {"enable_batching": True, "enable_model_warmup": False},
        ),
        (["--noenable_model_warmup", "-noenable_profiler"], {"enable_model_warmup": False, "enable_profiler": False}),
        (["--per_process_gpu_memory_fraction=0.25"], {"per_process_gpu_memory_fraction": 0.25}),
        (["--port=1", "--port=2"], {"port": 2}),  # the last one counts
    ],
)
def test_flag_spellings_of_gflags_and_tensorflow(argv, expected):
    args, unknown, given = parse_flags(build_parser(), argv)
    assert unknown == [] and given == set(expected)
    assert {name: getattr(args, name) for name in expected} == expected


def test_a_boolean_flag_takes_no_separate_value_and_unknown_arguments_are_returned():
    args, unknown, _ = parse_flags(
        build_parser(), ["--enable_batching", "true", "--nonsense=1", "-x", "--", "--port=1"]
    )
    assert args.enable_batching is True and args.port == 8500
    assert unknown == ["true", "--nonsense=1", "-x", "--", "--port=1"]  # as TensorFlow's parser leaves them
    with pytest.raises(SystemExit) as exited:
        parse_flags(build_parser(), ["--port=eighty"])
    assert exited.value.code == 255  # TF Serving's exit status for a value it cannot read
    args, unknown, _ = parse_flags(build_parser(), ["--model=m"])  # no abbreviations
    assert unknown == ["--model=m"] and args.model_name == "default"


def _run(*flags, timeout=60):
    return subprocess.run(
        [EXECUTABLE, *flags],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )


def test_version_prints_tf_servings_two_lines_and_exits():
    done = _run("--version", "--model_base_path=/nowhere")
    assert done.returncode == 0
    server_line, library_line = done.stdout.splitlines()
    assert server_line.startswith("TensorFlow ModelServer: 2.") and "+recipes-model-server." in server_line
    assert library_line == f"TensorFlow Library: {tf.__version__}"


def test_help_prints_the_usage_and_exits_with_255_as_tensorflows_flag_parser():
    # tensorflow::Flags::Parse fails when the first argument it does not know is --help; main.cc then prints the
    # usage and returns -1. -h is no flag there: an unknown argument, reported before the start-up goes on.
    done = _run("--help", "--model_base_path=/nowhere")
    assert done.returncode == 255 and "--rest_api_num_threads" in done.stdout
    assert "Error: INVALID_ARGUMENT" not in done.stdout  # no start-up
    done = _run("-h")
    assert done.returncode == 255 and done.stdout.startswith("unknown argument: -h\n")
    assert "Failed to start server. Error: INVALID_ARGUMENT: Both server_options.model_base_path" in done.stdout


@pytest.mark.parametrize(
    "flags, error",
    [
        ([], "INVALID_ARGUMENT: Both server_options.model_base_path and server_options.model_config_file are empty!"),
        (
            ["--model_base_path=/m", "--use_alts_credentials", "--ssl_config_file=/s"],
            "INVALID_ARGUMENT: Either use_alts_credentials must be false or ssl_config_file must be empty.",
        ),
        (
            ["--model_base_path=/m", "--batching_parameters_file=/b"],
            "INVALID_ARGUMENT: server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true.",
        ),
        (
            [
                "--model_base_path=/m",
                "--tensorflow_session_parallelism=2",
                "--tensorflow_intra_op_parallelism=2",
                "--tensorflow_inter_op_parallelism=2",
            ],
            "INVALID_ARGUMENT: Either configure server_options.tensorflow_session",
        ),
        (
            ["--model_base_path=/m", "--grpc_channel_arguments=grpc.so_reuseport"],
            "INVALID_ARGUMENT: --grpc_channel_arguments takes key=value pairs separated by commas; received",
        ),
        (
            ["--model_base_path=/m", "--ssl_config_file=/nowhere/ssl.config"],
            "NOT_FOUND: --ssl_config_file /nowhere/ssl.config",
        ),
        (
            ["--model_base_path=exports/m"],  # TF Serving does not make it absolute
            "INVALID_ARGUMENT: Expected model default to have an absolute path or URI; got base_path()=exports/m",
        ),
    ],
)
def test_start_up_errors_as_tf_serving_reports_them(flags, error):
    done = _run(*flags)
    assert done.returncode == 255
    assert done.stdout.startswith(f"Failed to start server. Error: {error}"), done.stdout + done.stderr


def test_model_configs_tf_serving_refuses_are_refused(tmp_path):
    # server_core.cc: ValidateModelConfigList, GetPlatform, CreateStoragePathRoutes (the start-up prints them as
    # "Failed to start server. Error: INVALID_ARGUMENT: ...", see test_start_up_errors_as_tf_serving_reports_them)
    base = tf_serving_model("saved_model_half_plus_two_cpu")
    entries = {
        f'config {{ name: "m" base_path: "{base}" }}': "Illegal setting neither ModelServerConfig::model_type (deprecated) nor ModelServerConfig::model_platform, "
        "model name is m",
        f'config {{ name: "m" base_path: "{base}" model_platform: "tensorflow" model_type: TENSORFLOW }}': "Illegal setting both ModelServerConfig::model_type (deprecated) and ModelServerConfig::model_platform, "
        "model name is m",
        f'config {{ name: "m" base_path: "{base}" model_type: OTHER }}': "ModelServerConfig::model_type choice 2 not supported.",
        f'config {{ name: "m" base_path: "{base}" model_platform: "tflite" }}': "Model m requests unsupported platform tflite",
        f'config {{ name: "m" base_path: "{base}" model_platform: "tensorflow" }} '
        f'config {{ name: "m" base_path: "{base}" model_platform: "tensorflow" }}': "Illegal to list model m multiple times in config list",
        'config { name: "m" base_path: "models/m" model_platform: "tensorflow" }': "Expected model m to have an absolute path or URI; got base_path()=models/m",
    }
    config = tmp_path / "models.config"
    for entry, error in entries.items():
        config.write_text(f"model_config_list {{ {entry} }}")
        with pytest.raises(ValueError) as raised:
            read_model_config(str(config))
        assert str(raised.value) == error
    # the deprecated model_type still names the platform; a config that sets no list serves nothing
    config.write_text(f'model_config_list {{ config {{ name: "m" base_path: "{base}" model_type: TENSORFLOW }} }}')
    assert read_model_config(str(config)) == [ModelConfig("m", base)]
    config.write_text("")
    assert read_model_config(str(config)) == []


# -- two server processes with every flag ---------------------------------------------------------


def _self_signed_certificate(folder):
    """A key and certificate for localhost and 127.0.0.1 (the openssl command; `cryptography` is not installed)."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return key.read_text(), cert.read_text()


def _every_flag(folder, dash, port=0, grpc_socket_path="", ssl_config_file="", model_config_file=""):
    """Every main.cc flag (and ours) with a value that does something where it can, spelled `dash + name=value`.

    `--port=0` picks a free port, unless there is a `--grpc_socket_path`: then, as in TF Serving, it turns
    the TCP port off.
    """
    (folder / "batching.txt").write_text("max_batch_size { value: 8 }\nnum_batch_threads { value: 1 }\n")
    (folder / "session.config").write_text("allow_soft_placement: true\n")
    (folder / "monitoring.config").write_text("prometheus_config { enable: true }\n")
    values = {
        "port": port,
        "grpc_socket_path": grpc_socket_path,
        "rest_api_num_threads": 3,
        "rest_api_timeout_in_ms": 20000,
        "rest_api_enable_cors_support": "true",
        "enable_batching": "true",
        "allow_version_labels_for_unavailable_models": "true",
        "batching_parameters_file": folder / "batching.txt",
        "enable_per_model_batching_parameters": "false",
        "model_config_file": model_config_file,
        "model_config_file_poll_wait_seconds": 30,
        "model_name": "hp3",
        "model_base_path": tf_serving_model("saved_model_half_plus_three"),
        "num_load_threads": 2,
        "num_unload_threads": 1,
        "max_num_load_retries": 1,
        "load_retry_interval_micros": 100000,
        "file_system_poll_wait_seconds": 1,
        "flush_filesystem_caches": "true",
        "tensorflow_session_parallelism": 0,
        "tensorflow_session_config_file": folder / "session.config",
        "tensorflow_intra_op_parallelism": 1,
        "tensorflow_inter_op_parallelism": 3,
        "use_alts_credentials": "false",
        "ssl_config_file": ssl_config_file,
        "platform_config_file": "",
        "per_process_gpu_memory_fraction": 0.5,
        "saved_model_tags": "serve",
        "grpc_channel_arguments": "grpc.so_reuseport=0,grpc.max_connection_age_ms=60000",
        "grpc_max_threads": 8,
        "enable_model_warmup": "true",
        "num_request_iterations_for_warmup": 2,
        "version": "false",
        "monitoring_config_file": folder / "monitoring.config",
        "remove_unused_fields_from_bundle_metagraph": "true",
        "prefer_tflite_model": "false",
        "num_tflite_pools": 2,
        "num_tflite_interpreters_per_pool": 1,
        "xla_cpu_compilation_enabled": "false",
        "xla_gpu_compilation_enabled": "false",
        "enable_profiler": "true",
        "thread_pool_factory_config_file": "",
        "mixed_precision": "bfloat16",
        "skip_initialize_tpu": "false",
        "enable_grpc_healthcheck_service": "true",
        "enable_serialization_as_tensor_content": "false",
        "enable_signature_method_name_check": "false",
        "bind_address": "127.0.0.1",
        "rest_api_max_body_bytes": 1_000_000,  # ours
    }
    assert set(MAIN_CC_DEFAULTS) - {"rest_api_port"} <= set(values)  # ServerProcess gives --rest_api_port
    return [f"{dash}{name}={value}" for name, value in values.items()]


def _predict_request(model, values, label=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if label:
        request.model_spec.version_label = label
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array(values, "float32")))
    return request


def _predict(channel, model, values, label=None):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    return tf.make_ndarray(stub.Predict(_predict_request(model, values, label), timeout=30).outputs["y"]).tolist()


def _health(channel, service):
    """grpc.health.v1.Health/Check, request and answer encoded by hand: `service` is field 1, `status` field 1."""
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    name = service.encode()
    return check(b"\n" + bytes([len(name)]) + name if name else b"", timeout=10)


def _threads_named(pid, name):
    tasks = f"/proc/{pid}/task"
    names = collections.Counter(open(f"{tasks}/{task}/comm").read().strip() for task in os.listdir(tasks))
    return names[name]


@pytest.mark.slow
def test_every_flag_in_double_dash_form_and_what_the_flags_do(tmp_path):
    key, cert = _self_signed_certificate(tmp_path)
    (tmp_path / "ssl.config").write_text(f"server_key: {json.dumps(key)}\nserver_cert: {json.dumps(cert)}\n")
    (tmp_path / "models.config").write_text(
        'model_config_list { config { name: "hp2" base_path: "%s" model_platform: "tensorflow" '
        'version_labels { key: "stable" value: 123 } } }' % tf_serving_model("saved_model_half_plus_two_cpu")
    )
    flags = _every_flag(
        tmp_path,
        "--",
        port=free_port(),
        grpc_socket_path=tmp_path / "grpc.sock",
        ssl_config_file=tmp_path / "ssl.config",
        model_config_file=tmp_path / "models.config",
    )
    server = ServerProcess(flags)
    try:
        log = "".join(server.log)
        host, port = server.grpc_address.split(":")
        tls = grpc.ssl_channel_credentials(root_certificates=cert.encode())
        with grpc.secure_channel(server.grpc_address, tls) as channel:
            # the config file wins over --model_name/--model_base_path; its label is allowed at start-up
            assert _predict(channel, "hp2", [[1.0]], label="stable") == [[2.5]]
            with pytest.raises(grpc.RpcError) as raised:
                _predict(channel, "hp3", [[1.0]])
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND
            assert _health(channel, "") == b"\x08\x01" and _health(channel, "PredictionService") == b"\x08\x01"
            with pytest.raises(grpc.RpcError) as raised:
                _health(channel, "NoSuchService")
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND
            watch = channel.unary_stream("/grpc.health.v1.Health/Watch")(b"", timeout=10)
            assert next(watch) == b"\x08\x01"
            watch.cancel()
        localhost = [("grpc.ssl_target_name_override", "localhost")]  # the name in the certificate
        with grpc.secure_channel(f"unix:{tmp_path / 'grpc.sock'}", tls, localhost) as channel:  # TLS there too
            assert _predict(channel, "hp2", [[3.0]]) == [[3.5]]
        with grpc.insecure_channel(server.grpc_address) as channel:  # no TLS, no answer
            with pytest.raises(grpc.RpcError) as raised:
                _predict(channel, "hp2", [[1.0]])
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        # REST stays plain HTTP, with CORS headers; its answers went through the batching scheduler
        request = urllib.request.Request(
            f"http://{server.rest_address}/v1/models/hp2:predict", data=b'{"instances": [1.0]}'
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read()) == {"predictions": [2.5]}
            assert response.headers["Access-Control-Allow-Origin"] == "*"
        preflight = urllib.request.Request(
            f"http://{server.rest_address}/v1/models/hp2:predict",
            method="OPTIONS",
            headers={"Origin": "https://example.com"},
        )
        with urllib.request.urlopen(preflight, timeout=30) as response:
            assert response.status == 200 and response.headers["Access-Control-Allow-Methods"] == "POST, GET"
        assert server.batch_totals("hp2")[0] >= 1
        # grpc.so_reuseport=0 reached gRPC: another server cannot share the port
        probe = grpc.server(concurrent.futures.ThreadPoolExecutor(1))
        with pytest.raises(RuntimeError):
            probe.add_insecure_port(f"{host}:{port}")
        # --tensorflow_inter_op_parallelism=3: TensorFlow's inter-op pool has 3 threads ("tf_Compute")
        assert _threads_named(server.process.pid, "tf_Compute") == 3
        assert "Using SSL credentials" in log and "Running inference with bfloat16 auto mixed precision" in log
        no_effect = [line for line in log.splitlines() if "have no effect in this server" in line]
        assert len(no_effect) == 1
        assert no_effect[0].endswith(", ".join(f"--{n}" for n in [*NO_EFFECT_FLAGS, "per_process_gpu_memory_fraction"]))
        assert "Building single TensorFlow model file config" not in log
    finally:
        server.stop()


@pytest.mark.slow
def test_every_flag_in_single_dash_form_and_tf_servings_start_up_lines(tmp_path):
    server = ServerProcess(_every_flag(tmp_path, "-"))  # no config file, no TLS: the single model, insecure
    try:
        with grpc.insecure_channel(server.grpc_address) as channel:
            assert _predict(channel, "hp3", [[1.0]]) == [[3.5]]
        request = urllib.request.Request(
            f"http://{server.rest_address}/v1/models/hp3:predict", data=b'{"instances": [1.0]}'
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read()) == {"predictions": [3.5]}
        log = "".join(server.log)
        servable = "{name: hp3 version: 123}"
        expected = [
            f"Building single TensorFlow model file config:  model_name: hp3 model_base_path: "
            f"{tf_serving_model('saved_model_half_plus_three')}",
            "Adding/updating models.",
            " (Re-)adding model: hp3",
            f"Approving load for servable version {servable}",
            f"Loading servable version {servable}",
            f"Successfully loaded servable version {servable}",
            "Finished adding/updating models",
            "Using InsecureServerCredentials",
            f"Running gRPC ModelServer at {server.grpc_address} ...",  # the port --port=0 picked, as bound
            f"Exporting HTTP/REST API at:{server.rest_address} ...",
        ]
        messages = [line.split("] ", 1)[1] for line in log.splitlines() if "] " in line]
        assert [m for m in messages if m in expected] == expected
        assert "deprecated" not in log.lower() and "Instructions for updating" not in log
    finally:
        server.stop()


# -- the flags' effects in this process -----------------------------------------------------------


def test_a_failed_load_is_retried_and_a_version_completed_late_is_served(tmp_path, caplog):
    source = tf_serving_model("saved_model_half_plus_two_cpu/00000123")
    version = tmp_path / "late" / "1"
    version.mkdir(parents=True)
    shutil.copy(os.path.join(source, "saved_model.pb"), version)  # the graph is there, its variables not yet
    completed = threading.Timer(1.0, shutil.copytree, (os.path.join(source, "variables"), version / "variables"))
    completed.start()
    options = {"max_load_retries": 30, "load_retry_interval_seconds": 0.2}
    with caplog.at_level("INFO", logger="recipes-model-server"):
        running = ModelServer(
            [ModelConfig("late", str(tmp_path / "late"))],
            grpc_port=None,
            rest_port=0,
            poll_seconds=0,
            manager_options=options,
        )
    completed.join()
    try:
        assert rest_request(running, "POST", "/v1/models/late:predict", {"instances": [2.0]}) == (
            200,
            {"predictions": [3.0]},
        )
        assert "Loading servable: {name: late version: 1} failed: " in caplog.text
        assert "Retrying of Loading servable: {name: late version: 1} retry: 1" in caplog.text
    finally:
        running.stop()


@pytest.mark.parametrize("num_unload_threads", [0, 1], ids=["unloaded in the scan", "unloaded in the background"])
def test_the_command_freezes_its_heap_after_loads_and_an_unloaded_version_is_still_collected(num_unload_threads):
    """`recipes-model-server` freezes what loading left (`freeze_heap`): the collector no longer walks it under load."""
    from serving.server import _server_arguments

    args, _, given = parse_flags(
        build_parser(), ["--model_base_path=" + tf_serving_model("saved_model_half_plus_three")]
    )
    assert _server_arguments(args, given)[1]["manager_options"]["freeze_heap"] is True
    two = tf_serving_model("saved_model_half_plus_two_2_versions")
    gc.unfreeze()
    manager = ModelManager(
        [ModelConfig("m", two, ("specific", (123,)))],
        poll_seconds=0,
        freeze_heap=True,
        num_unload_threads=num_unload_threads,
    ).start()
    try:
        assert gc.get_freeze_count() > 0
        servable = manager.acquire("m")
        manager.release(servable)
        servable.itself = servable  # a version's objects in a cycle, as restored Keras objects often are
        unloaded = weakref.ref(servable)
        del servable
        manager.reload([ModelConfig("m", two, ("specific", (124,)))])
        assert manager.resolve("m") == 124
        deadline = time.monotonic() + 30
        while (unloaded() is not None or not gc.get_freeze_count()) and time.monotonic() < deadline:
            time.sleep(0.05)  # a close in the background settles the heap on its own
        assert unloaded() is None  # unfrozen before the collection: a version's cycles do not outlive it
        assert gc.get_freeze_count() > 0
    finally:
        manager.stop()
        gc.unfreeze()


def test_version_labels_of_unavailable_versions_as_tf_serving_checks_them():
    two = tf_serving_model("saved_model_half_plus_two_2_versions")
    labelled = ModelConfig("m", two, ("specific", (123,)), {"stable": 123})
    with pytest.raises(ServingError) as raised:
        ModelManager([labelled], poll_seconds=0).start()
    assert raised.value.code == "FAILED_PRECONDITION"
    assert raised.value.message == (
        "Request to assign label to version 123 of model m, which is not currently available for inference"
    )
    manager = ModelManager([ModelConfig("m", two, ("specific", (123,)))], poll_seconds=0).start()
    try:
        manager.reload([labelled])  # 123 is available now
        assert manager.resolve("m", label="stable") == 123
        with pytest.raises(ServingError, match="label to version 124"):
            manager.reload([ModelConfig("m", two, ("all",), {"stable": 123, "canary": 124})])
    finally:
        manager.stop()
    manager = ModelManager([labelled], poll_seconds=0, allow_version_labels_for_unavailable_models=True).start()
    try:
        manager.reload([ModelConfig("m", two, ("all",), {"stable": 123, "canary": 124})])  # a new label: allowed
        with pytest.raises(ServingError, match="label to version 125"):  # moving a label in use: not
            manager.reload([ModelConfig("m", two, ("all",), {"stable": 125})])
    finally:
        manager.stop()


def _slow_model(folder):
    """A SavedModel whose run takes about 12 µs per unit of its input `n`."""

    class Spin(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="n")])
        def spin(self, n):
            _, x = tf.while_loop(
                lambda i, x: i < n[0],
                lambda i, x: (i + 1, tf.sin(x) + 1.0),
                (tf.constant(0, tf.int64), tf.constant(0.0)),
            )
            return {"y": tf.fill(tf.shape(n), x)}

    module = Spin()
    tf.saved_model.save(module, str(folder / "1"), signatures={"serving_default": module.spin})
    return str(folder)


@pytest.mark.slow
def test_rest_api_num_threads_bounds_the_requests_processed_at_once(tmp_path):
    base = _slow_model(tmp_path / "slow")
    for threads in (1, 2):
        running = ModelServer(
            [ModelConfig("slow", base)], grpc_port=None, rest_port=0, poll_seconds=0, rest_num_threads=threads
        )

        def send(n):
            assert rest_request(running, "POST", "/v1/models/slow:predict", {"instances": [n]})[0] == 200

        try:
            slow = threading.Thread(target=send, args=(300_000,))  # a few seconds of spinning
            slow.start()
            deadline = time.monotonic() + 30
            while running.rest_server.processing == 0 and time.monotonic() < deadline:
                time.sleep(0.01)  # until the slow request holds a processing slot
            send(1)  # with a second slot it runs beside the slow one; with one it waits for it
            slow.join()
        finally:
            running.stop()
        # Counted by the server, not by which client heard back first (that order is the scheduler's)
        assert running.rest_server.peak_processing == threads


def test_num_load_threads_loads_versions_at_once(caplog):
    configs = [ModelConfig(name, tf_serving_model("saved_model_half_plus_two_cpu")) for name in ("a", "b", "c")]
    for threads in (0, 3):
        caplog.clear()
        with caplog.at_level("INFO", logger="recipes-model-server"):
            ModelManager(configs, poll_seconds=0, num_load_threads=threads).start().stop()
        events = [r.getMessage().split(" {")[0] for r in caplog.records if "servable version {" in r.getMessage()]
        loads = [e for e in events if e in ("Loading servable version", "Successfully loaded servable version")]
        in_turn = ["Loading servable version", "Successfully loaded servable version"] * 3
        assert (loads == in_turn) == (threads == 0), loads


def test_per_model_batching_parameters_come_from_each_version_folder(tmp_path):
    from serving.batching import BatchingParameters

    shutil.copytree(tf_serving_model("saved_model_half_plus_two_cpu"), tmp_path / "own")
    (tmp_path / "own" / "00000123" / "batching_params.pbtxt").write_text("max_batch_size { value: 2 }\n")
    configs = [
        ModelConfig("own", str(tmp_path / "own")),
        ModelConfig("none", tf_serving_model("saved_model_half_plus_two_cpu")),
    ]
    running = ModelServer(
        configs,
        grpc_port=None,
        rest_port=0,
        poll_seconds=0,
        batching=BatchingParameters(),
        manager_options={"per_model_batching": True},
    )
    try:
        status, body = rest_request(running, "POST", "/v1/models/own:predict", {"instances": [1.0, 2.0, 3.0]})
        assert status == 400 and "Task size 3 is larger than maximum input batch size 2" in body["error"]
        assert rest_request(running, "POST", "/v1/models/own:predict", {"instances": [1.0, 2.0]})[1] == {
            "predictions": [2.5, 3.0]
        }
        assert running.scheduler.batches_run == 1
        assert (
            rest_request(running, "POST", "/v1/models/none:predict", {"instances": [1.0] * 5})[0] == 200
        )  # not batched
        assert running.scheduler.batches_run == 1
    finally:
        running.stop()


def test_a_rest_port_equal_to_the_grpc_port_is_skipped_as_in_tf_serving(caplog):
    port = free_port()
    with caplog.at_level("INFO", logger="recipes-model-server"):
        running = ModelServer(
            [ModelConfig("m", tf_serving_model("saved_model_half_plus_two_cpu"))],
            grpc_port=port,
            rest_port=port,
            poll_seconds=0,
        )
    try:
        assert running.rest_server is None and running.grpc_port == port
        assert "http_port cannot be same as grpc_port" in caplog.text
    finally:
        running.stop()

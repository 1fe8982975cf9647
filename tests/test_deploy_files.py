"""The deployment files for the real TF Serving agree with each other and with what the package exports."""

import os
import re

import yaml

from serving.server import read_model_config

DEPLOY = os.path.join(os.path.dirname(__file__), os.pardir, "serving", "deploy")
TASKS = {"text", "audio", "vision", "tabular"}
BATCHING_FIELDS = {
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
    "allowed_batch_sizes",
    "pad_variable_length_inputs",
    "thread_pool_name",
}


def _path(name):
    return os.path.join(DEPLOY, name)


def _flags(args):
    return dict(arg[2:].split("=", 1) for arg in args)


def test_models_config_names_the_four_exports():
    configs = read_model_config(_path("models.config"))
    assert {c.name for c in configs} == TASKS
    assert all(c.base_path == f"/models/{c.name}" and c.policy == ("latest", 1) for c in configs)


def test_batching_parameters_use_tf_servings_fields():
    for name in ("batching_parameters.txt", "batching_parameters_gpu.txt"):
        lines = [line for line in open(_path(name)) if line.strip() and not line.startswith("#")]
        fields = {re.match(r"\s*(\w+)", line).group(1) for line in lines}
        assert fields <= BATCHING_FIELDS and "max_batch_size" in fields, (name, fields)


def test_compose_and_kubernetes_run_tf_serving_with_these_files():
    compose = yaml.safe_load(open(_path("docker-compose.yml")))
    referenced = set()
    for service in compose["services"].values():
        assert service["image"].startswith("tensorflow/serving:")
        flags = _flags(service["command"])
        assert flags["port"] == "8500" and flags["rest_api_port"] == "8501"
        referenced |= {os.path.basename(v) for k, v in flags.items() if k.endswith("_file")}
    assert compose["services"]["serving-gpu"]["image"].endswith("latest-gpu")
    assert compose["services"]["serving-gpu"]["profiles"] == ["gpu"]

    deployment, service, autoscaler = yaml.safe_load_all(open(_path("kubernetes.yaml")))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    flags = _flags(container["args"])
    referenced |= {os.path.basename(v) for k, v in flags.items() if k.endswith("_file")}
    assert re.fullmatch(r"/v1/models/(\w+)", container["readinessProbe"]["httpGet"]["path"]).group(1) in TASKS
    assert {p["port"] for p in service["spec"]["ports"]} == {8500, 8501}
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert referenced <= set(os.listdir(DEPLOY)), referenced - set(os.listdir(DEPLOY))

"""Which model versions are served: discovery, version policies, labels, loading and unloading.

Like TF Serving's `ServerCore` with the file-system source: each model's base
path is polled for numeric version folders (`00000123` is version 123); its
version policy picks the versions to serve (`latest` N, the default with
N = 1; `all`; `specific`); a new version is loaded, warmed up and made
available *before* the version it replaces is unloaded, and an unloaded
version is closed only once the requests using it have finished, so no
request fails during a swap. A version that fails to load is reported in
the status (state END with the error) and not served; the policy then
falls back to the next version it allows.
"""

import dataclasses
import logging
import os
import threading

import tensorflow as tf

from serving.contract import WARMUP_FILE, versions_on_disk
from serving.errors import ServingError
from serving.servable import Servable

log = logging.getLogger("recipes-model-server")
# ModelVersionStatus.State values of tensorflow_serving/apis/get_model_status.proto
START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One served model, as a `ModelConfig` entry of TF Serving's `ModelServerConfig`.

    Attributes:
        name: Model name in request URLs and model specs.
        base_path: Folder holding the numeric version folders.
        policy: `("latest", n)`, `("all",)` or `("specific", (v1, v2, ...))`.
        labels: Dict from version label to version.
    """

    name: str
    base_path: str
    policy: tuple = ("latest", 1)
    labels: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_proto(cls, config):
        """From a `tensorflow_serving.config.ModelConfig` proto."""
        choice = config.model_version_policy.WhichOneof("policy_choice")
        if choice is None or choice == "latest":
            policy = ("latest", config.model_version_policy.latest.num_versions or 1)
        elif choice == "all":
            policy = ("all",)
        else:
            policy = ("specific", tuple(sorted(config.model_version_policy.specific.versions)))
        if config.model_platform not in ("", "tensorflow"):
            raise ValueError(f"model {config.name!r}: model_platform must be 'tensorflow'; received {config.model_platform!r}")
        return cls(config.name, config.base_path, policy, dict(config.version_labels))


@dataclasses.dataclass
class VersionStatus:
    state: str
    error_code: str = "OK"
    error_message: str = ""


class _Loaded:
    """A servable with a count of the requests using it, so that unloading waits for them."""

    def __init__(self, servable):
        self.servable = servable
        self.users = 0


def _wanted(policy, available):
    if policy[0] == "all":
        return set(available)
    if policy[0] == "specific":
        return set(policy[1]) & set(available)
    return set(sorted(available)[-policy[1] :]) if available else set()


class ModelManager:
    """Keeps the configured models' wanted versions loaded.

    Args:
        configs: `ModelConfig`s.
        poll_seconds: Seconds between scans of the base paths
            (`--file_system_poll_wait_seconds`); 0 scans only once, at start.
        enable_warmup: Replay `assets.extra/tf_serving_warmup_requests` when
            a version loads (`--enable_model_warmup`), defaults to `True`.
    """

    def __init__(self, configs, poll_seconds=1.0, enable_warmup=True):
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique; received {names}")
        self.configs = {c.name: c for c in configs}
        self.poll_seconds = poll_seconds
        self.enable_warmup = enable_warmup
        self._loaded = {}  # (name, version) -> _Loaded, the versions requests may use
        self._handles = {}  # id(servable) -> _Loaded, until the last request using it has finished
        self._status = {}  # (name, version) -> VersionStatus
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self):
        self.sync()
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll, name="version-poller", daemon=True)
            self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.sync()
            except Exception:  # a bad folder must not stop the poller
                log.exception("version scan failed")

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join()
        with self._lock:
            keys = list(self._loaded)
        for key in keys:
            self._unload(key)

    def reload(self, configs):
        """Replaces the model configs (`HandleReloadConfigRequest`): loads new models, unloads removed ones."""
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise ServingError("INVALID_ARGUMENT", f"model names must be unique; received {names}")
        with self._lock:
            self.configs = {c.name: c for c in configs}
        self.sync()

    def sync(self):
        """One scan: load the wanted versions that are new, then unload the unwanted ones."""
        with self._lock:
            configs = dict(self.configs)
        for config in configs.values():
            available = versions_on_disk(config.base_path)
            while True:  # a version that fails to load makes way for the next one the policy allows
                with self._lock:
                    failed = {v for (n, v), s in self._status.items() if n == config.name and s.error_code != "OK"}
                wanted = _wanted(config.policy, set(available) - failed)
                missing = [v for v in sorted(wanted) if (config.name, v) not in self._loaded]
                for version in missing:
                    self._load(config.name, version, available[version])
                if all((config.name, v) in self._loaded for v in missing):
                    break
            with self._lock:
                serving_now = {v for (n, v) in self._loaded if n == config.name}
            for version in serving_now - wanted:
                if serving_now & wanted or not wanted:
                    self._unload((config.name, version))
        with self._lock:
            removed = [key for key in self._loaded if key[0] not in configs]
        for key in removed:
            self._unload(key)

    def _load(self, name, version, folder):
        key = (name, version)
        with self._lock:
            self._status[key] = VersionStatus(LOADING)
        log.info("Loading servable: {name: %s version: %d} from %s", name, version, folder)
        try:
            servable = Servable(name, version, folder)
            if self.enable_warmup:
                self._warm_up(servable)
        except Exception as error:  # reported in the status; the model keeps its other versions
            message = getattr(error, "message", None) or str(error)
            log.error("Failed to load servable {name: %s version: %d}: %s", name, version, message)
            with self._lock:
                self._status[key] = VersionStatus(END, "UNKNOWN", message.splitlines()[0][:2000])
            return
        with self._lock:
            self._loaded[key] = self._handles[id(servable)] = _Loaded(servable)
            self._status[key] = VersionStatus(AVAILABLE)
        log.info("Successfully loaded servable version {name: %s version: %d}", name, version)

    def _unload(self, key):
        with self._lock:
            loaded = self._loaded.pop(key, None)
            if loaded is None:
                return
            self._status[key] = VersionStatus(UNLOADING)
            while loaded.users:
                self._lock.wait()
            del self._handles[id(loaded.servable)]
            self._status[key] = VersionStatus(END)
        loaded.servable.close()
        log.info("Done unloading servable version {name: %s version: %d}", *key)

    def _warm_up(self, servable):
        path = os.path.join(servable.path, WARMUP_FILE)
        if not os.path.exists(path):
            return
        from tensorflow_serving.apis import prediction_log_pb2

        count = 0
        for record in tf.data.TFRecordDataset(path):
            entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if entry.WhichOneof("log_type") != "predict_log":
                continue
            request = entry.predict_log.request
            inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            servable.run(request.model_spec.signature_name, inputs, tuple(request.output_filter))
            count += 1
        log.info("Finished reading warmup data for model at %s. Number of warmup records read: %d.", servable.path, count)

    # -- requests ------------------------------------------------------------------------------

    def resolve(self, name, version=None, label=None):
        """The version a request names: explicit, by label, or the highest available."""
        with self._lock:
            config = self.configs.get(name)
            if config is None:
                raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({name})")
            if label is not None:
                if label not in config.labels:
                    raise ServingError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
                version = config.labels[label]
            if version is None:
                versions = [v for (n, v) in self._loaded if n == name]
                if not versions:
                    raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({name})")
                return max(versions)
            if (name, version) not in self._loaded:
                raise ServingError("NOT_FOUND", f"Servable not found for request: Specific({name}, {version})")
            return version

    def acquire(self, name, version=None, label=None):
        """Returns the servable for a request and counts it as in use; pair with `release`."""
        with self._lock:
            version = self.resolve(name, version, label)
            loaded = self._loaded[(name, version)]
            loaded.users += 1
            return loaded.servable

    def release(self, servable):
        with self._lock:
            self._handles[id(servable)].users -= 1
            self._lock.notify_all()

    def status(self, name, version=None):
        """`(version, VersionStatus)` pairs of a model, newest first."""
        with self._lock:
            if name not in self.configs:
                raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
            found = sorted(((v, s) for (n, v), s in self._status.items() if n == name), reverse=True)
        if version is not None:
            found = [(v, s) for v, s in found if v == version]
            if not found:
                raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name}")
        return found

    def signature_defs(self, name, version=None, label=None):
        servable = self.acquire(name, version, label)
        try:
            return servable.version, dict(servable.signature_defs)
        finally:
            self.release(servable)

"""Which model versions are served: discovery, version policies, labels, loading and unloading.

Like TF Serving's `ServerCore` with the file-system source: each model's base
path is polled for numeric version folders (`00000123` is version 123); its
version policy picks the versions to serve (`latest` N, the default with
N = 1; `all`; `specific`); a new version is loaded, warmed up and made
available *before* the version it replaces is unloaded, and an unloaded
version is closed only once the requests using it have finished, so no
request fails during a swap. A version that fails to load is retried
(`--max_num_load_retries`, `--load_retry_interval_micros`), then reported in
the status (state END with the error) and not served; the policy then
falls back to the next version it allows. Version labels are checked as
TF Serving checks them: a label may only name a version that is available,
unless `--allow_version_labels_for_unavailable_models` lets a *new* label
name one that is not (yet). Loads and unloads run one after the other, or
in pools of `--num_load_threads` / `--num_unload_threads` threads, and are
logged with TF Serving's loader lines.
"""

import concurrent.futures
import dataclasses
import gc
import logging
import os
import re
import threading
import time

import tensorflow as tf
from tensorflow.core.protobuf import error_codes_pb2

from serving.batching import BatchingParameters
from serving.contract import WARMUP_FILE, versions_on_disk
from serving.errors import ServingError
from serving.servable import SERVE_TAG, Servable

log = logging.getLogger("recipes-model-server")
BATCHING_PARAMS_FILE = "batching_params.pbtxt"  # a version's own batching parameters (per-model batching)
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
        """From a `tensorflow_serving.config.ModelConfig` proto, whose platform TF Serving's ServerCore checks.

        Raises:
            ValueError: with ServerCore's message, when the entry names no
                platform (neither `model_platform` nor the deprecated
                `model_type`), both, or another platform than "tensorflow".
        """
        platform = config.model_platform
        if config.model_type:  # the deprecated ModelType enum: TENSORFLOW is 1
            if config.model_platform:
                raise ValueError(
                    "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                    f"ModelServerConfig::model_platform, model name is {config.name}"
                )
            if config.model_type != 1:
                raise ValueError(f"ModelServerConfig::model_type choice {config.model_type} not supported.")
            platform = "tensorflow"
        if not platform:
            raise ValueError(
                "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
                f"ModelServerConfig::model_platform, model name is {config.name}"
            )
        if platform != "tensorflow":
            raise ValueError(f"Model {config.name} requests unsupported platform {platform}")
        choice = config.model_version_policy.WhichOneof("policy_choice")
        if choice is None or choice == "latest":
            policy = ("latest", config.model_version_policy.latest.num_versions or 1)
        elif choice == "all":
            policy = ("all",)
        else:
            policy = ("specific", tuple(sorted(config.model_version_policy.specific.versions)))
        return cls(config.name, config.base_path, policy, dict(config.version_labels))


def is_relative_path(uri):
    """Whether a base path is a relative path, as ServerCore tells (TensorFlow's io::ParseURI): no scheme://, no /."""
    return not re.match(r"[A-Za-z][A-Za-z0-9.]*://", uri) and not uri.startswith("/")


def configs_from_proto(model_config_list):
    """The `ModelConfig`s of a `ModelConfigList` proto, checked as TF Serving's ServerCore checks a new config.

    Raises:
        ValueError: with ServerCore's message (ValidateModelConfigList): a
            name listed twice, a base path that is not absolute; or one of
            `ModelConfig.from_proto`'s.
    """
    _check_unique_names(model_config_list.config, ValueError)
    for config in model_config_list.config:
        if is_relative_path(config.base_path):
            raise ValueError(
                f"Expected model {config.name} to have an absolute path or URI; got base_path()={config.base_path}"
            )
    return [ModelConfig.from_proto(config) for config in model_config_list.config]


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


def _check_unique_names(configs, error):
    names = set()
    for config in configs:
        if config.name in names:
            raise error(f"Illegal to list model {config.name} multiple times in config list")
        names.add(config.name)


def _wanted(policy, available):
    if policy[0] == "all":
        return set(available)
    if policy[0] == "specific":
        return set(policy[1]) & set(available)
    return set(sorted(available)[-policy[1] :]) if available else set()


def _failure(error):
    """`(code, message)` of a failed load, the code as TF Serving's status would name it."""
    if isinstance(error, ServingError):
        return error.code, error.message
    if isinstance(error, tf.errors.OpError):
        return error_codes_pb2.Code.Name(error.error_code), error.message
    return "UNKNOWN", str(error)


class ModelManager:
    """Keeps the configured models' wanted versions loaded.

    Args:
        configs: `ModelConfig`s.
        poll_seconds: Seconds between scans of the base paths
            (`--file_system_poll_wait_seconds`); 0 scans only once, at start.
        enable_warmup: Replay `assets.extra/tf_serving_warmup_requests` when
            a version loads (`--enable_model_warmup`), defaults to `True`.
        warmup_iterations: Times each warmup request is replayed
            (`--num_request_iterations_for_warmup`), defaults to 1.
        tags: Tags of the MetaGraph to load (`--saved_model_tags`), defaults to `("serve",)`.
        session_config: Optional `tf.compat.v1.ConfigProto` for every version's
            session (`--tensorflow_*` flags, `--mixed_precision`).
        batching: Optional `serving.batching.BatchingParameters`; versions get
            them as their `batching` (`--enable_batching`).
        per_model_batching: With `batching`, a version batches with the
            parameters of its own `batching_params.pbtxt` instead, and is not
            batched without one (`--enable_per_model_batching_parameters`).
        num_load_threads: Versions loaded at once (`--num_load_threads`); 0,
            the default, loads them one after the other.
        num_unload_threads: Versions unloaded at once in the background
            (`--num_unload_threads`); 0, the default, unloads them in turn.
        max_load_retries: Retries of a failed load (`--max_num_load_retries`),
            defaults to 0 here (the command line's default is TF Serving's 5).
        load_retry_interval_seconds: Wait between retries, defaults to 60 as
            TF Serving's `--load_retry_interval_micros`; negative does not wait.
        allow_version_labels_for_unavailable_models: Let a new label name a
            version that is not available yet, defaults to `False` as in TF Serving.
        freeze_heap: After versions load or unload, collect the garbage and
            freeze what is left (`gc.freeze`), so that Python's cyclic
            collector no longer walks TensorFlow's and the versions' objects
            while serving. Defaults to `False`: it is for a process that only
            serves (`recipes-model-server`), not for a program of the user's.
    """

    def __init__(
        self,
        configs,
        poll_seconds=1.0,
        enable_warmup=True,
        *,
        warmup_iterations=1,
        tags=(SERVE_TAG,),
        session_config=None,
        batching=None,
        per_model_batching=False,
        num_load_threads=0,
        num_unload_threads=0,
        max_load_retries=0,
        load_retry_interval_seconds=60.0,
        allow_version_labels_for_unavailable_models=False,
        freeze_heap=False,
    ):
        _check_unique_names(configs, ValueError)
        self._initial_configs = list(configs)
        self.configs = {}  # set by start(), once its labels are checked
        self.poll_seconds = poll_seconds
        self.enable_warmup = enable_warmup
        self.warmup_iterations = max(1, warmup_iterations)
        self.tags = tuple(tags)
        self.session_config = session_config
        self.batching = batching
        self.per_model_batching = per_model_batching
        self.max_load_retries = max(0, max_load_retries)
        self.load_retry_interval_seconds = load_retry_interval_seconds
        self.allow_version_labels_for_unavailable_models = allow_version_labels_for_unavailable_models
        self.freeze_heap = freeze_heap
        self._load_pool = (
            concurrent.futures.ThreadPoolExecutor(num_load_threads, "load") if num_load_threads > 0 else None
        )
        self._unload_pool = (
            concurrent.futures.ThreadPoolExecutor(num_unload_threads, "unload") if num_unload_threads > 0 else None
        )
        self._loaded = {}  # (name, version) -> _Loaded, the versions requests may use
        self._handles = {}  # id(servable) -> _Loaded, until the last request using it has finished
        self._status = {}  # (name, version) -> VersionStatus
        self._without_versions = set()  # models already warned about having no version folder
        self._lock = threading.Condition()
        self._sync_lock = threading.Lock()  # one scan at a time: the poller's and a reload's
        self._heap_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self):
        """Loads the models' versions (raising if a version label is refused), then polls for new ones."""
        self.reload(self._initial_configs)
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
            self._unload(key, background=False)
        for pool in (self._load_pool, self._unload_pool):
            if pool is not None:
                pool.shutdown(wait=True)

    def reload(self, configs):
        """Replaces the model configs (`HandleReloadConfigRequest`): loads new models, unloads removed ones.

        Raises:
            ServingError: FAILED_PRECONDITION when a version label names a
                version that is not available (see the class docstring).
        """
        _check_unique_names(configs, lambda message: ServingError("INVALID_ARGUMENT", message))
        with self._sync_lock:
            with self._lock:
                self._check_labels(configs)
                self.configs = {c.name: c for c in configs}
            log.info("Adding/updating models.")
            for config in configs:
                log.info(" (Re-)adding model: %s", config.name)
            self._sync()
            log.info("Finished adding/updating models")

    def _check_labels(self, configs):
        """TF Serving's `UpdateModelVersionLabelMap` check; called with the lock held."""
        for config in configs:
            current = self.configs[config.name].labels if config.name in self.configs else {}
            for label, version in config.labels.items():
                moved = label in current and current[label] != version
                if (config.name, version) in self._loaded or (
                    self.allow_version_labels_for_unavailable_models and not moved
                ):
                    continue
                raise ServingError(
                    "FAILED_PRECONDITION",
                    f"Request to assign label to version {version} of model {config.name}, "
                    "which is not currently available for inference",
                )

    def sync(self):
        """One scan: load the wanted versions that are new, then unload the unwanted ones."""
        with self._sync_lock:
            self._sync()

    def _sync(self):
        with self._lock:
            configs = dict(self.configs)
            loaded_before = set(self._loaded)
        on_disk = {}
        for name, config in configs.items():
            on_disk[name] = versions_on_disk(config.base_path)
            if on_disk[name]:
                self._without_versions.discard(name)
            elif name not in self._without_versions:  # TF Serving warns on every scan; once is enough
                self._without_versions.add(name)
                log.warning(
                    "No versions of servable %s found under base path %s. Did you forget to name your leaf "
                    "directory as a number (eg. '/1/')?",
                    name,
                    config.base_path,
                )
        wanted, todo = {}, list(configs)
        while todo:  # a version that fails to load makes way for the next one its policy allows
            loads = []
            for name in todo:
                with self._lock:
                    failed = {v for (n, v), s in self._status.items() if n == name and s.error_code != "OK"}
                wanted[name] = _wanted(configs[name].policy, set(on_disk[name]) - failed)
                loads += [(name, v, on_disk[name][v]) for v in sorted(wanted[name]) if (name, v) not in self._loaded]
            if self._load_pool is not None and len(loads) > 1:
                list(self._load_pool.map(lambda load: self._load(*load), loads))
            else:
                for load in loads:
                    self._load(*load)
            todo = sorted({name for name, version, _ in loads if (name, version) not in self._loaded})
        for name in configs:
            with self._lock:
                serving_now = {v for (n, v) in self._loaded if n == name}
            for version in serving_now - wanted[name]:
                if serving_now & wanted[name] or not wanted[name]:
                    self._unload((name, version))
        with self._lock:
            removed = [key for key in self._loaded if key[0] not in configs]
        for key in removed:
            self._unload(key)
        with self._lock:
            changed = set(self._loaded) != loaded_before
        if changed:
            self._settle_heap()

    def _settle_heap(self):
        """With `freeze_heap`: the garbage collected and the rest frozen, once the served versions changed.

        Under load, a full collection walked the 400,000 objects of a server
        holding the LSTM text model for about 0.2 s, every few seconds, holding
        the interpreter lock all that time; with them frozen, the collector walks
        only the young objects that requests make. A full collection here costs
        that pause once per change of versions; one unfreezes first, so that the
        objects of an unloaded version can be collected.
        """
        if not self.freeze_heap:
            return
        with self._heap_lock:
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    def _load(self, name, version, folder):
        """Loads a version, retrying as TF Serving's loader harness does; a failure ends in the status."""
        key, servable_id = (name, version), f"{{name: {name} version: {version}}}"
        with self._lock:
            self._status[key] = VersionStatus(LOADING)
        log.info("Approving load for servable version %s", servable_id)
        log.info("Loading servable version %s", servable_id)
        description = f"Loading servable: {servable_id}"
        for attempt in range(self.max_load_retries + 1):
            if attempt:
                if self.load_retry_interval_seconds > 0 and self._stop.wait(self.load_retry_interval_seconds):
                    log.info("Retrying of %s was cancelled.", description)
                    break
                log.info("Retrying of %s retry: %d", description, attempt)
            try:
                servable = self._new_servable(name, version, folder)
            except Exception as error:  # reported in the status; the model keeps its other versions
                code, message = _failure(error)
                log.error("%s failed: %s: %s", description, code, message)
                with self._lock:
                    still_wanted = name in self.configs and not self._stop.is_set()
                if not still_wanted:
                    log.info("Retrying of %s was cancelled.", description)
                    break
                continue
            with self._lock:
                self._loaded[key] = self._handles[id(servable)] = _Loaded(servable)
                self._status[key] = VersionStatus(AVAILABLE)
            log.info("Successfully loaded servable version %s", servable_id)
            return
        else:
            log.info("Retrying of %s exhausted max_num_retries: %d", description, self.max_load_retries)
        log.info("Encountered an error for servable version %s: %s: %s", servable_id, code, message)
        with self._lock:
            self._status[key] = VersionStatus(END, code, message.splitlines()[0][:2000])

    def _new_servable(self, name, version, folder):
        servable = Servable(name, version, folder, tags=self.tags, session_config=self.session_config)
        try:
            if self.batching is not None and not self.per_model_batching:
                servable.batching = self.batching
            elif self.batching is not None and os.path.exists(os.path.join(folder, BATCHING_PARAMS_FILE)):
                with open(os.path.join(folder, BATCHING_PARAMS_FILE)) as f:
                    servable.batching = BatchingParameters.from_text(f.read())
            if self.enable_warmup:
                self._warm_up(servable)
        except BaseException:
            servable.close()
            raise
        return servable

    def _unload(self, key, background=True):
        """Stops serving a version now; it is closed once its last request has finished."""
        with self._lock:
            loaded = self._loaded.pop(key, None)
            if loaded is None:
                return
            self._status[key] = VersionStatus(UNLOADING)
        if background and self._unload_pool is not None:
            # closed after the scan that unloaded it has settled the heap: this close settles it again (a close in
            # the scan's own thread is settled by the scan)
            self._unload_pool.submit(self._close, key, loaded, settle_heap=True)
        else:
            self._close(key, loaded)

    def _close(self, key, loaded, settle_heap=False):
        servable_id = "{name: %s version: %d}" % key
        log.info("Quiescing servable version %s", servable_id)
        with self._lock:
            while loaded.users:
                self._lock.wait()
            del self._handles[id(loaded.servable)]
        log.info("Done quiescing servable version %s", servable_id)
        log.info("Unloading just-loaded servable version %s", servable_id)  # TF Serving's words for any unload
        loaded.servable.close()
        # The unload pool's task holds `loaded` until this returns: the closed version must not stay reachable
        # through it when the heap settles below, or it would be frozen for good.
        loaded.servable = None
        with self._lock:
            self._status[key] = VersionStatus(END)
        log.info("Done unloading servable version %s", servable_id)
        if settle_heap:
            self._settle_heap()

    def _warm_up(self, servable):
        path = os.path.join(servable.path, WARMUP_FILE)
        if not os.path.exists(path):
            log.info("No warmup data file found at %s", path)
            return
        from tensorflow_serving.apis import prediction_log_pb2

        from serving.tensors import to_array

        options = f"num_request_iterations {{ value: {self.warmup_iterations} }}" if self.warmup_iterations > 1 else ""
        log.info("Starting to read warmup data for model at %s with model-warmup-options %s", path, options)
        started, count = time.perf_counter(), 0
        for record in tf.data.TFRecordDataset(path):
            entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if entry.WhichOneof("log_type") != "predict_log":
                continue
            request = entry.predict_log.request
            inputs = {name: to_array(proto) for name, proto in request.inputs.items()}
            for _ in range(self.warmup_iterations):
                servable.run(request.model_spec.signature_name, inputs, tuple(request.output_filter))
            count += 1
        log.info(
            "Finished reading warmup data for model at %s. Number of warmup records read: %d. "
            "Elapsed time (microseconds): %d.",
            path,
            count,
            (time.perf_counter() - started) * 1e6,
        )

    # -- requests ------------------------------------------------------------------------------

    def resolve(self, name, version=None, label=None):
        """The version a request names: explicit, by label, or the highest available."""
        with self._lock:
            config = self.configs.get(name)
            if label is not None:  # ServerCore looks the label up first, by model name
                if config is None or label not in config.labels:
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
        """`(version, VersionStatus)` pairs of a model, newest first, as TF Serving's servable state monitor has them.

        Every version ever seen is listed, with its last state (get_model_status_impl.cc); a model
        with no version loaded, loading or failed yet is NOT_FOUND.
        """
        with self._lock:
            found = sorted(((v, s) for (n, v), s in self._status.items() if n == name), reverse=True)
        if version is not None:
            found = [(v, s) for v, s in found if v == version]
            if not found:
                raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name}")
        elif not found:
            raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
        return found

    def signature_defs(self, name, version=None, label=None):
        servable = self.acquire(name, version, label)
        try:
            return servable.version, dict(servable.signature_defs)
        finally:
            self.release(servable)

"""TF Serving's gRPC services (`tensorflow_serving.apis`): PredictionService and ModelService.

Errors are returned with TF Serving's canonical status codes (NOT_FOUND,
INVALID_ARGUMENT, FAILED_PRECONDITION, ...) and a message naming the problem.

The server is grpcio's asyncio server (`GrpcServer`). Predict runs on its
event loop up to the batch scheduler's queue, so concurrent calls reach the
scheduler together; the other calls, and Predict runs that are not batched,
run in a pool of `--grpc_max_threads` threads.
"""

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import math
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
    status_pb2,
)


from serving import tensors
from serving.errors import ServingError
from serving.service import CLASSIFY_METHOD

log = logging.getLogger("recipes-model-server")
MAX_MESSAGE_BYTES = 2**31 - 1  # the largest request; no request tensor may expand to more


def _model_spec(request):
    """The request's model spec, which TF Serving requires."""
    if not request.HasField("model_spec"):
        raise ServingError("INVALID_ARGUMENT", "Missing ModelSpec")
    return request.model_spec


def _spec(model_spec):
    version = model_spec.version.value if model_spec.HasField("version") else None
    label = model_spec.version_label or None
    return model_spec.name, version, label


def _servable_spec(model_spec):
    """`_spec` of a spec that selects a servable to run, which TF Serving's ServerCore refuses without a name."""
    if not model_spec.name:
        raise ServingError("INVALID_ARGUMENT", "ModelSpec has no name specified.")
    return _spec(model_spec)


def _fill_spec(target, name, version, signature_name):
    target.name = name
    target.version.value = version
    target.signature_name = signature_name


# The calls TF Serving's PredictionServiceImpl counts in its metrics, under their RPC names (the API label
# "Predict", where REST's is the URL's "predict"): not GetModelMetadata nor MultiInference.
_METERED_APIS = {"Predict", "Classify", "Regress"}


def _status(error):
    """The gRPC status code name and message a failed call answers with."""
    if isinstance(error, ServingError):
        return error.code, error.message
    if isinstance(error, ValueError):  # a tensor proto numpy cannot read
        return "INVALID_ARGUMENT", str(error)
    # a bug answers INTERNAL, as REST answers 500, never gRPC's UNKNOWN
    log.error("request failed", exc_info=error)
    return "INTERNAL", f"internal error: {type(error).__name__}: {error}"


def _rpc(method):
    """A servicer method as a grpc.aio handler: errors answered with their status, calls counted in the metrics.

    A method written as a coroutine runs on the server's event loop; any
    other runs in the server's thread pool, so a blocking call never holds
    up the loop. At most `--grpc_max_threads` calls are under way at once
    (the servicer's `slots`); more wait, as they wait for one of TF
    Serving's gRPC threads.
    """
    api = method.__name__
    is_coroutine = inspect.iscoroutinefunction(method)

    async def handler(self, request, context):
        started, status = time.perf_counter(), "CANCELLED"  # unless the call ends otherwise
        try:
            async with self.slots:
                if is_coroutine:
                    response = await method(self, request, context)
                else:
                    response = await asyncio.get_running_loop().run_in_executor(
                        self.executor, method, self, request, context
                    )
            status = "OK"
            return response
        except Exception as error:  # answered below, out of this block: abort raises grpc.aio's AbortError
            status, message = _status(error)
        finally:
            metrics = getattr(self, "metrics", None)
            model_spec = getattr(request, "model_spec", None)
            if metrics is not None and model_spec is not None and api in _METERED_APIS:
                metrics.observe_request(model_spec.name, api, "GRPC", status, time.perf_counter() - started)
        await context.abort(getattr(grpc.StatusCode, status), message)

    handler.__name__ = method.__name__
    return handler


def _timeout_ms(context):
    """The client's deadline as a session run timeout, as TF Serving sets one for every PredictionService call."""
    remaining = context.time_remaining()  # without a deadline gRPC reports ~forever
    # In whole seconds: gRPC ends the call at the deadline anyway, and requests with equal timeouts share
    # one session callable and one batching queue (to the millisecond, every request would get its own).
    return max(1, math.ceil(remaining)) * 1000 if remaining is not None and remaining < 86_400 else None


def _element_bytes():
    """dtype enum -> bytes an element takes in memory (8 for a string: a pointer), for every dtype a request can carry.

    Not reference dtypes, resources or variants: those are never sent.
    """
    sizes = {}
    for enum in types_pb2.DataType.values():
        try:
            dtype = tf.dtypes.as_dtype(enum)
        except TypeError:
            continue
        if not dtype._is_ref_dtype and dtype not in (tf.resource, tf.variant):
            sizes[enum] = 8 if dtype == tf.string else dtype.size
    return sizes


_ELEMENT_BYTES = _element_bytes()


def _input_array(name, proto):
    """A request's TensorProto as a NumPy array, read as TensorFlow's `Tensor::FromProto` reads it.

    A dtype that cannot travel in a request, a shape that is not fully
    defined, or one too large for what a request can carry (a few values with
    a huge shape expand to fill it) fails as TF Serving fails it, with
    "tensor parsing error", before anything is allocated.
    """

    def refuse(problem):
        raise ServingError("INVALID_ARGUMENT", f"tensor parsing error: {name}: {problem}")

    element_bytes = _ELEMENT_BYTES.get(proto.dtype)
    if element_bytes is None:
        try:
            tf.dtypes.as_dtype(proto.dtype)
        except TypeError:
            refuse(f"unknown dtype {proto.dtype}")
        refuse(f"dtype {types_pb2.DataType.Name(proto.dtype)} cannot be sent in a request")
    dims = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank:
        refuse("the shape has an unknown rank")
    if any(d < 0 for d in dims):
        refuse(f"shape {dims}: every dimension must be >= 0")
    elements = math.prod(dims)
    if elements * element_bytes > MAX_MESSAGE_BYTES:
        refuse(f"shape {dims} holds {elements} elements, more than a request of {MAX_MESSAGE_BYTES} bytes can carry")
    try:
        return tensors.to_array(proto)
    except Exception as error:  # values that do not fit the dtype or the shape
        refuse(f"{types_pb2.DataType.Name(proto.dtype)} values do not make a tensor of shape {dims}: {error}")


def _examples(request_input):
    """The serialized tf.Examples of an `Input`, as TF Serving's InputToSerializedExampleTensor makes them.

    With a context, each example is the context's bytes followed by the
    example's: parsed, the example's features override the context's.
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [e.SerializeToString() for e in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        context = request_input.example_list_with_context.context.SerializeToString()
        examples = [context + e.SerializeToString() for e in request_input.example_list_with_context.examples]
    else:
        examples = []
    return np.array(examples, dtype=object)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TF Serving's PredictionService over a `Service`.

    Args:
        service: The `serving.service.Service`.
        metrics: Optional `serving.metrics.Metrics`.
        enable_serialization_as_tensor_content: `--enable_serialization_as_tensor_content`:
            Predict answers with each output's memory in `tensor_content`
            instead of the typed fields (`float_val`, `string_val`, ...) that
            TF Serving fills by default and its example clients read.
        executor: The thread pool running the calls that block (`None`: the event loop's default).
        slots: Optional `asyncio.Semaphore` bounding the calls under way (`GrpcServer.slots`).
    """

    def __init__(self, service, metrics=None, enable_serialization_as_tensor_content=False, executor=None, slots=None):
        self.service = service
        self.metrics = metrics
        self.enable_serialization_as_tensor_content = enable_serialization_as_tensor_content
        self.executor = executor
        self.slots = slots or contextlib.nullcontext()

    @_rpc
    async def Predict(self, request, context):  # noqa: N802 - the proto's names
        # On the event loop up to the scheduler's queue (or the pool, for a run that is not batched), so that
        # concurrent requests reach the queue together; the loop answers when the batch thread is done.
        name, version, label = _servable_spec(_model_spec(request))
        inputs = {key: _input_array(key, proto) for key, proto in request.inputs.items()}
        future = self.service.predict_future(
            name,
            version,
            label,
            request.model_spec.signature_name,
            inputs,
            tuple(request.output_filter),
            timeout_ms=_timeout_ms(context),
            executor=self.executor,
        )
        version, signature_name, outputs = await asyncio.wrap_future(future)
        response = predict_pb2.PredictResponse()
        _fill_spec(response.model_spec, name, version, signature_name)
        for key, value in outputs.items():
            tensors.to_proto(value, self.enable_serialization_as_tensor_content, response.outputs[key])
        return response

    @staticmethod
    def _classification_result(classes, scores):
        result = classification_pb2.ClassificationResult()
        rows, width = (scores if scores is not None else classes).shape[:2]
        for i in range(rows):
            classifications = result.classifications.add()
            for j in range(width):
                klass = classifications.classes.add()
                if classes is not None:
                    klass.label = classes[i][j].decode("utf-8", "replace")
                if scores is not None:
                    klass.score = float(scores[i][j])
        return result

    @staticmethod
    def _regression_result(values):
        result = regression_pb2.RegressionResult()
        for value in values.tolist():
            result.regressions.add().value = value
        return result

    @_rpc
    def Classify(self, request, context):  # noqa: N802
        name, version, label = _servable_spec(_model_spec(request))
        version, signature_name, classes, scores = self.service.classify(
            name, version, label, request.model_spec.signature_name, _examples(request.input), _timeout_ms(context)
        )
        response = classification_pb2.ClassificationResponse(result=self._classification_result(classes, scores))
        _fill_spec(response.model_spec, name, version, signature_name)
        return response

    @_rpc
    def Regress(self, request, context):  # noqa: N802
        name, version, label = _servable_spec(_model_spec(request))
        version, signature_name, values = self.service.regress(
            name, version, label, request.model_spec.signature_name, _examples(request.input), _timeout_ms(context)
        )
        response = regression_pb2.RegressionResponse(result=self._regression_result(values))
        _fill_spec(response.model_spec, name, version, signature_name)
        return response

    @_rpc
    def MultiInference(self, request, context):  # noqa: N802
        # TF Serving serves the version the first task names (an empty spec without tasks, refused for its name)
        first = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
        name, version, label = _servable_spec(first)
        tasks = [(task.model_spec.name, task.model_spec.signature_name, task.method_name) for task in request.tasks]
        version, results = self.service.multi_inference(
            name, version, label, tasks, _examples(request.input), _timeout_ms(context)
        )
        response = inference_pb2.MultiInferenceResponse()
        for task, (method, signature_name, values) in zip(request.tasks, results):
            result = response.results.add()
            if method == CLASSIFY_METHOD:
                result.classification_result.CopyFrom(self._classification_result(*values))
            else:
                result.regression_result.CopyFrom(self._regression_result(values))
            _fill_spec(result.model_spec, task.model_spec.name, version, signature_name)
        return response

    @_rpc
    def GetModelMetadata(self, request, context):  # noqa: N802
        model_spec = _model_spec(request)
        if not request.metadata_field:
            raise ServingError("INVALID_ARGUMENT", "GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise ServingError("INVALID_ARGUMENT", f"Metadata field {field} is not supported")
        name, version, label = _servable_spec(model_spec)
        version, signature_map = self.service.metadata(name, version, label)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        _fill_spec(response.model_spec, name, version, "")
        response.metadata["signature_def"].Pack(signature_map)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, service, reload_config, executor=None, slots=None):
        self.service = service
        self.reload_config = reload_config
        self.executor = executor
        self.slots = slots or contextlib.nullcontext()

    @_rpc
    def GetModelStatus(self, request, context):  # noqa: N802
        if not request.HasField("model_spec"):
            raise ServingError("INVALID_ARGUMENT", "Missing ModelSpec")
        name, version, _ = _spec(request.model_spec)  # get_model_status_impl.cc: a label does not narrow the status
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, status in self.service.manager.status(name, version):
            entry = response.model_version_status.add()
            entry.version = number
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(status.state)
            entry.status.error_code = error_codes_pb2.Code.Value(status.error_code)
            entry.status.error_message = status.error_message
        return response

    @_rpc
    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        self.reload_config(request.config)
        return model_management_pb2.ReloadConfigResponse(status=status_pb2.StatusProto(error_code=0))


class GrpcServer:
    """A grpc.aio server running on an event loop in a thread of its own, started and stopped from any thread.

    grpcio's synchronous server hands each call to a pool thread through a
    Python polling thread; profiled at 64 concurrent calls, that hand-off
    held the interpreter lock about half the time, five times as long as
    Predict's own work, so requests reached the batch scheduler a few at a
    time. On the event loop, calls are received, decoded and answered in one
    thread, and only the work that blocks runs in the pool.

    Args:
        max_workers: Threads for the calls that block (`--grpc_max_threads`);
            more such calls wait for one.
        options: gRPC server arguments, `(key, value)` pairs.
    """

    def __init__(self, max_workers, options):
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc")
        self.slots = asyncio.Semaphore(max_workers)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="grpc-loop", daemon=True)
        self._thread.start()

        async def create():
            return grpc.aio.server(migration_thread_pool=self.executor, options=options)

        try:
            self.server = self._wait(create())
        except BaseException:  # options grpcio refuses: no loop thread left behind
            self._stop_loop()
            raise

    def _wait(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def add_port(self, listener, credentials=None):
        """Listens on `listener` ("host:port" or "unix:path"); returns the port bound, 0 when it cannot bind."""

        async def add():
            try:
                if credentials is not None:
                    return self.server.add_secure_port(listener, credentials)
                return self.server.add_insecure_port(listener)
            except RuntimeError:  # grpcio's "Failed to bind"
                return 0

        return self._wait(add())

    def start(self):
        self._wait(self.server.start())

    def stop(self, grace=None):
        """Stops taking calls, lets those under way finish for `grace` seconds, and stops the loop's thread."""
        if self._thread.is_alive():
            self._wait(self.server.stop(grace))
            self._stop_loop()

    def _stop_loop(self):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self.executor.shutdown(wait=False)


def serve_grpc(
    address,
    service,
    reload_config,
    max_workers=16,
    metrics=None,
    *,
    socket_path=None,
    credentials=None,
    options=(),
    health=None,
    enable_serialization_as_tensor_content=False,
):
    """Starts the gRPC server; returns it (a `GrpcServer`) and its TCP port.

    Args:
        address: "host:port" to listen on ("127.0.0.1:8500"; port 0 picks a free
            one), or `None` for no TCP listener (`--port=0` with `--grpc_socket_path`).
        service: The `serving.service.Service`.
        reload_config: `HandleReloadConfigRequest`'s callable.
        max_workers: Threads answering calls (`--grpc_max_threads`).
        metrics: Optional `serving.metrics.Metrics`.
        socket_path: Also listen on this unix socket (`--grpc_socket_path`).
        credentials: `grpc.ServerCredentials` of the listeners (TLS from
            `--ssl_config_file`, ALTS); `None` listens without.
        options: gRPC channel arguments, `(key, value)` pairs
            (`--grpc_channel_arguments`); the message size limits are set
            after them, as TF Serving's ServerBuilder sets them.
        health: Optional `serving.health.HealthService` (`--enable_grpc_healthcheck_service`).
        enable_serialization_as_tensor_content: Predict answers in `tensor_content`
            instead of the typed fields (`--enable_serialization_as_tensor_content`).
    """
    server = GrpcServer(
        max_workers,
        [
            *options,
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(service, metrics, enable_serialization_as_tensor_content, server.executor, server.slots),
        server.server,
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelService(service, reload_config, server.executor, server.slots), server.server
    )
    if health is not None:
        server.server.add_generic_rpc_handlers((health.handler(),))  # synchronous handlers: run in the pool
    port = None
    try:
        for listener in [address, f"unix:{socket_path}" if socket_path else None]:
            if listener is None:
                continue
            bound = server.add_port(listener, credentials)
            if bound == 0:
                raise OSError(f"cannot bind gRPC to {listener}")
            port = bound if listener == address else port
        server.start()
    except BaseException:
        server.stop()
        raise
    return server, port

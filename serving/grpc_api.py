"""TF Serving's gRPC services (`tensorflow_serving.apis`): PredictionService and ModelService.

Errors are returned with TF Serving's canonical status codes (NOT_FOUND,
INVALID_ARGUMENT, FAILED_PRECONDITION, ...) and a message naming the problem.
"""

import concurrent.futures
import logging
import math
import re
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


# The calls TF Serving's PredictionServiceImpl counts in its metrics: not GetModelMetadata nor MultiInference.
_METERED_APIS = {"predict", "classify", "regress"}


def _abort_on_error(method):
    api = re.sub(r"(?<!^)(?=[A-Z])", "_", method.__name__).lower()  # GetModelMetadata -> get_model_metadata

    def wrapper(self, request, context):
        started, status = time.perf_counter(), "OK"
        try:
            return method(self, request, context)
        except ServingError as error:
            status = error.code
            context.abort(getattr(grpc.StatusCode, error.code), error.message)
        except ValueError as error:  # a tensor proto numpy cannot read
            status = "INVALID_ARGUMENT"
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except Exception as error:  # a bug answers INTERNAL, as REST answers 500, never gRPC's UNKNOWN
            status = "INTERNAL"
            log.exception("request failed")
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}: {error}")
        finally:
            metrics = getattr(self, "metrics", None)
            model_spec = getattr(request, "model_spec", None)
            if metrics is not None and model_spec is not None and api in _METERED_APIS:
                metrics.observe_request(model_spec.name, api, "GRPC", status, time.perf_counter() - started)

    wrapper.__name__ = method.__name__
    return wrapper


def _timeout_ms(context):
    """The client's deadline as a session run timeout, as TF Serving sets one for every PredictionService call."""
    remaining = context.time_remaining()  # without a deadline gRPC reports ~forever
    # In whole seconds: gRPC ends the call at the deadline anyway, and requests with equal timeouts share
    # one session callable and one batching queue (to the millisecond, every request would get its own).
    return max(1, math.ceil(remaining)) * 1000 if remaining is not None and remaining < 86_400 else None


def _input_array(name, proto):
    """A request's TensorProto as a NumPy array, read as TensorFlow's `Tensor::FromProto` reads it.

    A dtype that cannot travel in a request, a shape that is not fully
    defined, or one too large for what a request can carry (a few values with
    a huge shape expand to fill it) fails as TF Serving fails it, with
    "tensor parsing error", before anything is allocated.
    """

    def refuse(problem):
        raise ServingError("INVALID_ARGUMENT", f"tensor parsing error: {name}: {problem}")

    try:
        dtype = tf.dtypes.as_dtype(proto.dtype)
    except TypeError:
        refuse(f"unknown dtype {proto.dtype}")
    if dtype._is_ref_dtype or dtype in (tf.resource, tf.variant):
        refuse(f"dtype {types_pb2.DataType.Name(proto.dtype)} cannot be sent in a request")
    dims = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank:
        refuse("the shape has an unknown rank")
    if any(d < 0 for d in dims):
        refuse(f"shape {dims}: every dimension must be >= 0")
    elements = math.prod(dims)
    if elements * (8 if dtype == tf.string else dtype.size) > MAX_MESSAGE_BYTES:  # 8: a pointer per string
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
    """

    def __init__(self, service, metrics=None, enable_serialization_as_tensor_content=False):
        self.service = service
        self.metrics = metrics
        self.enable_serialization_as_tensor_content = enable_serialization_as_tensor_content

    @_abort_on_error
    def Predict(self, request, context):  # noqa: N802 - the proto's names
        name, version, label = _servable_spec(_model_spec(request))
        inputs = {key: _input_array(key, proto) for key, proto in request.inputs.items()}
        version, signature_name, outputs = self.service.predict(
            name,
            version,
            label,
            request.model_spec.signature_name,
            inputs,
            tuple(request.output_filter),
            timeout_ms=_timeout_ms(context),
        )
        response = predict_pb2.PredictResponse()
        _fill_spec(response.model_spec, name, version, signature_name)
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tensors.to_proto(value, self.enable_serialization_as_tensor_content))
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

    @_abort_on_error
    def Classify(self, request, context):  # noqa: N802
        name, version, label = _servable_spec(_model_spec(request))
        version, signature_name, classes, scores = self.service.classify(
            name, version, label, request.model_spec.signature_name, _examples(request.input), _timeout_ms(context)
        )
        response = classification_pb2.ClassificationResponse(result=self._classification_result(classes, scores))
        _fill_spec(response.model_spec, name, version, signature_name)
        return response

    @_abort_on_error
    def Regress(self, request, context):  # noqa: N802
        name, version, label = _servable_spec(_model_spec(request))
        version, signature_name, values = self.service.regress(
            name, version, label, request.model_spec.signature_name, _examples(request.input), _timeout_ms(context)
        )
        response = regression_pb2.RegressionResponse(result=self._regression_result(values))
        _fill_spec(response.model_spec, name, version, signature_name)
        return response

    @_abort_on_error
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

    @_abort_on_error
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
    def __init__(self, service, reload_config):
        self.service = service
        self.reload_config = reload_config

    @_abort_on_error
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

    @_abort_on_error
    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        self.reload_config(request.config)
        return model_management_pb2.ReloadConfigResponse(status=status_pb2.StatusProto(error_code=0))


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
    """Starts the gRPC server; returns it and its TCP port.

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
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=max_workers),
        options=[
            *options,
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(service, metrics, enable_serialization_as_tensor_content), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(service, reload_config), server)
    if health is not None:
        server.add_generic_rpc_handlers((health.handler(),))
    port = None
    for listener in [address, f"unix:{socket_path}" if socket_path else None]:
        if listener is None:
            continue
        try:
            bound = server.add_secure_port(listener, credentials) if credentials else server.add_insecure_port(listener)
        except RuntimeError:  # grpcio's "Failed to bind"
            bound = 0
        if bound == 0:
            raise OSError(f"cannot bind gRPC to {listener}")
        port = bound if listener == address else port
    server.start()
    return server, port

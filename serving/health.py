"""gRPC's standard health service, `grpc.health.v1.Health`, as TF Serving turns it on.

With `--enable_grpc_healthcheck_service`, TF Serving enables gRPC's default
health check service and marks "ModelService" and "PredictionService"
SERVING; the server as a whole (service "") is SERVING from the start.
`Check` of another name fails with NOT_FOUND, `Watch` streams the status
(SERVICE_UNKNOWN for another name) and its changes, and every service turns
NOT_SERVING when the server shuts down. Kubernetes' gRPC probes and
`grpc_health_probe` ask this service.
"""

import threading

import grpc

from serving.protos import message_classes

_messages = message_classes("""
    name: "grpc/health/v1/health.proto"
    package: "grpc.health.v1"
    syntax: "proto3"
    message_type {
      name: "HealthCheckRequest"
      field { name: "service" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
    }
    message_type {
      name: "HealthCheckResponse"
      field { name: "status" number: 1 type: TYPE_ENUM label: LABEL_OPTIONAL
              type_name: ".grpc.health.v1.HealthCheckResponse.ServingStatus" }
      enum_type {
        name: "ServingStatus"
        value { name: "UNKNOWN" number: 0 }
        value { name: "SERVING" number: 1 }
        value { name: "NOT_SERVING" number: 2 }
        value { name: "SERVICE_UNKNOWN" number: 3 }
      }
    }
""")
HealthCheckRequest = _messages["HealthCheckRequest"]
HealthCheckResponse = _messages["HealthCheckResponse"]
SERVING, NOT_SERVING, SERVICE_UNKNOWN = (
    HealthCheckResponse.ServingStatus.Value(n) for n in ("SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")
)
SERVICE_NAME = "grpc.health.v1.Health"


class HealthService:
    """The statuses of the server's gRPC services, answered as `grpc.health.v1.Health`.

    Args:
        services: Names marked SERVING besides "" (TF Serving's are
            "ModelService" and "PredictionService").
    """

    def __init__(self, services=("ModelService", "PredictionService")):
        self._statuses = {name: SERVING for name in ("", *services)}
        self._changed = threading.Condition()
        self._shut_down = False

    def shutdown(self):
        """Every service NOT_SERVING from now on, as gRPC's default service does when its server shuts down."""
        with self._changed:
            self._shut_down = True
            self._statuses = dict.fromkeys(self._statuses, NOT_SERVING)
            self._changed.notify_all()

    def check(self, request, context):
        status = self._statuses.get(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "service name unknown")
        return HealthCheckResponse(status=status)

    def watch(self, request, context):
        ended = threading.Event()  # the client left or the call's deadline passed
        context.add_callback(ended.set)  # both grpcio servers have it; the asyncio one has no is_active()
        sent = None
        while not ended.is_set():
            with self._changed:
                status = self._statuses.get(request.service, SERVICE_UNKNOWN)
                if status == sent:
                    if self._shut_down:
                        return
                    self._changed.wait(timeout=1.0)  # and look again whether the client is still there
                    continue
            sent = status
            yield HealthCheckResponse(status=status)

    def handler(self):
        """The generic handler to add to a `grpc.Server`."""
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Check": grpc.unary_unary_rpc_method_handler(
                    self.check, HealthCheckRequest.FromString, HealthCheckResponse.SerializeToString
                ),
                "Watch": grpc.unary_stream_rpc_method_handler(
                    self.watch, HealthCheckRequest.FromString, HealthCheckResponse.SerializeToString
                ),
            },
        )

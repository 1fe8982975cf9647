"""The one error type of the serving path, with TF Serving's status codes for gRPC and HTTP."""

from tensorflow.core.protobuf import error_codes_pb2

# TF Serving's mapping of canonical status codes to HTTP (ToHTTPStatusCode in model_servers/http_server.cc).
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


class ServingError(Exception):
    """A request that cannot be served, with a canonical status code.

    Args:
        code: A canonical code name such as `"INVALID_ARGUMENT"`, or the
            integer code of a `tf.errors.OpError`.
        message: What was wrong, for the client.
    """

    def __init__(self, code, message):
        if isinstance(code, int):
            code = error_codes_pb2.Code.Name(code)
        if code not in HTTP_STATUS:
            raise ValueError(f"unknown status code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self):
        return HTTP_STATUS[self.code]

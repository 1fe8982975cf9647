"""TF Serving's REST API (api_rest.md) over the standard library's threading HTTP server.

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            model status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature defs
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    row or columnar tensors
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:classify   tf.Examples as JSON
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:regress

Every failure is answered with JSON `{"error": "..."}` and TF Serving's HTTP
status for its canonical code (400 for bad requests, 404 for unknown models
and versions); nothing a client sends takes the server down.
"""

import http.server
import json
import logging
import os
import re
import socket
import threading
import time

from google.protobuf import json_format

from serving import rest_json
from serving.errors import ServingError

log = logging.getLogger("recipes-model-server")
MAX_BODY_BYTES = 64 * 1024 * 1024
_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>-?\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<rest>/metadata|:predict|:classify|:regress)?/?$"
)
_LENGTH = re.compile(r"[0-9]{1,18}")  # ASCII digits only: str.isdigit() also takes "²", which int() refuses


def status_body(manager, name, version):
    return {
        "model_version_status": [
            {
                "version": str(v),
                "state": status.state,
                "status": {"error_code": status.error_code, "error_message": status.error_message},
            }
            for v, status in manager.status(name, version)
        ]
    }


def metadata_body(service, name, version, label):
    version, signature_map = service.metadata(name, version, label)
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {
            "signature_def": json_format.MessageToDict(
                signature_map, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
        },
    }


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "recipes-model-server"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: Nagle would hold the body ~40 ms

    @property
    def timeout(self):  # read by StreamRequestHandler.setup for the connection's socket timeout
        return self.server.read_timeout_seconds

    def log_message(self, format, *args):  # noqa: A002 - the signature of BaseHTTPRequestHandler
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status, body):
        data = json.dumps(body, indent=4).encode("utf-8") + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self._send_cors_headers()
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a bad request line or headers, another method) answer JSON too."""
        if code == http.HTTPStatus.NOT_IMPLEMENTED:  # a method other than GET and POST, answered as a malformed path
            code, message = http.HTTPStatus.NOT_FOUND, f"Malformed request: {self.command} {self.path}"
            if "Content-Length" in self.headers:
                try:
                    self._body()  # read and dropped, so that closing the connection does not reset it
                except ServingError:
                    pass
        self.close_connection = True
        self._send(code, {"error": message or http.HTTPStatus(code).phrase})

    def _route(self):
        match = _PATH.match(self.path.split("?")[0])
        if not match:
            raise ServingError("NOT_FOUND", f"Malformed request: {self.command} {self.path}")
        version = match["version"]
        if version is not None:
            if len(version) > 20 or not -(2**63) <= int(version) < 2**63:  # int() refuses 4300+ digits
                raise ServingError("INVALID_ARGUMENT", f"Failed to convert version: {version} to numeric.")
            version = int(version)
        return match["name"], version, match["label"], match["rest"] or ""

    def _handle(self, answer, api=None):
        started, status = time.perf_counter(), "OK"
        try:
            self._send(200, self.server.process(answer))
        except ServingError as error:
            status = error.code
            self._send(error.http_status, {"error": error.message})
        except Exception as error:  # a bug must answer 500, never kill the server
            status = "INTERNAL"
            log.exception("request failed")
            self._send(500, {"error": f"internal error: {type(error).__name__}: {error}"})
        match = _PATH.match(self.path.split("?")[0])
        if self.server.metrics is not None and api and match:
            self.server.metrics.observe_request(match["name"], api, "REST", status, time.perf_counter() - started)

    def _send_cors_headers(self):
        if self.server.cors:  # --rest_api_enable_cors_support: TF Serving's three headers on every API answer
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Methods", "POST, GET")
            self.send_header("Access-Control-Allow-Headers", "Content-Type")

    def do_OPTIONS(self):  # noqa: N802 - a browser's CORS preflight, answered as TF Serving answers it
        if not self.path.lower().startswith("/v1/"):
            self.send_error(http.HTTPStatus.NOT_IMPLEMENTED)
            return
        if "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
            try:
                self._body()  # read and dropped: left unread, it would be taken for the next request
            except ServingError:
                pass
        if not re.search(r"https?://", self.headers.get("Origin", "")):
            self._send(400, {"error": "Origin header is missing in CORS preflight"})
            return
        self.send_response(200)
        self._send_cors_headers()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.server.metrics is not None and self.path.split("?")[0] == self.server.metrics_path:
            data = self.server.metrics.render()
            self.send_response(200)
            self.send_header("Content-Type", self.server.metrics.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return

        def answer():
            if "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
                self._body()  # read and dropped: left unread, it would be taken for the next request
            name, version, label, rest = self._route()
            if rest == "/metadata":
                return metadata_body(self.server.service, name, version, label)
            if rest:
                raise ServingError("INVALID_ARGUMENT", f"{rest[1:]} needs POST")
            if label is not None:
                version = self.server.service.manager.resolve(name, None, label)
            return status_body(self.server.service.manager, name, version)

        self._handle(answer)

    def _body(self):
        length = self.headers.get("Content-Length")
        if length is None or not _LENGTH.fullmatch(length):
            self.close_connection = True  # the body, if any, is left unread
            raise ServingError("INVALID_ARGUMENT", "the request needs a Content-Length header of at most 18 digits")
        if int(length) > self.server.max_body_bytes:
            remaining = int(length)
            try:
                while remaining > 0:  # drained, never stored, so that the client reads the answer
                    remaining -= len(self.rfile.read(min(remaining, 1 << 20)) or b"x" * remaining)
            except TimeoutError:
                self.close_connection = True
            raise ServingError(
                "INVALID_ARGUMENT",
                f"request body of {int(length)} bytes exceeds the limit of {self.server.max_body_bytes} bytes",
            )
        try:
            body = self.rfile.read(int(length))
        except TimeoutError:
            body = b""
        if len(body) < int(length):
            self.close_connection = True
            raise ServingError(
                "INVALID_ARGUMENT",
                f"the request body ended after {len(body)} of its {int(length)} bytes (Content-Length)",
            )
        return body

    def do_POST(self):  # noqa: N802
        def answer():
            raw = self._body()  # read first, so that the connection stays in step whatever the answer
            name, version, label, rest = self._route()
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError) as error:  # also bad UTF-8, and integers of 4300+ digits
                raise ServingError("INVALID_ARGUMENT", f"JSON Parse error: {error}") from None
            if not isinstance(body, dict):
                raise ServingError("INVALID_ARGUMENT", "the request body must be a JSON object")
            signature_name = body.get("signature_name", "")
            if not isinstance(signature_name, str):
                raise ServingError("INVALID_ARGUMENT", "'signature_name' must be a string")
            service = self.server.service
            if rest == ":predict":
                inputs, request_format = rest_json.parse_predict(body)
                _, _, outputs = service.predict(
                    name, version, label, signature_name, inputs, timeout_ms=self.server.timeout_ms
                )
                return rest_json.format_predict(outputs, request_format)
            if rest == ":classify":
                _, _, classes, scores = service.classify(
                    name, version, label, signature_name, rest_json.parse_examples(body), self.server.timeout_ms
                )
                rows = len(scores if scores is not None else classes)
                width = (scores if scores is not None else classes).shape[1]
                return {
                    "results": [
                        [
                            [classes[i][j].decode("utf-8", "replace") if classes is not None else "",
                             float(scores[i][j]) if scores is not None else 0.0]
                            for j in range(width)
                        ]
                        for i in range(rows)
                    ]
                }  # fmt: skip
            if rest == ":regress":
                _, _, values = service.regress(
                    name, version, label, signature_name, rest_json.parse_examples(body), self.server.timeout_ms
                )
                return {"results": [float(v) for v in values]}
            raise ServingError("INVALID_ARGUMENT", f"POST needs :predict, :classify or :regress; received {self.path}")

        match = _PATH.match(self.path.split("?")[0])
        self._handle(answer, api=(match["rest"] or ":")[1:] if match else None)


class RestServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server answering TF Serving's REST API for a `Service`.

    Each connection has a thread for its I/O; at most `num_threads` requests
    are processed at once (`--rest_api_num_threads`), the others wait.
    Listens on IPv6 when the host is an IPv6 address.
    """

    daemon_threads = True
    # socketserver listens with a backlog of 5: many clients connecting at once would be reset.
    request_queue_size = 1024
    # A client that stops sending (a body shorter than its Content-Length, an idle keep-alive connection)
    # frees its thread after this many seconds instead of holding it forever.
    read_timeout_seconds = 60

    def __init__(self, address, service, max_body_bytes=MAX_BODY_BYTES, timeout_ms=30_000, metrics=None,
                 metrics_path=None, num_threads=4 * (os.cpu_count() or 1), cors=False):  # fmt: skip
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.timeout_ms = timeout_ms  # --rest_api_timeout_in_ms: a longer model run answers 504
        self.metrics = metrics
        self.metrics_path = metrics_path
        self.cors = cors  # --rest_api_enable_cors_support
        self._processing = threading.BoundedSemaphore(max(1, num_threads))
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def process(self, answer):
        """`answer()` once one of the `num_threads` processing slots is free."""
        with self._processing:
            return answer()

"""TF Serving's REST API (api_rest.md) over the standard library's threading HTTP server.

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            model status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature defs
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    row or columnar tensors
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:classify   tf.Examples as JSON
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:regress

Requests are dispatched as TF Serving's HTTP server dispatches them
(model_servers/http_server.cc, http_rest_api_util.cc,
http_rest_api_handler.cc): its path patterns, case-insensitive, are matched
against the path with its query; model names and labels are percent-decoded.
Every other request under /v1/ (another path, method or API) is 400
"Malformed request: ...". Requests its HTTP library (libevent) answers
itself get libevent's HTML page: a path outside /v1/ is 404, a request
target it cannot parse 400, a method it does not take 501. Every other
failure is JSON `{"error": "..."}` with TF Serving's HTTP status for its
canonical code; nothing a client sends takes the server down.
"""

import http.server
import json
import logging
import os
import re
import socket
import threading
import time
import urllib.parse

import tensorflow as tf
from google.protobuf import json_format

from serving import rest_json
from serving.errors import ServingError

log = logging.getLogger("recipes-model-server")
MAX_BODY_BYTES = 64 * 1024 * 1024

_REST_API = re.compile(r"(?i)/v1/.*")  # kHTTPRestApiHandlerPathRegex: what the REST handler is given at all
_PREDICTION_API = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)"
)
_MODEL_STATUS_API = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?(?:/(metadata))?"
)
# A request target as libevent's evhttp_uri_parse reads it: [scheme:][//authority]path[?query][#fragment], RFC 3986
# characters only.
_URI = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*:)?(?://[^/?#]*)?(?P<path>[^?#]*)(?P<rest>(?:\?[^#]*)?(?:#.*)?)", re.S
)
_PATH_CHARS = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")
_QUERY_CHARS = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")
_LENGTH = re.compile(r"[0-9]{1,18}")  # ASCII digits only: str.isdigit() also takes "²", which int() refuses
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_LIBEVENT_ERROR_PAGE = "<HTML><HEAD>\n<TITLE>{0} {1}</TITLE>\n</HEAD><BODY>\n<H1>{1}</H1>\n</BODY></HTML>\n"
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}


def _request_uri(target):
    """`(path, uri_path)` of a request target, as TF Serving's server reads it, or None when libevent refuses it.

    `uri_path` is the path with its query and fragment: what TF Serving's
    patterns are matched against and its error messages quote.
    """
    uri = _URI.fullmatch(target)
    query, _, fragment = uri["rest"].partition("#")
    if not _PATH_CHARS.fullmatch(uri["path"]) or not _QUERY_CHARS.fullmatch(query[1:] + fragment):
        return None
    if not uri["scheme"] and ":" in uri["path"].split("/", 1)[0]:  # a colon in the first segment is a scheme's
        return None
    return uri["path"], uri["path"] + uri["rest"]


def _percent_decoded(text):
    """curl_easy_unescape, as TF Serving decodes model names and labels: %XX only, "+" stays."""
    return urllib.parse.unquote_to_bytes(text).decode("utf-8", "surrogateescape")


def _version(text):
    """A path's version as absl::SimpleAtoi reads it into an int64."""
    digits = text.lstrip("0") or "0"
    if len(digits) > 19 or int(digits) >= 2**63:
        raise ServingError("INVALID_ARGUMENT", f"Failed to convert version: {text} to numeric.")
    return int(digits)


def _model_spec(match):
    """`(name, version, label)` of a matched path."""
    name, version, label = match.group(1, 2, 3)
    return (
        _percent_decoded(name) if name else "",
        _version(version) if version else None,
        _percent_decoded(label) if label else None,
    )


def status_body(manager, name, version):
    """GetModelStatus as JSON: protobuf's printer with whitespace (one-space indents), every field printed."""
    body = {
        "model_version_status": [
            {
                "version": str(v),
                "state": status.state,
                "status": {"error_code": status.error_code, "error_message": status.error_message},
            }
            for v, status in manager.status(name, version)
        ]
    }
    return rest_json.encode(json.dumps(body, indent=1, ensure_ascii=False) + "\n")


def metadata_body(service, name, version, label):
    """GetModelMetadata as JSON, laid out as TF Serving joins its two printed protos (http_rest_api_util.cc)."""
    version, signature_map = service.metadata(name, version, label)
    model_spec = {"name": name, "signature_name": "", "version": str(version)}
    signature_def = json_format.MessageToDict(
        signature_map, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return rest_json.encode(
        '{\n"model_spec":'
        + json.dumps(model_spec, indent=1, ensure_ascii=False)
        + ',\n"metadata": {"signature_def": '
        + json.dumps(signature_def, indent=1, ensure_ascii=False)
        + "}\n}\n"
    )


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "recipes-model-server"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: Nagle would hold the body ~40 ms

    @property
    def timeout(self):  # read by StreamRequestHandler.setup for the connection's socket timeout
        return self.server.read_timeout_seconds

    def log_message(self, format, *args):  # noqa: A002 - the signature of BaseHTTPRequestHandler
        log.debug("%s %s", self.address_string(), format % args)

    def send_response(self, code, message=None):
        """As http.server's, with a Date header but no Server header: libevent sends none."""
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def _reply(self, status, data, content_type="application/json", extra_headers=()):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in extra_headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):
        """libevent's own refusals (evhttp_send_error): an HTML page, and the connection closed."""
        self._drain_body()
        self.close_connection = True
        phrase = http.HTTPStatus(code).phrase if code in http.HTTPStatus._value2member_map_ else "Error"
        self._reply(code, _LIBEVENT_ERROR_PAGE.format(code, phrase).encode("latin-1"), "text/html")

    def _drain_body(self):
        """Reads and drops a request body, so that closing the connection does not reset it."""
        if getattr(self, "headers", None) is not None and ("Content-Length" in self.headers or self._chunked()):
            try:
                self._body()
            except ServingError:
                pass

    def _chunked(self):
        return self.headers.get("Transfer-Encoding", "").strip().lower() == "chunked"

    def _body(self):
        if self._chunked():  # libevent reads a chunked body whatever Content-Length says
            return self._chunked_body()
        if "Content-Length" not in self.headers and "Transfer-Encoding" not in self.headers:
            return b""  # a request without either has no body
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

    def _chunked_body(self):
        """A body sent in chunks (`Transfer-Encoding: chunked`, RFC 9112 7.1): sizes in hex, a last chunk of 0."""
        body, limit = bytearray(), self.server.max_body_bytes

        def refuse(message):
            self.close_connection = True  # what follows in the stream cannot be told from the body
            return ServingError("INVALID_ARGUMENT", message)

        received, too_long = 0, False
        try:
            while True:
                line = self.rfile.readline(1024)
                size = line.split(b";", 1)[0].strip()  # chunk extensions are ignored
                if not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(size):
                    raise refuse("a chunk of the request body (Transfer-Encoding: chunked) does not start with a size")
                size = int(size, 16)
                if not size:
                    break
                received += size
                # Past the limit the chunks are still read, never stored: a client still sending when the
                # connection closed would be reset before it could read the answer.
                too_long = too_long or received > limit
                while size > 0:
                    chunk = self.rfile.read(min(size, 1 << 20))
                    if not chunk:
                        break
                    size -= len(chunk)
                    if not too_long:
                        body += chunk
                if size > 0 or self.rfile.readline(3).strip():
                    raise refuse("the request body (Transfer-Encoding: chunked) ended inside a chunk")
            while self.rfile.readline(8192).strip():  # trailer fields, up to the empty line
                pass
        except TimeoutError:
            raise refuse("the request body (Transfer-Encoding: chunked) ended before its last chunk") from None
        if too_long:
            raise ServingError(
                "INVALID_ARGUMENT", f"request body of {received} bytes exceeds the limit of {limit} bytes"
            )
        return bytes(body)

    def _serve(self):
        """Dispatches a request as TF Serving's HTTP server does (http_server.cc)."""
        uri = _request_uri(self.path)
        if uri is None:
            self.send_error(400)
            return
        path, uri_path = uri
        if self.server.metrics is not None and path == self.server.metrics_path:
            self._metrics(uri_path)
            return
        if not _REST_API.fullmatch(uri_path):
            self.send_error(404)  # no handler: libevent's 404 page
            return
        cors = tuple(_CORS_HEADERS.items()) if self.server.enable_cors_support else ()
        started, status, model_name, api = time.perf_counter(), "OK", "", None
        try:
            body = self._body()
            if self.command == "OPTIONS":  # a CORS preflight: no handler, no body
                status = "OK" if re.search(r"https?://", self.headers.get("Origin", "")) else "FAILED_PRECONDITION"
                self._reply(ServingError(status, "").http_status, b"", None, cors)
                return
            model_name, api, answer = self._process(uri_path, body)
            self._reply(200, self.server.process(answer), extra_headers=cors)
        except ServingError as error:
            status = error.code
            self._reply(error.http_status, rest_json.error_response(error.message), extra_headers=cors)
        except Exception as error:  # a bug must answer 500, never kill the server
            status = "INTERNAL"
            log.exception("request failed")
            message = f"internal error: {type(error).__name__}: {error}"
            self._reply(500, rest_json.error_response(message), extra_headers=cors)
        if self.server.metrics is not None and api:
            self.server.metrics.observe_request(model_name, api, "REST", status, time.perf_counter() - started)

    def _process(self, uri_path, body):
        """`(model name, API, answer)` of a /v1/ request (HttpRestApiHandler::ProcessRequest): `answer()` the body."""
        malformed = ServingError("INVALID_ARGUMENT", f"Malformed request: {self.command} {uri_path}")
        if self.command == "POST":
            match = _PREDICTION_API.fullmatch(uri_path)
            if not match or match[4] not in ("classify", "regress", "predict"):  # the pattern takes any case; this not
                raise malformed
            name, version, label = _model_spec(match)
            api = match[4]
            return name, api, lambda: getattr(self, f"_{api}")(name, version, label, body)
        if self.command == "GET":
            match = _MODEL_STATUS_API.fullmatch(uri_path)
            if not match:
                raise malformed
            name, version, label = _model_spec(match)
            if not name:  # TF Serving answers no list of all models
                raise ServingError("INVALID_ARGUMENT", "Missing model name in request.")
            if match[4] == "metadata":
                return name, None, lambda: metadata_body(self.server.service, name, version, label)
            # get_model_status_impl.cc: a label does not narrow the status to its version
            return name, None, lambda: status_body(self.server.service.manager, name, version)
        raise malformed

    def _predict(self, name, version, label, body):
        document, strings = rest_json.parse_json(body)
        signature_name = rest_json.signature_name(document)
        _, signature_defs = self.server.service.manager.signature_defs(name, version, label)
        key = signature_name or rest_json.DEFAULT_SIGNATURE
        if key not in signature_defs:
            raise ServingError("INVALID_ARGUMENT", f'Serving signature name: "{key}" not found in signature def')
        input_dtypes = {n: tf.dtypes.as_dtype(info.dtype) for n, info in signature_defs[key].inputs.items()}
        if not input_dtypes:
            raise ServingError(
                "INVALID_ARGUMENT", f"Failed to get input map for signature: {signature_name or 'DEFAULT'}"
            )
        inputs, request_format = rest_json.parse_predict(
            document, input_dtypes, strings, has_bools=b"true" in body or b"false" in body
        )
        _, _, outputs = self.server.service.predict(
            name, version, label, signature_name, inputs, timeout_ms=self.server.timeout_ms
        )
        return rest_json.predict_response(outputs, request_format)

    def _classify(self, name, version, label, body):
        document, strings = rest_json.parse_json(body)
        signature_name = rest_json.signature_name(document)
        examples = rest_json.parse_examples(document, strings)
        _, _, classes, scores = self.server.service.classify(
            name, version, label, signature_name, examples, self.server.timeout_ms
        )
        return rest_json.classify_response(classes, scores)

    def _regress(self, name, version, label, body):
        document, strings = rest_json.parse_json(body)
        signature_name = rest_json.signature_name(document)
        examples = rest_json.parse_examples(document, strings)
        _, _, values = self.server.service.regress(
            name, version, label, signature_name, examples, self.server.timeout_ms
        )
        return rest_json.regress_response(values)

    def _metrics(self, uri_path):
        """The Prometheus page, for any method (ProcessPrometheusRequest); a query makes it 400 "Unexpected path"."""
        self._drain_body()
        if uri_path != self.server.metrics_path:
            message = f"Unexpected path: {uri_path}. Should be {self.server.metrics_path}"
            self._reply(400, rest_json.encode(message), "text/plain")
            return
        self._reply(200, self.server.metrics.render(), self.server.metrics.content_type)

    # The methods libevent lets through to TF Serving's handler (evhttp_server.cc); others get libevent's 501.
    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _serve  # noqa: N815


class RestServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server answering TF Serving's REST API for a `Service`.

    Each connection has a thread for its I/O; at most `num_threads` requests are
    processed at once (`--rest_api_num_threads`), the others wait. Listens on
    IPv6 when the host is an IPv6 address.

    Args:
        address: `(host, port)`.
        service: The `Service`.
        max_body_bytes: The largest request body.
        timeout_ms: `--rest_api_timeout_in_ms`: a longer model run answers 504.
        metrics: Optional `serving.metrics.Metrics`.
        metrics_path: The Prometheus page's path when `metrics` is given.
        num_threads: `--rest_api_num_threads`: requests processed at once.
        enable_cors_support: `--rest_api_enable_cors_support`: answers carry CORS headers.
    """

    daemon_threads = True
    # socketserver listens with a backlog of 5: many clients connecting at once would be reset.
    request_queue_size = 1024
    # A client that stops sending (a body shorter than its Content-Length, an idle keep-alive connection)
    # frees its thread after this many seconds instead of holding it forever.
    read_timeout_seconds = 60

    def __init__(
        self,
        address,
        service,
        max_body_bytes=MAX_BODY_BYTES,
        timeout_ms=30_000,
        metrics=None,
        metrics_path=None,
        num_threads=4 * (os.cpu_count() or 1),
        enable_cors_support=False,
    ):
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.timeout_ms = timeout_ms
        self.metrics = metrics
        self.metrics_path = metrics_path
        self.enable_cors_support = enable_cors_support
        self._processing = threading.BoundedSemaphore(max(1, num_threads))
        self._count_lock = threading.Lock()
        self.processing = 0  # requests holding a slot now
        self.peak_processing = 0  # the most that ever held one at once
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def process(self, answer):
        """`answer()` once one of the `num_threads` processing slots is free."""
        with self._processing:
            with self._count_lock:
                self.processing += 1
                self.peak_processing = max(self.peak_processing, self.processing)
            try:
                return answer()
            finally:
                with self._count_lock:
                    self.processing -= 1

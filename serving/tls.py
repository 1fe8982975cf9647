"""`--ssl_config_file`: TF Serving's `SSLConfig` as grpcio server credentials.

The file is a text-format `tensorflow.serving.SSLConfig`
(tensorflow_serving/config/ssl_config.proto): `server_key` and `server_cert`
hold the PEM text itself, not paths; `custom_ca` the PEM of the authorities
client certificates are checked against; `client_verify: true` requires a
valid client certificate. As in TF Serving, it secures the gRPC listeners
(the port and `--grpc_socket_path`); the REST port stays plain HTTP.

Example:

    server_key: "-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----\\n"
    server_cert: "-----BEGIN CERTIFICATE-----\\n...\\n-----END CERTIFICATE-----\\n"
    client_verify: false
"""

import grpc
from google.protobuf import text_format

from serving.protos import message_classes

SSLConfig = message_classes("""
    name: "tensorflow_serving/config/ssl_config.proto"
    package: "tensorflow.serving"
    syntax: "proto3"
    message_type {
      name: "SSLConfig"
      field { name: "server_key" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
      field { name: "server_cert" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL }
      field { name: "custom_ca" number: 3 type: TYPE_STRING label: LABEL_OPTIONAL }
      field { name: "client_verify" number: 4 type: TYPE_BOOL label: LABEL_OPTIONAL }
    }
""")["SSLConfig"]


def read_ssl_config(text):
    """Parses the text of an `--ssl_config_file` into an `SSLConfig` message."""
    try:
        return text_format.Parse(text, SSLConfig())
    except text_format.ParseError as error:
        raise ValueError(f"not a text-format SSLConfig: {error}") from None


def server_credentials(config):
    """grpcio server credentials for an `SSLConfig`, as TF Serving builds its `SslServerCredentials`."""
    if not config.server_key or not config.server_cert:
        raise ValueError(
            "SSLConfig needs server_key and server_cert, the PEM text of the server's private key and certificate; "
            f"received server_key of {len(config.server_key)} characters and server_cert of {len(config.server_cert)}"
        )
    if config.client_verify and not config.custom_ca:
        raise ValueError(
            "SSLConfig client_verify: true needs custom_ca, the PEM of the CAs that sign client certificates"
        )
    return grpc.ssl_server_credentials(
        [(config.server_key.encode("utf-8"), config.server_cert.encode("utf-8"))],
        root_certificates=config.custom_ca.encode("utf-8") or None,
        require_client_auth=config.client_verify,
    )

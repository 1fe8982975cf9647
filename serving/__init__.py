"""Export, serving and clients: from a trained Keras model to TF Serving's REST and gRPC APIs."""

from serving.export import (
    KEY,
    KEYED_SIGNATURE,
    UNKEYED_SIGNATURE,
    ServingInput,
    export_model,
    next_version,
    serving_inputs,
    to_serving_inputs,
)

__all__ = [
    "KEY",
    "KEYED_SIGNATURE",
    "UNKEYED_SIGNATURE",
    "ServingInput",
    "export_model",
    "next_version",
    "serving_inputs",
    "to_serving_inputs",
]

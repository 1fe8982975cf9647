"""Export, serving and clients: from a trained Keras model to TF Serving's REST and gRPC APIs.

The export names below are imported on first use, so that `recipes-model-server`
(`serving.server`) does not import Keras, and reads and checks its flags
before TensorFlow is imported: `--version` and a bad command line answer at
once, and TensorFlow's thread pools are sized before it starts.
"""

import importlib

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


def __getattr__(name):
    if name in __all__:
        return getattr(importlib.import_module("serving.export"), name)
    raise AttributeError(f"module 'serving' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])

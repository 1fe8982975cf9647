"""One loaded SavedModel version, run the way TF Serving runs it.

TF Serving loads a SavedModel's MetaGraph into a session and runs a
SignatureDef by feeding its input tensors by name and fetching its outputs.
It does not check a request's shape against the SignatureDef (its REST test
sends `[2.0, 3.0, 4.0]` to an `x` declared `[-1, 1]` and expects
`[3.0, 3.5, 4.0]`), and it serves TF1 graph exports as well as TF2 ones.
`tf.saved_model.load` offers neither: it checks shapes and fails on old TF1
exports such as TF Serving's own `saved_model_half_plus_three`. So each
version is loaded with the TF1 loader into its own graph and session, as
TensorFlow Serving's C++ `LoadSavedModel` does. The loader is TensorFlow's
`SavedModelLoader` class itself: the `tf.compat.v1.saved_model.loader.load`
function around it only adds a deprecation warning on each load.

Each SignatureDef gets a callable built with the session's
`_make_callable_from_options` (TensorFlow's CallableOptions API, the one
`Session.run` uses underneath, without the Python-side static shape check
that TF Serving does not have either).
"""

import threading

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.python.saved_model.loader_impl import SavedModelLoader

from serving import tensors
from serving.errors import ServingError

SERVE_TAG = "serve"
MAX_CALLABLES = 64  # session callables kept per version, the oldest dropped first


class Servable:
    """A loaded SavedModel version: its SignatureDefs, and a way to run them.

    Args:
        name: Model name.
        version: Int version.
        path: The version folder.
        tags: The tags of the MetaGraph to load (`--saved_model_tags`), defaults to `("serve",)`.
        session_config: Optional `tf.compat.v1.ConfigProto` of the version's
            session (threads, graph rewrites: TF Serving's session config).

    Attributes:
        batching: The `serving.batching.BatchingParameters` its requests are
            batched with, or `None` to run them alone; set by its manager.
    """

    def __init__(self, name, version, path, tags=(SERVE_TAG,), session_config=None):
        self.name = name
        self.version = version
        self.path = path
        self.batching = None
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph, config=session_config)
        try:
            with self._graph.as_default():
                meta_graph = SavedModelLoader(path).load(self._session, list(tags))
        except BaseException:
            self._session.close()  # a failed load, retried or not, leaves no session behind
            raise
        self.signature_defs = dict(meta_graph.signature_def)  # all, as TF Serving's metadata lists them
        self._input_dtypes = {
            (signature_name, name): self._fed_dtype(info)
            for signature_name, signature in self.signature_defs.items()
            for name, info in signature.inputs.items()
        }
        self._callables = {}
        self._lock = threading.Lock()

    def _fed_dtype(self, info):
        """The dtype of the graph tensor a SignatureDef input names, which is what a feed must match.

        TF Serving feeds inputs by tensor name, so where an export declares
        another dtype than its tensor has (TF Serving's own
        `saved_model_half_plus_three` declares DT_FLOAT for a DT_STRING
        placeholder of serialized tf.Examples), the graph is right.
        """
        try:
            return self._graph.get_tensor_by_name(info.name).dtype.base_dtype
        except (KeyError, ValueError):  # no tensor of that name (a sparse or composite input): the declaration
            return None

    def signature(self, signature_name):
        """The SignatureDef proto named `signature_name` ("" means `serving_default`).

        An unknown name fails as TF Serving's Predict fails it, with FAILED_PRECONDITION.
        """
        signature_name = signature_name or "serving_default"
        if signature_name not in self.signature_defs:
            raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{signature_name}" not found.')
        return signature_name, self.signature_defs[signature_name]

    def _callable(self, signature_name, input_names, output_names, timeout_ms):
        key = (signature_name, input_names, output_names, timeout_ms)
        with self._lock:
            if key not in self._callables:
                if len(self._callables) >= MAX_CALLABLES:  # clients choose timeouts and output filters: bounded
                    del self._callables[next(iter(self._callables))]
                signature = self.signature_defs[signature_name]
                options = config_pb2.CallableOptions(
                    feed=[signature.inputs[name].name for name in input_names],
                    fetch=[signature.outputs[name].name for name in output_names],
                )
                if timeout_ms:
                    options.run_options.timeout_in_ms = timeout_ms  # TensorFlow cancels the run: DEADLINE_EXCEEDED
                self._callables[key] = self._session._make_callable_from_options(options)
            return self._callables[key]

    def prepare(self, signature_name, inputs, output_filter=()):
        """Checks a Predict request against a signature, as TF Serving's `PreProcessPrediction` checks it.

        Inputs the request leaves out are taken from the signature's
        `defaults` (the default values TF2 records for `tf.function`
        arguments); the outputs are the `output_filter`'s, or all. Each input
        must have the dtype its graph tensor takes (see `_as_dtype`).

        Returns:
            `(signature_name, inputs, output_names)`: the resolved name, the
            inputs to feed and the outputs to fetch.
        """
        signature_name, signature = self.signature(signature_name)
        inputs = dict(self._with_defaults(signature, inputs))
        outputs = tuple(output_filter) or tuple(sorted(signature.outputs))
        for position, name in enumerate(outputs):
            if name not in signature.outputs:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"output tensor alias not found in signature: {name} Outputs expected to be in the set "
                    f"{{{','.join(sorted(signature.outputs))}}}.",
                )
            if name in outputs[:position]:
                raise ServingError("INVALID_ARGUMENT", f"duplicate output tensor alias: {name}")
        feeds = sorted(signature.inputs[name].name for name in inputs)  # the session's argument order
        fed = {
            name: self._as_dtype(signature_name, name, value, feeds.index(signature.inputs[name].name))
            for name, value in inputs.items()
        }
        return signature_name, fed, outputs

    @staticmethod
    def _with_defaults(signature, inputs):
        """The request's inputs and the defaults of those it leaves out, with TF Serving's checks and words.

        `VerifyRequestInputsSize` (predict_util.cc), then TensorFlow's
        `saved_model::GetInputValues`.
        """
        requested, expected = set(inputs), set(signature.inputs)
        if len(requested) > len(expected) or (len(requested) < len(expected) and not signature.defaults):
            raise ServingError(
                "INVALID_ARGUMENT",
                f"input size does not match signature: {len(requested)}!={len(expected)} "
                f"len({{{','.join(sorted(requested))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(requested - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - requested))}}}.",
            )
        for name in sorted(expected):
            if name in inputs:
                yield name, inputs[name]
            elif name in signature.defaults:
                yield name, tensors.to_array(signature.defaults[name])
            else:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"Signature input alias: {name}(feed name: {signature.inputs[name].name}) not found in request "
                    f"and no default value provided. Inputs expected to be in the request "
                    f"{{{','.join(sorted(requested))}}}, or default input alias set: "
                    f"{','.join(sorted(signature.defaults))}",
                )
        if requested - expected:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Inputs contains invalid name. Used request inputs: {','.join(sorted(requested & expected))}, "
                f"request input: {','.join(sorted(requested))}",
            )

    def execute(self, signature_name, inputs, output_names, timeout_ms=None):
        """Runs prepared inputs; a run longer than `timeout_ms` fails with DEADLINE_EXCEEDED."""
        input_names = tuple(sorted(inputs))
        try:
            results = self._callable(signature_name, input_names, output_names, timeout_ms)(
                *[inputs[name] for name in input_names]
            )
        except tf.errors.OpError as error:
            raise ServingError(error.error_code, error.message.split("\n\t [[")[0]) from None
        return dict(zip(output_names, results))

    def run(self, signature_name, inputs, output_filter=(), timeout_ms=None):
        """`prepare` then `execute`: returns `(signature_name, outputs)`.

        Args:
            signature_name: The SignatureDef key; "" means `serving_default`.
            inputs: Dict from input name to array; exactly the signature's inputs.
            output_filter: Names of the outputs to compute, defaults to all.
            timeout_ms: Optional int; a longer run fails with DEADLINE_EXCEEDED.
        """
        signature_name, inputs, outputs = self.prepare(signature_name, inputs, output_filter)
        return signature_name, self.execute(signature_name, inputs, outputs, timeout_ms)

    def _as_dtype(self, signature_name, name, value, argument):
        """An input as the array fed to the graph tensor it names (the session's `argument`-th argument).

        The request's dtype must be the tensor's, as in TF Serving, whose
        session refuses any other with "Expects arg[i] to be float but double
        is provided" (TensorFlow's `FunctionCallFrame::SetArgs`): no cast,
        not even float64 to float32. Clients send the signature's dtypes
        (`GetModelMetadata` lists them, and REST requests are parsed into them).
        """
        dtype = self._input_dtypes[(signature_name, name)] or tf.dtypes.as_dtype(
            self.signature_defs[signature_name].inputs[name].dtype
        )
        array = np.asarray(value)
        try:
            received = tf.string if array.dtype.kind in "SOU" else tf.dtypes.as_dtype(array.dtype)
        except TypeError:  # a NumPy dtype TensorFlow has none of: never a graph tensor's
            received = array.dtype
        if received != dtype:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Expects arg[{argument}] to be {tensors.dtype_string(dtype)} but "
                f"{tensors.dtype_string(received)} is provided",
            )
        return array.astype(object, copy=False) if dtype == tf.string else array

    def close(self):
        self._session.close()

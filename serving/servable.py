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
            raise ServingError("FAILED_PRECONDITION", f"Serving signature key \"{signature_name}\" not found.")
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
        """Checks a request against a signature and casts its inputs to the signature's dtypes.

        An input under the key `None` (sent without a name) is taken as the
        signature's only input.

        Returns:
            `(signature_name, inputs, output_names)`: the resolved name, the
            cast inputs and the outputs to fetch.
        """
        signature_name, signature = self.signature(signature_name)
        if None in inputs:  # a value sent without a name (REST's unnamed instances) is the only input's
            if len(inputs) != 1 or len(signature.inputs) != 1:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"signature \"{signature_name}\" has {len(signature.inputs)} inputs {sorted(signature.inputs)}: "
                    "name them (a JSON object per instance)",
                )
            inputs = {next(iter(signature.inputs)): inputs[None]}
        expected, received = set(signature.inputs), set(inputs)
        if expected != received:
            missing, extra = sorted(expected - received), sorted(received - expected)
            raise ServingError(
                "INVALID_ARGUMENT",
                f"input names of signature \"{signature_name}\" are {sorted(expected)}; "
                + (f"missing {missing}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"unexpected {extra}" if extra else ""),
            )
        outputs = tuple(output_filter) or tuple(sorted(signature.outputs))
        unknown = [name for name in outputs if name not in signature.outputs]
        if unknown:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"output_filter names {unknown} are not outputs of signature \"{signature_name}\"; "
                f"its outputs are {sorted(signature.outputs)}",
            )
        cast = {name: self._as_dtype(signature_name, name, value) for name, value in inputs.items()}
        return signature_name, cast, outputs

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

    def _as_dtype(self, signature_name, name, value):
        dtype = self._input_dtypes[(signature_name, name)] or tf.dtypes.as_dtype(
            self.signature_defs[signature_name].inputs[name].dtype
        )
        array = np.asarray(value)
        if dtype == tf.string:
            if array.dtype.kind not in "SOU":
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"input \"{name}\" expects strings (DT_STRING); received {array.dtype.name} values",
                )
            return array.astype(object)
        if array.dtype.kind in "SOU":
            raise ServingError(
                "INVALID_ARGUMENT", f"input \"{name}\" expects {dtype.name} numbers; received strings"
            )
        try:
            return array.astype(dtype.as_numpy_dtype, casting="same_kind" if dtype.is_floating else "safe")
        except TypeError:
            raise ServingError(
                "INVALID_ARGUMENT", f"input \"{name}\" expects {dtype.name}; received {array.dtype.name} values"
            ) from None

    def close(self):
        self._session.close()

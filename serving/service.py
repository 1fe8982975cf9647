"""The serving operations, independent of the protocol: REST and gRPC both call these.

This is where a request meets a model version; a batching scheduler goes
between `predict` and `Servable.run`. The checks and their messages are TF
Serving's (`predict_util.cc`, `classifier.cc`, `regressor.cc`,
`multi_inference.cc`).
"""

import concurrent.futures

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from serving.batching import run_in
from serving.errors import ServingError

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"


def _invalid(message):
    return ServingError("INVALID_ARGUMENT", message)


def _shape(array):
    """A shape as TensorFlow's `TensorShape::DebugString` writes it: `[2,3]`."""
    return "[" + ",".join(str(d) for d in array.shape) + "]"


def _dtype_name(array):
    return types_pb2.DataType.Name(tf.dtypes.as_dtype(array.dtype).as_datatype_enum)


class Service:
    """Predict, classify, regress, multi-inference and metadata over the versions a `ModelManager` serves.

    Args:
        manager: The `ModelManager`.
        scheduler: Optional `serving.batching.BatchScheduler` (`--enable_batching`)
            for the versions whose `batching` parameters are set.
        enable_signature_method_name_check: `--enable_signature_method_name_check`.
            `False` (default, as in TF Serving) lets Classify, Regress and
            MultiInference use any signature of the right form, such as the
            predict-method signatures of every TF2 SavedModel; `True` requires
            the classify or regress method name (and one of the three for Predict).
    """

    def __init__(self, manager, scheduler=None, enable_signature_method_name_check=False):
        self.manager = manager
        self.scheduler = scheduler
        self.enable_signature_method_name_check = enable_signature_method_name_check

    def _submit(self, servable, signature_name, inputs, output_filter=(), timeout_ms=None, executor=None):
        """A `concurrent.futures.Future` of the outputs: queued for a batch, or run alone (in `executor` when given)."""
        resolved, inputs, output_names = servable.prepare(signature_name, inputs, output_filter)
        if self.scheduler is None or servable.batching is None:
            return run_in(executor, servable.execute, resolved, inputs, output_names, timeout_ms)
        return self.scheduler.submit(servable, resolved, inputs, output_names, timeout_ms, servable.batching, executor)

    def _execute(self, servable, signature_name, inputs, output_filter=(), timeout_ms=None):
        return self._submit(servable, signature_name, inputs, output_filter, timeout_ms).result()

    def predict(
        self, name, version=None, label=None, signature_name="", inputs=None, output_filter=(), timeout_ms=None
    ):
        """Returns `(version, signature_name, outputs)`; a run longer than `timeout_ms` fails with DEADLINE_EXCEEDED."""
        return self.predict_future(name, version, label, signature_name, inputs, output_filter, timeout_ms).result()

    def predict_future(
        self,
        name,
        version=None,
        label=None,
        signature_name="",
        inputs=None,
        output_filter=(),
        timeout_ms=None,
        executor=None,
    ):
        """`predict` for a caller that must not block (an event loop): a `concurrent.futures.Future` of its result.

        The request is checked before this returns (and refused by raising);
        then it waits in the batch scheduler's queue, or, not batched, runs in
        `executor` (in this thread when `None`).
        """
        servable = self.manager.acquire(name, version, label)
        try:
            resolved, signature = servable.signature(signature_name)
            methods = (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD)
            if self.enable_signature_method_name_check and signature.method_name not in methods:
                raise ServingError(
                    "INTERNAL",
                    f"Expected prediction signature method_name to be one of {{{', '.join(methods)}}}. "
                    f"Was: {signature.method_name}",
                )
            outputs = self._submit(servable, resolved, inputs or {}, output_filter, timeout_ms, executor)
        except BaseException:
            self.manager.release(servable)
            raise
        result = concurrent.futures.Future()

        def answer(outputs):
            self.manager.release(servable)  # the run is over: the version may be unloaded
            if outputs.exception() is not None:
                result.set_exception(outputs.exception())
            else:
                result.set_result((servable.version, resolved, outputs.result()))

        outputs.add_done_callback(answer)
        return result

    def _example_outputs(self, signature, method):
        """TF Serving's PreProcessClassification / PreProcessRegression: the outputs to fetch, or why not."""
        kind = "classification" if method == CLASSIFY_METHOD else "regression"
        if self.enable_signature_method_name_check and signature.method_name != method:
            raise _invalid(f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}")
        if len(signature.inputs) != 1:
            raise _invalid("Expected one input Tensor.")
        if method == CLASSIFY_METHOD and len(signature.outputs) not in (1, 2):
            raise _invalid(f"Expected one or two output Tensors, found {len(signature.outputs)}")
        if method == REGRESS_METHOD and len(signature.outputs) != 1:
            raise _invalid("Expected one output Tensor.")
        if "inputs" not in signature.inputs:
            raise _invalid(f"No {kind} inputs found in SignatureDef: {text_format.MessageToString(signature)}")
        if method == REGRESS_METHOD:
            if "outputs" not in signature.outputs:
                raise _invalid(f"No regression outputs found in SignatureDef: {text_format.MessageToString(signature)}")
            return ("outputs",)
        outputs = tuple(name for name in ("classes", "scores") if name in signature.outputs)
        if not outputs:
            raise _invalid(
                'Expected classification signature outputs to contain at least one of "classes" or "scores". '
                f"Signature was: {text_format.MessageToString(signature)}"
            )
        return outputs

    def _example_signature(self, servable, signature_name, method):
        """TF Serving's GetClassificationSignatureDef / GetRegressionSignatureDef."""
        resolved = signature_name or DEFAULT_SIGNATURE
        if resolved not in servable.signature_defs:
            raise _invalid(f"No signature was found with the name: {resolved}")
        return resolved, self._example_outputs(servable.signature_defs[resolved], method)

    def _run_examples(self, servable, signature_name, output_names, examples, timeout_ms):
        if not len(examples):
            raise _invalid("Input is empty.")
        return self._execute(servable, signature_name, {"inputs": examples}, output_names, timeout_ms)

    @staticmethod
    def _classification(outputs, rows):
        """TF Serving's PostProcessClassificationResult checks: `(classes or None, scores or None)`."""
        classes, scores = outputs.get("classes"), outputs.get("scores")
        for tensor, name, dtype in ((classes, "classes", "DT_STRING"), (scores, "scores", "DT_FLOAT")):
            if tensor is None:
                continue
            if tensor.ndim != 2:
                raise _invalid(f"Expected Tensor shape: [batch_size num_classes] but got {_shape(tensor)}")
            if _dtype_name(tensor) != dtype:
                raise _invalid(f"Expected {name} Tensor of {dtype}. Got: {_dtype_name(tensor)}")
            if tensor.shape[0] != rows:
                raise _invalid(f"Expected {name} output batch size of {rows}. Got: {tensor.shape[0]}")
        if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
            raise _invalid(
                f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
            )
        return classes, scores

    @staticmethod
    def _regression(outputs, rows):
        """TF Serving's PostProcessRegressionResult checks: one float per example."""
        values = outputs["outputs"]
        if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
            raise _invalid(
                f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {_shape(values)}"
            )
        if values.shape[0] != rows:
            raise _invalid(f"Input batch size did not match output batch size: {rows} vs. {values.shape[0]}")
        if values.dtype != np.float32:
            raise _invalid(f"Expected output Tensor of DT_FLOAT.  Got: {_dtype_name(values)}")
        return values.reshape(rows)

    def classify(self, name, version=None, label=None, signature_name="", examples=(), timeout_ms=None):
        """Returns `(version, signature_name, classes or None, scores or None)` for serialized tf.Examples."""
        servable = self.manager.acquire(name, version, label)
        try:
            resolved, output_names = self._example_signature(servable, signature_name, CLASSIFY_METHOD)
            outputs = self._run_examples(servable, resolved, output_names, examples, timeout_ms)
            return (servable.version, resolved, *self._classification(outputs, len(examples)))
        finally:
            self.manager.release(servable)

    def regress(self, name, version=None, label=None, signature_name="", examples=(), timeout_ms=None):
        """Returns `(version, signature_name, values)` with one float per tf.Example."""
        servable = self.manager.acquire(name, version, label)
        try:
            resolved, output_names = self._example_signature(servable, signature_name, REGRESS_METHOD)
            outputs = self._run_examples(servable, resolved, output_names, examples, timeout_ms)
            return servable.version, resolved, self._regression(outputs, len(examples))
        finally:
            self.manager.release(servable)

    def multi_inference(self, name, version, label, tasks, examples, timeout_ms=None):
        """Classify and regress tasks over the same tf.Examples, on one version of one model.

        As in TF Serving, the version is the one the first task's model spec
        names, every task must name the same model and a signature at most
        once, and every task is checked before any runs.

        Args:
            name, version, label: The first task's model spec.
            tasks: `(model_name, signature_name, method_name)` of each task.
            examples: Serialized tf.Examples.
            timeout_ms: Optional int; a longer run fails with DEADLINE_EXCEEDED.

        Returns:
            `(version, results)`, a result per task: `(method_name,
            signature_name, (classes, scores))` for classify tasks and
            `(method_name, signature_name, values)` for regress tasks.
        """
        servable = self.manager.acquire(name, version, label)
        try:
            planned, seen = [], set()
            for task_model, signature_name, method in tasks:
                if not task_model:
                    raise _invalid("Found ModelSpec with an empty model name.")
                if task_model != name:
                    raise _invalid("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
                resolved = signature_name or DEFAULT_SIGNATURE
                if resolved in seen:
                    raise _invalid(f"Duplicate evaluation of signature: {resolved}")
                seen.add(resolved)
                if resolved not in servable.signature_defs:
                    raise _invalid(f"Requested signature not found in model graph: {resolved}")
                if method not in (CLASSIFY_METHOD, REGRESS_METHOD):
                    raise ServingError("UNIMPLEMENTED", f"Unsupported signature method_name: {method}")
                planned.append((method, resolved, self._example_outputs(servable.signature_defs[resolved], method)))
            results = []
            for method, resolved, output_names in planned:
                outputs = self._run_examples(servable, resolved, output_names, examples, timeout_ms)
                if method == CLASSIFY_METHOD:
                    results.append((method, resolved, self._classification(outputs, len(examples))))
                else:
                    results.append((method, resolved, self._regression(outputs, len(examples))))
            return servable.version, results
        finally:
            self.manager.release(servable)

    def metadata(self, name, version=None, label=None):
        """Returns `(version, SignatureDefMap)` as TF Serving's GetModelMetadata reports it.

        Like TF Serving, the SignatureDefs' `defaults` (default input values
        that TF2 records for `tf.function` arguments) are left out.
        """
        version, signature_defs = self.manager.signature_defs(name, version, label)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
            signature_map.signature_def[key].ClearField("defaults")
        return version, signature_map

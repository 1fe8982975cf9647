"""The serving operations, independent of the protocol: REST and gRPC both call these.

This is where a request meets a model version; a batching scheduler goes
between `predict` and `Servable.run`.
"""

import numpy as np
from tensorflow_serving.apis import get_model_metadata_pb2

from serving.errors import ServingError

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


class Service:
    """Predict, classify, regress and metadata over the versions a `ModelManager` serves.

    Args:
        manager: The `ModelManager`.
        scheduler: Optional `serving.batching.BatchScheduler` (`--enable_batching`)
            for the versions whose `batching` parameters are set.
    """

    def __init__(self, manager, scheduler=None):
        self.manager = manager
        self.scheduler = scheduler

    def _run(self, name, version, label, signature_name, inputs, output_filter=(), method=None, timeout_ms=None):
        servable = self.manager.acquire(name, version, label)
        try:
            if method is not None:
                resolved, signature = servable.signature(signature_name)
                if signature.method_name != method:
                    kind = "classification" if method == CLASSIFY_METHOD else "regression"
                    raise ServingError(
                        "INVALID_ARGUMENT",
                        f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}",
                    )
                if len(signature.inputs) != 1:
                    raise ServingError("INVALID_ARGUMENT", f"signature \"{resolved}\" must have one input of serialized tf.Examples")
                inputs = {next(iter(signature.inputs)): inputs}
            resolved, inputs, output_names = servable.prepare(signature_name, inputs, output_filter)
            if self.scheduler is None or servable.batching is None:
                outputs = servable.execute(resolved, inputs, output_names, timeout_ms)
            else:
                outputs = self.scheduler.run(servable, resolved, inputs, output_names, timeout_ms, servable.batching)
            return servable.version, resolved, outputs
        finally:
            self.manager.release(servable)

    def predict(self, name, version=None, label=None, signature_name="", inputs=None, output_filter=(), timeout_ms=None):
        """Returns `(version, signature_name, outputs)`; a run longer than `timeout_ms` fails with DEADLINE_EXCEEDED."""
        return self._run(name, version, label, signature_name, inputs or {}, output_filter, timeout_ms=timeout_ms)

    def classify(self, name, version=None, label=None, signature_name="", examples=None, timeout_ms=None):
        """Returns `(version, signature_name, classes or None, scores or None)` for serialized tf.Examples."""
        version, resolved, outputs = self._run(
            name, version, label, signature_name, examples, method=CLASSIFY_METHOD, timeout_ms=timeout_ms
        )
        classes, scores = outputs.get("classes"), outputs.get("scores")
        if classes is None and scores is None:
            raise ServingError("INVALID_ARGUMENT", f"classification signature \"{resolved}\" has neither 'classes' nor 'scores'")
        return version, resolved, classes, scores

    def regress(self, name, version=None, label=None, signature_name="", examples=None, timeout_ms=None):
        """Returns `(version, signature_name, values)` with one float per tf.Example."""
        version, resolved, outputs = self._run(
            name, version, label, signature_name, examples, method=REGRESS_METHOD, timeout_ms=timeout_ms
        )
        if "outputs" not in outputs:
            raise ServingError("INVALID_ARGUMENT", f"regression signature \"{resolved}\" has no 'outputs'")
        values = np.asarray(outputs["outputs"], dtype=np.float32)
        return version, resolved, values.reshape(len(examples), -1)[:, 0]

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

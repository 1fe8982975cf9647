"""A SavedModel's keyed signature called on a list of JSON rows, counting the batches it runs.

Shared by the peer servers of `benchmarks/bench_peers.py`, which run in their own virtual environment
(`make bench-peers`): it needs TensorFlow and nothing of this project. TensorFlow is imported when a
model is loaded, so that a peer's HTTP front-end processes do not carry it.

The counts go to a small file, rewritten in place after every batch, because some peers run the model
in a process other than the one that was started: `"<batches> <rows>"`.
"""

import os
import re
import threading


def version_folder(export_dir):
    """The SavedModel to load: `export_dir` itself, or its highest numeric version folder (as TF Serving picks)."""
    if os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        return export_dir
    versions = [int(name) for name in os.listdir(export_dir) if re.fullmatch(r"\d+", name)]
    if not versions:
        raise ValueError(f"`export_dir` must be a SavedModel or hold numeric version folders. Received: {export_dir}")
    return os.path.join(export_dir, str(max(versions)))


def _plain(values):
    """A batch of output values as JSON-ready Python: lists, floats, and text for strings."""
    if values.dtype == object:
        return [value.decode("utf-8") for value in values.ravel().tolist()]
    return values.tolist()


class KeyedModel:
    """The serving signature of an export, called on rows (dicts from input name to one value), one dict out per row.

    Args:
        export_dir: An export of `serving.export_model` (a base path with version folders, or one version).
        stats_path: File to keep `"<batches> <rows>"` in, rewritten after each batch; `None` counts in memory only.
        signature_name: Defaults to `"serving_default"`, the keyed signature (raw inputs and `key` in, `key` out).
    """

    def __init__(self, export_dir, stats_path=None, signature_name="serving_default"):
        import tensorflow as tf

        self._tf = tf
        self.signature = tf.saved_model.load(version_folder(export_dir)).signatures[signature_name]
        _, inputs = self.signature.structured_input_signature
        self.dtypes = {name: spec.dtype for name, spec in inputs.items()}
        self.batches = self.rows = 0
        self._lock = threading.Lock()
        self._stats = os.open(stats_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if stats_path else None

    def __call__(self, rows):
        """Runs the signature once on all `rows`; returns one dict of outputs per row, in order."""
        missing = {name for row in rows for name in self.dtypes if name not in row}
        if missing:
            raise ValueError(f"every row must hold the inputs {sorted(self.dtypes)}. Missing: {sorted(missing)}")
        columns = {
            name: self._tf.constant([row[name] for row in rows], dtype=dtype) for name, dtype in self.dtypes.items()
        }
        outputs = {name: _plain(tensor.numpy()) for name, tensor in self.signature(**columns).items()}
        self._count(len(rows))
        return [{name: values[i] for name, values in outputs.items()} for i in range(len(rows))]

    def _count(self, rows):
        with self._lock:
            self.batches += 1
            self.rows += rows
            if self._stats is not None:
                os.pwrite(self._stats, f"{self.batches} {self.rows}\n".encode().ljust(40), 0)

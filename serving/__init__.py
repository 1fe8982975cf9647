"""Export, serving and clients: from a trained Keras model to TF Serving's REST and gRPC APIs.

- `serving.contract`: the key, the signature names and the version folders every part below relies on
  (no Keras, no TensorFlow).
- `export_model`: a Keras model written as a keyed SavedModel version (`serving.export`).
- `predict_file`: offline batch prediction of an export over a CSV or JSON Lines file, resumable
  (`serving.predict`).
- `measure_throughput`, `price_table`, `cost_report`: what serving costs per machine type (`serving.cost`).
- `tune_batching`: TF Serving's batching parameters swept under load, the best written as a file
  (`serving.tuning`).
- `recipes-model-server` (`serving.server`), the clients (`serving.client`), the load generator
  (`serving.load`).

Names are imported on first use (PEP 562), as in `recipes`: `from serving.client import RestClient` loads
neither Keras nor TensorFlow.
"""

from recipes._lazy import lazy_exports

_EXPORTS = {
    "KEY": "serving.contract",
    "KEYED_SIGNATURE": "serving.contract",
    "UNKEYED_SIGNATURE": "serving.contract",
    "next_version": "serving.contract",
    "version_folder": "serving.contract",
    "ServingInput": "serving.export",
    "export_model": "serving.export",
    "serving_inputs": "serving.export",
    "to_serving_inputs": "serving.export",
    "PredictionSummary": "serving.predict",
    "Predictor": "serving.predict",
    "predict_file": "serving.predict",
    "read_inputs": "serving.predict",
    "CostReport": "serving.cost",
    "cost_report": "serving.cost",
    "measure_throughput": "serving.cost",
    "price_table": "serving.cost",
    "BatchingSweep": "serving.tuning",
    "tune_batching": "serving.tuning",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
del lazy_exports

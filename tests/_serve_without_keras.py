"""Loads exported SavedModels with TensorFlow alone and writes their answers: `python _serve_without_keras.py JOBS OUT`.

JOBS is a pickle of {name: (export_path, serving_inputs, keys)}; OUT receives
{name: (first_call_outputs, second_call_outputs)}. Keras cannot be imported in
this process: TF Serving does not have it either.
"""

import pickle
import sys

# `import tensorflow` imports Keras whenever it is installed (to register its optimizers), so Keras is made
# absent instead: a None entry in sys.modules makes `import keras` raise ModuleNotFoundError, as where
# it is not installed, like in TF Serving.
for package in ("keras", "tf_keras"):
    sys.modules[package] = None

import tensorflow as tf  # noqa: E402

jobs_path, out_path = sys.argv[1:]
with open(jobs_path, "rb") as f:
    jobs = pickle.load(f)
answers = {}
for name, (path, inputs, keys) in jobs.items():
    signature = tf.saved_model.load(path).signatures["serving_default"]
    arguments = {input_name: tf.constant(value) for input_name, value in inputs.items()}
    arguments["key"] = tf.constant(keys)
    calls = [{k: v.numpy() for k, v in signature(**arguments).items()} for _ in range(2)]
    answers[name] = calls
assert sys.modules["keras"] is None and not any(m.startswith("keras.") for m in sys.modules), "Keras was imported"
with open(out_path, "wb") as f:
    pickle.dump(answers, f)

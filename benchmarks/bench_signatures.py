"""Throughput of the exported serving signatures, and what in-model text preprocessing costs.

1. Each of the four default baselines (text, audio, vision, tabular) is
   trained briefly on its real data set and exported; its `serving_default`
   signature, loaded with `tf.saved_model.load`, is called with raw inputs
   (strings, waveforms, PNG bytes, raw columns) at batch 1, 64 and 256.
   Prints examples per second.
2. For the sequence text models (LSTM, transformer), the raw-string signature
   vs the same model without its `TextVectorization` layer, exported the same
   way and fed integer token ids: time ratio per example. Goal <= 1.3. (The
   bag-of-words model has no such split: its token ids still need TF-IDF
   weighting, which is the rest of its preprocessing.)

Both sides of a ratio are timed alternately in one run, medians of several
rounds. Usage: python benchmarks/bench_signatures.py [--seconds 1.0]
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import recipes  # noqa: E402
import serving  # noqa: E402
from models import audio, tabular, text, vision  # noqa: E402

BATCHES = (1, 64, 256)


def _tile(values, n):
    return (
        np.resize(values, (n, *np.shape(values)[1:]))
        if not isinstance(values, dict)
        else {k: _tile(v, n) for k, v in values.items()}
    )


def _baselines():
    """name -> (trained model, raw training-form inputs for at least 256 rows)."""
    reviews = recipes.datasets.load_rotten_tomatoes()
    texts, text_labels = reviews.text.to_numpy()[:1000], reviews.label.to_numpy()[:1000]
    waveforms, digit_labels, _ = recipes.datasets.load_spoken_digits(num_per_digit=30)
    images, image_labels = recipes.datasets.load_fashion_mnist("test")
    weather = recipes.datasets.load_seattle_weather()

    built = {
        "text": (text.bag_of_words_classifier(texts, 2), texts, text_labels),
        "audio": (audio.mfcc_cnn_classifier(10), waveforms, digit_labels),
        "vision": (vision.cnn_classifier((28, 28), 10), images[:2000], image_labels[:2000]),
    }
    weather_model = tabular.classifier(weather, "weather", date_columns=["date"])
    built["tabular"] = (weather_model, *tabular.to_xy(weather_model, weather, "weather"))
    for model, x, y in built.values():
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    return {name: (model, x) for name, (model, x, _) in built.items()}


def _throughput(signature, arguments, rows, seconds):
    signature(**arguments)  # first call traces
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        signature(**arguments)
        calls += 1
    return calls * rows / (time.perf_counter() - start)


def _arguments(model, x, rows, keyed=True):
    inputs = serving.to_serving_inputs(model, _tile(x if not isinstance(x, dict) else x, rows))
    arguments = {name: tf.constant(value) for name, value in inputs.items()}
    if keyed:
        arguments["key"] = tf.constant([f"row-{i}" for i in range(rows)])
    return arguments


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds for the ratio")
    args = parser.parse_args()
    recipes.set_seed(0)
    root = tempfile.mkdtemp(prefix="bench-serving-")

    print("Serving-signature throughput, examples/s (tf.saved_model.load, raw inputs, keyed)")
    print(f"{'model':<10}" + "".join(f"{'batch ' + str(b):>14}" for b in BATCHES))
    for name, (model, x) in _baselines().items():
        signature = tf.saved_model.load(serving.export_model(model, os.path.join(root, name))).signatures[
            "serving_default"
        ]
        rates = [_throughput(signature, _arguments(model, x, b), b, args.seconds) for b in BATCHES]
        print(f"{name:<10}" + "".join(f"{rate:>14,.0f}" for rate in rates))

    print("\nRaw strings vs pre-tokenized integer ids, time per example (goal <= 1.3)")
    reviews = recipes.datasets.load_rotten_tomatoes()
    texts = reviews.text.to_numpy()
    for factory in (text.lstm_classifier, text.transformer_classifier):
        model = factory(texts, 2, max_tokens=20_000)
        tokens_layer = model.get_layer("tokens")
        # The same graph from the vectorizer's output on: shared layers and weights, integer ids in.
        pretokenized = keras.Model(tokens_layer.output, model.output)
        raw_sig = tf.saved_model.load(serving.export_model(model, os.path.join(root, model.name))).signatures[
            "without_key"
        ]
        ids_sig = tf.saved_model.load(
            serving.export_model(pretokenized, os.path.join(root, model.name + "_ids"))
        ).signatures["without_key"]
        for rows in (64, 256):
            batch = _tile(texts, rows)
            raw_args = {"text": tf.constant(batch)}
            ids_args = {pretokenized.inputs[0].name: tokens_layer(tf.constant(batch))}
            np.testing.assert_allclose(
                raw_sig(**raw_args)["probabilities"], ids_sig(**ids_args)["probabilities"], atol=1e-5
            )
            raw_times, ids_times = [], []
            for _ in range(args.rounds):
                raw_times.append(1 / _throughput(raw_sig, raw_args, rows, args.seconds))
                ids_times.append(1 / _throughput(ids_sig, ids_args, rows, args.seconds))
            ratio = statistics.median(raw_times) / statistics.median(ids_times)
            verdict = "meets" if ratio <= 1.3 else "MISSES"
            print(
                f"{model.name:<12} batch {rows:>3}: {statistics.median(raw_times) * 1e6:8.1f} us / "
                f"{statistics.median(ids_times) * 1e6:8.1f} us = {ratio:.3f} ({verdict} goal <= 1.3)"
            )


if __name__ == "__main__":
    main()

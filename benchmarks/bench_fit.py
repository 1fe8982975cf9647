"""What `recipes.fit` costs over a plain `model.fit`, measured side by side in one run.

1. `recipes.fit` with every callback (best-K checkpoints of the full model,
   crash backup, early stopping that never triggers) vs a plain `model.fit` of
   the same steps on the same data. Goal: time ratio <= 1.05.
2. The `tf.data` pipeline `recipes.fit` builds (shuffle, repeat, batch,
   prefetch from NumPy arrays) vs `model.fit` on tensors already in memory,
   both without callbacks. Goal: time ratio <= 1.1.

Trials alternate between the two sides and the median of each is compared,
so that a slow moment of a shared machine hits both. Every trial trains a
fresh model from the same seed, tracing included.

Usage: python benchmarks/bench_fit.py [--repeats 3] [--num-checkpoints 5] [--steps 400]
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import recipes  # noqa: E402

BATCH_SIZE = 64


def fashion_mlp():
    """A Fashion-MNIST classifier from raw uint8 pixels: rescaling is a layer of the model."""
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28), dtype="uint8"),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def timed(train):
    recipes.set_seed(0)
    model = fashion_mlp()
    start = time.perf_counter()
    train(model)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-checkpoints", type=int, default=5)
    parser.add_argument("--steps", type=int, default=400, help="steps per virtual epoch")
    args = parser.parse_args()

    images, labels = recipes.datasets.load_fashion_mnist("train")
    val_images, val_labels = recipes.datasets.load_fashion_mnist("test")
    validation = (val_images[:2000], val_labels[:2000])
    epochs, steps = args.num_checkpoints, args.steps
    examples_per_epoch = steps * BATCH_SIZE
    # The plain fit sees exactly one pass over this many examples per epoch: the same steps.
    x, y = images[:examples_per_epoch], labels[:examples_per_epoch]
    x_tensor, y_tensor = tf.constant(x), tf.constant(y)
    total_examples = examples_per_epoch * epochs

    def recipes_all_callbacks(model):
        with tempfile.TemporaryDirectory() as run_dir:
            recipes.fit(
                model,
                (x, y),
                validation_data=validation,
                batch_size=BATCH_SIZE,
                total_examples=total_examples,
                num_checkpoints=epochs,
                directory=run_dir,
                keep_best=2,
                early_stopping_patience=epochs,
                verbose=0,
            )

    def plain_fit(model):
        model.fit(x, y, validation_data=validation, batch_size=BATCH_SIZE, epochs=epochs, verbose=0)

    def recipes_pipeline(model):
        recipes.fit(
            model, (x, y), batch_size=BATCH_SIZE, total_examples=total_examples, num_checkpoints=epochs, verbose=0
        )

    def tensors_in_memory(model):
        model.fit(x_tensor, y_tensor, batch_size=BATCH_SIZE, epochs=epochs, shuffle=False, verbose=0)

    comparisons = [
        ("recipes.fit, all callbacks / plain model.fit", recipes_all_callbacks, plain_fit, 1.05),
        ("recipes.fit tf.data pipeline / tensors in memory", recipes_pipeline, tensors_in_memory, 1.10),
    ]
    print(
        f"Fashion-MNIST MLP, {epochs} virtual epochs x {steps} steps of {BATCH_SIZE}, "
        f"{args.repeats} alternating trials per side, medians"
    )
    for name, ours, reference, goal in comparisons:
        timed(reference)  # warm-up: first-use costs of the process fall on neither side
        our_times, reference_times = [], []
        for _ in range(args.repeats):
            our_times.append(timed(ours))
            reference_times.append(timed(reference))
        ratio = statistics.median(our_times) / statistics.median(reference_times)
        verdict = "meets" if ratio <= goal else "MISSES"
        print(
            f"{name}: {statistics.median(our_times):.2f} s / {statistics.median(reference_times):.2f} s "
            f"= {ratio:.3f} ({verdict} goal <= {goal})"
        )


if __name__ == "__main__":
    main()

"""Training on a folder of images: does memory stay flat as the folder grows, and does reading files slow training?

1. Peak memory. For each size (default 1,000 and 10,000 files), a fresh process builds a `recipes.tasks.Task`
   on a folder of that many JPEG images (Fashion-MNIST items at 96x96 in colour, ten class folders), builds
   its default model and trains it with `recipes.fit`, as `recipes train --data FOLDER` does; its peak
   resident memory (ru_maxrss) is read. Goal: the largest folder's peak within 1.2x of the smallest's.
2. Time per training step, files versus arrays. The same model trains on the task's file pipeline (files
   decoded as they are read) and on the same images held in memory as arrays; the seconds per step after a
   warm-up are compared. Goal: files within 1.2x of arrays. The input pipeline alone (batches drawn, no
   model) is timed too, for information.

Prints each figure, the ratios and "pass" or "falls short" per goal. Several minutes (writing the 11,000
images takes about half a minute; run it with `nice -n 10` on a shared machine).

Usage: python benchmarks/bench_data.py [--sizes 1000 10000] [--steps 30] [--batch-size 64] [--directory DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

GOAL = 1.2


def write_folder(directory, num_files, side):
    """`num_files` JPEGs in ten class folders (Fashion-MNIST items, resized and tinted), once per directory."""
    import numpy as np
    from PIL import Image

    import recipes

    done = os.path.join(directory, ".complete")
    if os.path.exists(done):
        return directory
    images, labels = recipes.datasets.load_fashion_mnist("train")
    names = recipes.datasets.FASHION_MNIST_CLASSES
    for name in names:
        os.makedirs(os.path.join(directory, name), exist_ok=True)
    tints = np.random.default_rng(0).uniform(0.6, 1.0, size=(num_files, 3))
    for i in range(num_files):
        grey = np.asarray(Image.fromarray(images[i]).resize((side, side)), dtype="float32")
        rgb = (grey[..., None] * tints[i]).astype("uint8")
        Image.fromarray(rgb).save(os.path.join(directory, names[labels[i]], f"{i:05d}.jpg"), quality=90)
    open(done, "w").close()
    return directory


def child(folder, steps, batch_size, timing):
    """One run in a fresh process: the task, its default model, training; prints a JSON line of figures."""
    import resource

    import numpy as np

    import recipes
    from recipes.pipeline import training_pipeline
    from recipes.tasks import Task

    recipes.set_seed(0)
    started = time.perf_counter()
    task = Task.from_path(folder)
    read_seconds = time.perf_counter() - started
    model = task.build_model()
    recipes.fit(
        model, task.train_data, batch_size=batch_size, total_examples=steps * batch_size, num_checkpoints=1, verbose=0
    )
    figures = {
        "files": sum(task.num_examples.values()),
        "task_seconds": read_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if timing:
        x, y = [], []
        for image, label in task.train_data.take(steps * batch_size):
            x.append(image.numpy())
            y.append(int(label))
        arrays = (np.stack(x), np.array(y))

        def input_seconds(data):
            batches = iter(training_pipeline(data, batch_size))
            for _ in range(3):
                next(batches)
            start = time.perf_counter()
            for _ in range(steps):
                next(batches)
            return (time.perf_counter() - start) / steps

        def step_seconds(data):
            fitted = task.build_model()
            pipeline = training_pipeline(data, batch_size)
            fitted.fit(pipeline, steps_per_epoch=3, epochs=1, verbose=0)  # warm-up: tracing, buffers
            start = time.perf_counter()
            fitted.fit(pipeline, steps_per_epoch=steps, epochs=1, verbose=0)
            return (time.perf_counter() - start) / steps

        figures.update(
            input_files=input_seconds(task.train_data),
            input_arrays=input_seconds(arrays),
            step_files=step_seconds(task.train_data),
            step_arrays=step_seconds(arrays),
        )
    print(json.dumps(figures))


def run_child(folder, args, timing):
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        folder,
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
    ] + (["--timing"] if timing else [])
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if done.returncode != 0:
        sys.exit(f"the run on {folder} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def verdict(ratio):
    return "pass" if ratio <= GOAL else "falls short"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="folder sizes, in files")
    parser.add_argument("--steps", type=int, default=30, help="training steps per run (and steps timed)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-side", type=int, default=96, help="side of the square images written")
    parser.add_argument("--directory", help="where the folders are written (kept); defaults to a temporary folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--timing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.child:
        child(args.child, args.steps, args.batch_size, args.timing)
        return
    with tempfile.TemporaryDirectory(prefix="bench_data_") as scratch:
        root = args.directory or scratch
        results = {}
        for size in sorted(args.sizes):
            started = time.perf_counter()
            folder = write_folder(os.path.join(root, f"images_{size}"), size, args.image_side)
            written = time.perf_counter() - started
            results[size] = run_child(folder, args, timing=size == min(args.sizes))
            print(
                f"{size:>6} files (written in {written:.0f} s): peak memory {results[size]['peak_rss_mb']:.0f} MB, "
                f"task read in {results[size]['task_seconds']:.1f} s",
                flush=True,
            )
    smallest, largest = results[min(results)], results[max(results)]
    memory = largest["peak_rss_mb"] / smallest["peak_rss_mb"]
    print(f"peak memory, {max(results)} vs {min(results)} files: {memory:.2f}x (goal <= {GOAL}x): {verdict(memory)}")
    steps = smallest["step_files"] / smallest["step_arrays"]
    print(
        f"training step: {smallest['step_files'] * 1000:.0f} ms from files, {smallest['step_arrays'] * 1000:.0f} ms "
        f"from arrays: {steps:.2f}x (goal <= {GOAL}x): {verdict(steps)}"
    )
    print(
        f"input pipeline alone (no model): {smallest['input_files'] * 1000:.1f} ms per batch from files, "
        f"{smallest['input_arrays'] * 1000:.1f} ms from arrays ({smallest['input_files'] / smallest['input_arrays']:.1f}x)"
    )


if __name__ == "__main__":
    main()

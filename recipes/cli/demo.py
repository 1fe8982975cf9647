"""`recipes demo`: the main job, end to end on real data.

Trains the four baselines (text, audio, vision, tabular: the shipped
`recipes.tasks.shipped` tasks, through the same path as `recipes train`) with virtual
epochs, best-K checkpoints and early stopping, compares each held-out score
with the trivial baseline, exports each as a keyed SavedModel for TF
Serving, then starts the local model server over the exports and sends it
keyed requests with raw inputs over REST and gRPC.
"""

import argparse
import os
import tempfile

from recipes.cli import train

EXAMPLE = """example:
  recipes demo                        # all four baselines, exported to exports/, their runs in runs/
  recipes demo --tasks text audio     # some of them
  recipes demo --scale 0.2            # a fifth of the training, for a quick look
"""


def add_arguments(parser):
    from recipes.cli import add_verbose_arguments
    from recipes.cli.tasks import SHIPPED

    parser.add_argument("--tasks", nargs="+", choices=SHIPPED, default=list(SHIPPED), help="default: all four")
    parser.add_argument("--export-dir", default="exports", help="TF Serving model root (default: exports)")
    parser.add_argument("--directory", default="runs", help="holds each task's run folder (default: runs)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies each task's passes (default: 1)")
    add_verbose_arguments(parser, "1: a progress bar, 2: one line per virtual epoch", default=2)


def run(args):
    from recipes._common import check_number
    from recipes.cli.tasks import DEFAULT_PASSES

    check_number("--scale", args.scale, minimum=0, inclusive=False)
    summary = []
    for task in args.tasks:
        task_args = argparse.Namespace(
            shipped=task,
            data=None,
            model=None,
            export_dir=args.export_dir,
            name=None,
            directory=os.path.join(args.directory, task),
            total_examples=None,
            num_checkpoints=5,
            batch_size=32,
            seed=0,
            resume=False,
            verbose=args.verbose,
        )
        _, _, lines = train.train_and_export(task_args, passes=DEFAULT_PASSES[task] * args.scale)
        print("\n".join(lines), flush=True)
        summary.extend(lines)
    print("\nSummary")
    print("\n".join(line for line in summary if " vs " in line or "simple model" in line or "note:" in line))
    _serve_and_query(args.export_dir, args.tasks)


def _raw_requests(tasks):
    """One raw input per task, as a client holds it: a sentence, a waveform, an image file's bytes, a row."""
    import recipes

    requests = {}
    if "text" in tasks:
        requests["text"] = {"text": ["A gripping, beautifully shot thriller with a terrific cast."]}
    if "audio" in tasks:
        waveforms, labels, speakers = recipes.datasets.load_spoken_digits(num_per_digit=1, voices="flite", seed=1)
        requests["audio"] = {"waveform": waveforms[7:8].tolist()}  # "seven", in a voice never heard in training
    if "vision" in tasks:
        import tensorflow as tf

        images, _ = recipes.datasets.load_fashion_mnist("test")
        path = os.path.join(tempfile.mkdtemp(), "ankle-boot.png")
        tf.io.write_file(path, tf.io.encode_png(images[0][..., None]))  # test image 0 is an ankle boot
        with open(path, "rb") as f:
            requests["vision"] = {"image": [f.read()]}
    if "tabular" in tasks:
        day = recipes.datasets.load_seattle_weather().iloc[-62]  # 2015-10-31
        year, month, date = day.date.split("/")
        requests["tabular"] = {
            "date": [f"{month}/{date}/{year}"],  # the US format: parsed inside the model
            **{column: [float(day[column])] for column in ("precipitation", "temp_max", "temp_min", "wind")},
        }
    return requests


def _describe(inputs):
    if "waveform" in inputs:
        return f"a {len(inputs['waveform'][0])}-sample waveform"
    if "image" in inputs:
        return f"the {len(inputs['image'][0])} bytes of a PNG file"
    return {name: values[0] for name, values in inputs.items()}


def _serve_and_query(export_dir, tasks):
    from serving.client import GrpcClient, RestClient
    from serving.manager import ModelConfig
    from serving.server import ModelServer

    configs = [ModelConfig(task, os.path.abspath(os.path.join(export_dir, task))) for task in tasks]
    server = ModelServer(configs, grpc_port=0, rest_port=0, poll_seconds=0)
    print(f"\nrecipes-model-server: REST on 127.0.0.1:{server.rest_port}, gRPC on 127.0.0.1:{server.grpc_port}")
    try:
        for task, inputs in _raw_requests(tasks).items():
            for protocol, client in (
                ("REST", RestClient(f"http://127.0.0.1:{server.rest_port}", model=task)),
                ("gRPC", GrpcClient(f"127.0.0.1:{server.grpc_port}", model=task)),
            ):
                (answer,) = client.predict(inputs, keys=[f"{protocol.lower()}-{task}-0001"])
                print(
                    f"{protocol:4} {task:8} key={answer['key']}  label={answer['label']!r} "
                    f"(p={max(answer['probabilities']):.2f})  from {_describe(inputs)}"
                )
    finally:
        server.stop()

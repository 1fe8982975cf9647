"""`recipes demo`: the main job, end to end on real data.

Trains the four baselines (text, audio, vision, tabular) with virtual
epochs, best-K checkpoints and early stopping, compares each held-out score
with the trivial baseline, and exports each as a keyed SavedModel for TF
Serving.
"""

import argparse

from recipes.cli import train

EXAMPLE = """example:
  recipes demo                        # all four baselines, exported to exports/
  recipes demo --tasks text audio     # some of them
  recipes demo --scale 0.2            # a fifth of the training, for a quick look
"""


def add_arguments(parser):
    parser.add_argument("--tasks", nargs="+", choices=sorted(train.MODELS), default=list(train.TASKS))
    parser.add_argument("--export-dir", default="exports", help="TF Serving model root (default: exports)")
    parser.add_argument("--runs-dir", default="runs", help="checkpoint folders (default: runs)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies each task's passes (default: 1)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")


def run(args):
    summary = []
    for task in args.tasks:
        task_args = argparse.Namespace(
            task=task, model=None, export_dir=args.export_dir, name=None, run_dir=f"{args.runs_dir}/{task}",
            passes=train.DEFAULT_PASSES[task] * args.scale, num_checkpoints=5, batch_size=32, seed=0,
            resume=False, quiet=args.quiet,
        )  # fmt: skip
        _, _, lines = train.train_and_export(task_args)
        print("\n".join(lines), flush=True)
        summary.extend(lines)
    print("\nSummary")
    print("\n".join(line for line in summary if " vs " in line))

"""The `recipes` command line: one subcommand per recipe.

Each subcommand lives in its own module here and imports TensorFlow (and the
`models`/`serving` packages) only when it runs, so `recipes --help` is fast.
"""

import argparse
import importlib
import os
import sys

# name -> (module in recipes.cli, one-line purpose)
SUBCOMMANDS = {
    "demo": ("demo", "train and export the four baselines on real data (the main job)"),
    "train": ("train", "train one baseline (text, audio, vision, tabular) on real data and export it"),
    "predict": ("predict", "offline batch prediction of an exported model over a CSV or JSON Lines file, resumable"),
    "tune-batching": ("tune_batching", "sweep TF Serving's batching parameters under load; write the best as a file"),
    "cost": (
        "cost",
        "measure a model's throughput per device and batch size; cost per million predictions per machine",
    ),
    "augment": (
        "augment",
        "multiply a labelled text file with seeded nlpaug augmenters (synonyms, typos, swaps), offline",
    ),
    "doctor": ("doctor", "every debugging check on a baseline and its data, as a Markdown and HTML report"),
    "overfit-check": ("overfit_check", "can a fresh baseline learn a small sample by heart? PASS or FAIL with causes"),
    "mode-check": ("mode_check", "train/eval mode mistakes: random inference, frozen BatchNorm statistics"),
    "shift": ("shift", "data shift between two CSV or JSON Lines files (train vs serving): per feature and overall"),
    "diagnose": ("diagnose", "underfitting, overfitting, good, not converged or diverged, from a run's curves"),
    "search": ("search", "hyperparameter search (random, grid, Bayesian, Hyperband) for a baseline; a results table"),
    "explain": ("explain", "explain a saved .keras classifier on a few rows (PNG heat maps) and analyse its errors"),
}


def add_verbose_arguments(parser, levels, default="auto"):
    """`--verbose N` and its shorthand `--quiet` (`--verbose 0`), stored as `args.verbose`.

    Args:
        parser: The subcommand's parser.
        levels: What the levels show, for the help, e.g. `"1: a progress bar, 2: one line when done"`.
        default: `"auto"` (default), 0, 1 or 2.
    """
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--verbose", type=_verbose_level, default=default, metavar="N", help=f"0: silent, {levels} (default: {default})"
    )
    group.add_argument("--quiet", dest="verbose", action="store_const", const=0, help="the same as --verbose 0")


def _verbose_level(text):
    if text == "auto":
        return text
    if text not in ("0", "1", "2"):
        raise argparse.ArgumentTypeError(f"must be auto, 0, 1 or 2. Received: {text!r}")
    return int(text)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="recipes",
        description="keras-recipes: build, debug and ship Keras models.",
        epilog="Run `recipes COMMAND --help` for a command's options and an example.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, purpose) in SUBCOMMANDS.items():
        module = importlib.import_module(f"recipes.cli.{module_name}")
        sub = commands.add_parser(
            name,
            help=purpose,
            description=purpose[0].upper() + purpose[1:] + ".",
            epilog=module.EXAMPLE,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,  # a flag is its whole name: `--target` (a label column) never means `--target-score`
        )
        module.add_arguments(sub)
        sub.set_defaults(run_command=module.run)  # not `run`: a subcommand may take an argument so named
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the output
    args = build_parser().parse_args(argv)
    try:
        return args.run_command(args) or 0
    except ValueError as error:
        print(f"recipes {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

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
}


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
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the output
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except ValueError as error:
        print(f"recipes {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

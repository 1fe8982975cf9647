"""`recipes diagnose RUN`: underfitting, overfitting, good, not converged or diverged, from a run's curves.

RUN is a `recipes.fit` checkpoint folder (its `checkpoints.json` records every virtual epoch's logs,
across restarts) or a CSV file written by `keras.callbacks.CSVLogger`. The exit status is 0 for "good"
(pass) and "not converged" (warn), 1 for underfitting, overfitting and diverged (fail), 2 for bad usage.
"""

EXAMPLE = """example:
  recipes train text && recipes diagnose runs/text
  recipes diagnose training_log.csv --target-score 0.95   # a CSVLogger file; the score wanted: human-level accuracy
  recipes diagnose runs/text --json                       # the diagnosis's to_dict() as JSON on stdout
"""


def add_arguments(parser):
    from recipes.cli.checking import add_json_argument

    parser.add_argument("run", help="a recipes.fit run directory, or a CSVLogger .csv file")
    parser.add_argument("--target-score", type=float, help="score wanted, e.g. human-level accuracy")
    parser.add_argument("--metric", help="metric to judge (default: accuracy if logged, else loss)")
    add_json_argument(parser)


def read_history(path):
    """The `History.history`-style dict of a checkpoint folder or a CSVLogger file."""
    import os

    if os.path.isdir(path):
        from recipes.callbacks import STATE_FILE, BestKCheckpoint

        if not os.path.exists(os.path.join(path, STATE_FILE)):
            raise ValueError(f"{path!r} holds no {STATE_FILE}: not a recipes.fit run directory")
        import json

        with open(os.path.join(path, STATE_FILE)) as f:
            state = json.load(f)
        history = BestKCheckpoint(path, monitor=state["monitor"], mode=state["mode"]).history
    elif os.path.isfile(path):
        import pandas as pd

        try:
            frame = pd.read_csv(path)
            history = {c: frame[c].astype(float).tolist() for c in frame.columns if c != "epoch"}
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
            raise ValueError(f"{path!r} is not a CSVLogger file of numbers: {error}") from None
    else:
        raise ValueError(f"{path!r} is neither a checkpoint folder nor a CSV file")
    if not history.get("loss"):
        raise ValueError(f"{path!r} records no epoch with a 'loss'")
    return history


def run(args):
    from recipes.cli.checking import finish
    from recipes.debug import diagnose

    return finish(args, diagnose(read_history(args.run), target_score=args.target_score, metric=args.metric))

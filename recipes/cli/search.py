"""`recipes search TASK` (or `--data PATH`): hyperparameter search for a baseline, as a table and a CSV file.

Takes the task as `recipes train` does (`recipes.cli.tasks`: read, checked and
split once; every trial builds its model from it), then searches the
factory's learning rate and one size argument where it has one with
`recipes.debug.search_hyperparameters` (every trial trained with virtual
epochs), ranking the trials on the validation split. The test split is left
alone: train the chosen configuration with `recipes train`, or load the best
trial's checkpoint, and measure it once.
"""

import os

import numpy as np

EXAMPLE = """example:
  recipes search text                                   # random search, 10 trials, runs/search-text.csv
  recipes search tabular --tuner hyperband --num-checkpoints 9
  recipes search text --tuner grid --max-trials 8 --output grid.csv
  recipes search text --train-fraction 0.2 --total-examples 800    # a quick look on a fifth of the split
  recipes search text --json --quiet                    # the result's to_dict() as JSON on stdout
  # interrupted? the same command again continues the search in --directory

  recipes search --data weather.csv --target sky --date day --split-dates 2014-07-01 2015-01-01

searched: bag_of_words (text): learning_rate, max_tokens; classifier and regressor (tables): learning_rate,
  units of the hidden layer; any other factory: learning_rate
"""

TUNERS = ("random", "grid", "bayesian", "hyperband")
LEARNING_RATES = [1e-3, 3e-3, 1e-2, 3e-2]
# Choices as lists, so that grid search can enumerate them too; by factory, the learning rate for any other.
SPACES = {
    "bag_of_words": {"learning_rate": LEARNING_RATES, "max_tokens": [5_000, 20_000]},
    "classifier": {"learning_rate": LEARNING_RATES, "units": [16, 64]},
    "regressor": {"learning_rate": LEARNING_RATES, "units": [16, 64]},
}
# Examples per trial by default, in passes over the training split (the full budget, for Hyperband).
DEFAULT_PASSES = {"text": 3.0, "table": 20.0}


def add_arguments(parser):
    from recipes.cli.checking import add_json_argument
    from recipes.cli.tasks import add_task_arguments

    add_task_arguments(parser)
    parser.add_argument("--tuner", choices=TUNERS, default="random", help="default: random")
    parser.add_argument("--max-trials", type=int, default=10, help="default: 10")
    parser.add_argument(
        "--total-examples",
        type=int,
        help="examples each trial trains on (default: 3 passes over the training split, 20 for a table)",
    )
    parser.add_argument(
        "--train-fraction",
        type=float,
        default=1.0,
        help="search on this share of the training split, drawn by --seed, for a quick look (default: 1.0)",
    )
    parser.add_argument("--num-checkpoints", type=int, default=3, help="virtual epochs per trial (default: 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="default: 32")
    parser.add_argument("--objective", default="val_loss", help="validation metric to rank by (default: val_loss)")
    parser.add_argument("--directory", help="search state, resumable (default: runs/search-TASK)")
    parser.add_argument("--output", help="results table as CSV (default: runs/search-TASK.csv)")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("--overwrite", action="store_true", help="start the search again instead of continuing it")
    parser.add_argument("--quiet", action="store_true", help="no line per trial")
    add_json_argument(parser)


def _sample(rows, fraction, seed):
    if fraction == 1.0:
        return rows
    keep = np.random.default_rng(seed).random(len(rows)) < fraction
    return rows[keep] if keep.any() else rows[:1]


def search_space(model):
    """The space searched for a factory: its learning rate, and one size argument where it has one."""
    return SPACES.get(model, {"learning_rate": LEARNING_RATES})


def model_fn_of(task, model):
    """`model_fn(**values)` for `search_hyperparameters`: the task's factory with the searched values."""

    def model_fn(learning_rate, **sizes):
        options = {"learning_rate": learning_rate}
        if "units" in sizes:
            options["hidden_units"] = (sizes.pop("units"),)
        return task.build_model(model, **options, **sizes)

    return model_fn


def run(args):
    import sys

    import recipes
    from recipes._common import take_rows
    from recipes.cli.checking import finish, report_output
    from recipes.cli.tasks import check_model, task_from_args
    from recipes.debug import search_hyperparameters

    if args.total_examples is not None and args.total_examples < 1:
        raise ValueError(f"--total-examples must be >= 1. Received: {args.total_examples}")
    if not 0 < args.train_fraction <= 1:
        raise ValueError(f"--train-fraction must be in (0, 1]. Received: {args.train_fraction}")
    with report_output(args):
        task = task_from_args(args, seed=args.seed)  # loaded and split once: the trials share it
        model = check_model(task, args.model)
        directory = args.directory or os.path.join("runs", f"search-{task.name}")
        output = args.output or os.path.join("runs", f"search-{task.name}.csv")
        recipes.set_seed(args.seed)
        x, y = task.arrays("train")
        rows = _sample(np.arange(len(y)), args.train_fraction, args.seed)
        train, validation = (take_rows(x, rows), y[rows]), task.arrays("validation")
        num_train = len(train[1])
        total_examples = args.total_examples or max(
            int(DEFAULT_PASSES.get(task.modality, 3.0) * num_train), args.batch_size * max(args.num_checkpoints, 1)
        )
        try:
            result = search_hyperparameters(
                model_fn_of(task, model),
                search_space(model),
                train,
                validation,
                tuner=args.tuner,
                max_trials=args.max_trials,
                batch_size=args.batch_size,
                total_examples=total_examples,
                num_checkpoints=args.num_checkpoints,
                objective=args.objective,
                directory=directory,
                seed=args.seed,
                overwrite=args.overwrite,
                verbose=0 if args.quiet else 1,
            )
        except RuntimeError as error:  # every trial failed (or three in a row): a finding, not a crash
            print(f"recipes search: {error}", file=sys.stderr)
            return 1
        if os.path.dirname(output):
            os.makedirs(os.path.dirname(output), exist_ok=True)
        result.table.to_csv(output, index=False)
    shown = result.table.drop(columns=["error"]) if result.verdict == "info" else result.table
    with _pd_options():
        table = shown.to_string(index=False)
    line = (
        f"[{task.name}] {num_train} training / {len(validation[1])} validation examples, {total_examples} "
        f"examples per trial; table written to {output}; best checkpoint {result.best_checkpoint}"
    )
    return finish(args, result, f"{result}\n{table}\n{line}")


def _pd_options():
    import pandas as pd

    return pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format)

"""`recipes search TASK`: hyperparameter search for a baseline on real data, as a table and a CSV file.

Loads the task's data and splits it as `recipes train` does, then searches the
baseline factory's learning rate and one size argument with
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

searched: text (bag of words on Rotten Tomatoes): learning_rate, max_tokens
  tabular (classifier of Seattle's weather): learning_rate, units of its hidden layer
"""

TASKS = ("text", "tabular")
TUNERS = ("random", "grid", "bayesian", "hyperband")
# Choices as lists, so that grid search can enumerate them too.
SPACES = {
    "text": {"learning_rate": [1e-3, 3e-3, 1e-2, 3e-2], "max_tokens": [5_000, 20_000]},
    "tabular": {"learning_rate": [1e-3, 3e-3, 1e-2, 3e-2], "units": [16, 64]},
}
# Examples per trial by default, in passes over the training split (the full budget, for Hyperband).
DEFAULT_PASSES = {"text": 3.0, "tabular": 20.0}


def add_arguments(parser):
    from recipes.cli.checking import add_json_argument

    parser.add_argument("task", choices=TASKS, help="which baseline")
    parser.add_argument("--tuner", choices=TUNERS, default="random", help="default: random")
    parser.add_argument("--max-trials", type=int, default=10, help="default: 10")
    parser.add_argument(
        "--total-examples", type=int,
        help="examples each trial trains on (default: 3 passes over the training split for text, 20 for tabular)",
    )  # fmt: skip
    parser.add_argument(
        "--train-fraction", type=float, default=1.0,
        help="search on this share of the training split, drawn by --seed, for a quick look (default: 1.0)",
    )  # fmt: skip
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


def _text(recipes, fraction, seed):
    from models import text

    reviews = recipes.datasets.load_rotten_tomatoes()
    x, y = reviews.text.to_numpy(), reviews.label.to_numpy()
    train, val, _ = recipes.repeatable_split(reviews.movie_name, (0.8, 0.1, 0.1))
    train = _sample(train, fraction, seed)
    names = recipes.datasets.ROTTEN_TOMATOES_CLASSES

    def model_fn(learning_rate, max_tokens):
        return text.bag_of_words_classifier(
            x[train], 2, class_names=names, max_tokens=max_tokens, learning_rate=learning_rate
        )

    return model_fn, (x[train], y[train]), (x[val], y[val])


def _tabular(recipes, fraction, seed):
    from models import tabular

    weather = recipes.datasets.load_seattle_weather()
    train, val, _ = recipes.split_by_date(weather.date, ["2014/07/01", "2015/01/01"])
    train = _sample(train, fraction, seed)
    frame = weather.iloc[train]

    def model_fn(learning_rate, units):
        return tabular.classifier(
            frame, "weather", date_columns=["date"], hidden_units=(units,), learning_rate=learning_rate
        )

    reference = model_fn(1e-3, 16)  # to_xy reads the inputs and class names off a model
    return model_fn, tabular.to_xy(reference, frame, "weather"), tabular.to_xy(reference, weather.iloc[val], "weather")


def run(args):
    import sys

    import recipes
    from recipes.cli.checking import finish, report_output
    from recipes.debug import search_hyperparameters

    if args.total_examples is not None and args.total_examples < 1:
        raise ValueError(f"--total-examples must be >= 1. Received: {args.total_examples}")
    if not 0 < args.train_fraction <= 1:
        raise ValueError(f"--train-fraction must be in (0, 1]. Received: {args.train_fraction}")
    directory = args.directory or os.path.join("runs", f"search-{args.task}")
    output = args.output or os.path.join("runs", f"search-{args.task}.csv")
    with report_output(args):
        recipes.set_seed(args.seed)
        load = {"text": _text, "tabular": _tabular}[args.task]
        model_fn, train, validation = load(recipes, args.train_fraction, args.seed)
        num_train = len(train[1])
        total_examples = args.total_examples or max(
            int(DEFAULT_PASSES[args.task] * num_train), args.batch_size * max(args.num_checkpoints, 1)
        )
        try:
            result = search_hyperparameters(
                model_fn,
                SPACES[args.task],
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
        f"[{args.task}] {num_train} training / {len(validation[1])} validation examples, {total_examples} "
        f"examples per trial; table written to {output}; best checkpoint {result.best_checkpoint}"
    )
    return finish(args, result, f"{result}\n{table}\n{line}")


def _pd_options():
    import pandas as pd

    return pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format)

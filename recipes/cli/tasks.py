"""How every training command names its task: a shipped data set by name, or the user's own files with `--data`.

`recipes train`, `demo`, `doctor`, `overfit-check`, `mode-check` and `search` all call `add_task_arguments`
and `task_from_args`, so `recipes train text` and `recipes doctor --data reviews.csv --target sentiment` read
their data the same way: a `recipes.tasks.Task`, built (and every check of the data run) before anything is
trained or written.
"""

import argparse

# recipes.tasks's SHIPPED, MODALITIES, PROBLEMS and COLUMN_TYPES, written out so that building the parser
# (`recipes --help`) imports no TensorFlow; tests/test_own_data.py checks that they agree.
SHIPPED = ("text", "audio", "vision", "tabular")
MODALITIES = ("text", "image", "audio", "table")
PROBLEMS = ("classification", "regression")
COLUMN_TYPES = ("number", "category", "date", "text")

# Passes over the training split shown by default (`--total-examples`), sized for about a minute on 2 cores.
# Each network beats its task's simple model at these budgets (benchmarks/bench_quality.py, demo rows): the
# bag of words 0.737 vs 0.711 after 3 passes, the CNN 0.876 vs 0.836, the audio CNN 0.828 vs 0.585 on unseen
# flite voices after 10 passes; the tabular classifier peaks near 10 passes (0.553 at 10, 0.521 at 60, where
# validation loss has long been rising).
DEFAULT_PASSES = {"text": 3.0, "audio": 10.0, "vision": 3.0, "tabular": 10.0}
DATA_PASSES = 10.0  # for a task on the user's files
# The shipped tabular task predicts the weather; its regressors predict the day's high temperature.
TABULAR_REGRESSION_TARGET = "temp_max"

DATA_HELP = """your own data (instead of a shipped TASK):
  recipes COMMAND --data reviews.csv --target sentiment [--group movie]   # CSV, JSON Lines or Parquet
  recipes COMMAND --data weather.csv --target sky --date day --split-dates 2014-07-01 2015-01-01
  recipes COMMAND --data photos/        # one folder per class of images, WAV clips or .txt files
"""


def add_task_arguments(parser, shipped=SHIPPED, model_help=None):
    """The positional shipped `TASK` and the `--data` options, stored as `args.shipped`, `args.data`, ...

    Args:
        parser: The subcommand's parser.
        shipped: The shipped task names this command takes.
        model_help: Optional help for `--model`, defaults to naming the task's factories.
    """
    parser.add_argument(
        "shipped",
        nargs="?",
        choices=shipped,
        metavar="TASK",
        help=f"a shipped data set: {', '.join(shipped)} (or --data PATH)",
    )
    parser.add_argument(
        "--model",
        metavar="FACTORY",
        help=model_help
        or "factory name, one of the task's models (default: its first); text: bag_of_words, lstm, "
        "transformer; image and audio: cnn, linear (image: transfer, audio: lstm); table: classifier or regressor, linear",
    )
    group = parser.add_argument_group(
        "your own data",
        "instead of a shipped TASK: a table file or a folder of class "
        "folders, read as recipes.tasks.Task.from_path reads it",
    )
    group.add_argument(
        "--data", metavar="PATH", help="a .csv, .tsv, .jsonl or .parquet table, or a folder of class folders"
    )
    group.add_argument("--target", metavar="COLUMN", help="the column to predict (tables)")
    add_table_task_arguments(group)
    group.add_argument(
        "--task",
        "--modality",
        dest="modality",
        choices=MODALITIES,
        help="read the data as this modality (default: what the path holds)",
    )
    group.add_argument("--image-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"), help="images are resized to it")
    group.add_argument(
        "--sample-rate", type=int, metavar="HZ", help="clips are resampled to it (needed for mixed rates)"
    )


def add_table_task_arguments(group):
    """The options that type and split a table of `--data`: `--key`, `--group`, `--date`, `--split-dates`,
    `--problem`, `--column-type` and `--features`. `recipes shift` takes them alone to read its reference file
    as a task. Returns their `dest` names."""
    actions = [
        group.add_argument(
            "--key", metavar="COLUMN", help="a column of row keys to split by (default: the row number)"
        ),
        group.add_argument(
            "--group",
            metavar="COLUMN",
            help="rows of one group stay in one split (tables: a column; folders: a regular expression on file names)",
        ),
        group.add_argument("--date", metavar="COLUMN", help="a date column to split by, with --split-dates"),
        group.add_argument(
            "--split-dates", nargs=2, metavar=("D1", "D2"), help="validation starts at D1, test at D2 (with --date)"
        ),
        group.add_argument("--problem", choices=PROBLEMS, help="default: inferred from the target"),
        group.add_argument(
            "--column-type",
            action="append",
            metavar="COLUMN=TYPE",
            type=_column_type,
            help=f"override a column's inferred type ({', '.join(COLUMN_TYPES)}); repeatable",
        ),
        group.add_argument(
            "--features", nargs="+", metavar="COLUMN", help="the input columns (default: all the others)"
        ),
    ]
    return [action.dest for action in actions]


def _column_type(text):
    name, sep, kind = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(
            f"must be COLUMN=TYPE, TYPE one of {', '.join(COLUMN_TYPES)}. Received: {text!r}"
        )
    return name, kind


_DATA_OPTIONS = {
    "target": "--target",
    "key": "--key",
    "group": "--group",
    "date": "--date",
    "split_dates": "--split-dates",
    "modality": "--task",
    "problem": "--problem",
    "column_type": "--column-type",
    "features": "--features",
    "image_size": "--image-size",
    "sample_rate": "--sample-rate",
}


def task_from_args(args, seed=0):
    """The `recipes.tasks.Task` the command line names: a shipped one, or one on `--data`.

    Every check of the data runs here, so bad data is a `ValueError` (exit status 2 with its message)
    before anything is trained or written.

    Args:
        args: The parsed arguments of a parser given `add_task_arguments`.
        seed: Int, defaults to 0. Draws the shipped spoken digits; a `--data` split does not depend on it.
    """
    from recipes.tasks import Task, shipped

    options = {name: getattr(args, name, None) for name in _DATA_OPTIONS}
    data, name, model = getattr(args, "data", None), getattr(args, "shipped", None), getattr(args, "model", None)
    given = [flag for option, flag in _DATA_OPTIONS.items() if options[option] is not None]
    if data is not None and name is not None:
        raise ValueError(f"give a shipped task or --data, not both. Received: {name!r} and --data {data}")
    if data is None:
        if name is None:
            raise ValueError(
                f"a task is needed: a shipped data set ({', '.join(SHIPPED)}) or --data PATH (a table file or a "
                "folder of class folders)"
            )
        target = options["target"]
        if name == "tabular" and target is not None:
            given.remove("--target")
        if given:
            raise ValueError(
                f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to --data, not to the "
                f"shipped task {name!r}"
            )
        if name == "tabular" and target is None and model == "regressor":
            target = TABULAR_REGRESSION_TARGET  # `recipes train tabular --model regressor`, as before
        return shipped(name, seed=seed, target=target)
    image_size = options["image_size"]
    return Task.from_path(
        data,
        target=options["target"],
        key=options["key"],
        group=options["group"],
        date=options["date"],
        split_dates=options["split_dates"],
        modality=options["modality"],
        problem=options["problem"],
        column_types=dict(options["column_type"]) if options["column_type"] else None,
        features=options["features"],
        image_size=tuple(image_size) if image_size else None,
        sample_rate=options["sample_rate"],
        name=getattr(args, "name", None),
    )


def check_model(task, model):
    """The factory name `--model` gives, checked against the task's, defaulting to its first."""
    if model is None:
        return task.models[0]
    if model not in task.models:
        raise ValueError(f"--model for {task.name} must be one of {task.models}. Received: {model!r}")
    return model


def default_passes(task):
    """Passes over the training split a command shows by default: the shipped task's, else `DATA_PASSES`."""
    return DEFAULT_PASSES.get(task.name, DATA_PASSES) if task.path is None else DATA_PASSES


def describe(task):
    """One line: the task's split and sizes, for the first line a command prints."""
    source = f" of {task.path}" if task.path else ""
    return f"{task.split}{source}"


def task_argv(args):
    """The task's part of a command line that names the same task as `args` (for the processes a command starts)."""
    argv = [args.shipped] if args.shipped is not None else ["--data", args.data]
    for name, flag in _DATA_OPTIONS.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if name == "column_type":
            for column, kind in value:
                argv += [flag, f"{column}={kind}"]
        elif isinstance(value, (list, tuple)):
            argv += [flag, *value]
        else:
            argv += [flag, value]
    if args.model is not None:
        argv += ["--model", args.model]
    return [str(a) for a in argv]

"""`recipes shift`: has the data moved between two CSV or JSON Lines files? Per feature, and as a whole.

Reads both files with pandas, runs `recipes.debug.shift_report` (a table: every column, or one text
column), prints the report and writes `shift.png` and `shift.md` to the folder given. With `--target`, that
column is the labels of both sides: the report adds label shift and concept shift. With `--split-column`,
the column the two files were split by (a date, a group) is reported apart as expected to differ. The exit
status is 1 when the data shifted (verdict "fail"), 0 when it did not, 2 for bad input: a CI job can gate on it.

With the task options `recipes train --data` takes (`--target` and any of `--date`, `--split-dates`,
`--column-type`, `--features`, `--key`, `--group`, `--problem`: `recipes.cli.tasks.add_table_task_arguments`),
the reference file is read as that task (`recipes.tasks.Task.from_path`, every check of the data run) and
both files are compared as the task reads its columns: `shift_report(..., column_types=task.column_types)`
(dates in the task's format, free text as text, categories as categories, numbers as numbers), over the
task's features, with the task's `--date` as the split column. The target is the labels when the current
file has it too (a serving file usually does not). Without them, `shift_report` guesses the types.
"""

EXAMPLE = """example:
  recipes shift --reference train.csv --current serving.csv --directory shift
  recipes shift --reference train.jsonl --current today.jsonl --modality text --column review
  recipes shift --reference train.csv --current serving.csv --columns temp_max wind --json
  recipes shift --reference 2014.csv --current 2015.csv --target weather --split-column date
  recipes shift --reference weather.csv --current serving.csv --target sky --date day --split-dates 2014-07-01 2015-01-01

input: .csv (header row) or .jsonl/.ndjson/.json (one JSON object per line), with the same columns
output: the report on stdout (verdict first; with --json its to_dict() as JSON); shift.md (Markdown) and
  shift.png (histograms of the most shifted features) in --directory; exit status 1 when the data shifted
"""


def add_arguments(parser):
    from recipes.cli.checking import add_json_argument
    from recipes.cli.tasks import add_table_task_arguments

    parser.add_argument("--reference", required=True, help="the data the model was trained on (.csv or .jsonl)")
    parser.add_argument("--current", required=True, help="the data to compare: test or serving (.csv or .jsonl)")
    parser.add_argument(
        "--modality",
        choices=("table", "text"),
        help="table (default) or text (needs --column); with the task options, the task's modality",
    )
    parser.add_argument("--column", help="the text column, for --modality text")
    parser.add_argument("--columns", nargs="+", help="columns to compare (table; default: all of the reference's)")
    parser.add_argument(
        "--target", help="the label column of both files: adds label shift and concept shift to the report"
    )
    parser.add_argument(
        "--split-column", help="the column the two files were split by (table): reported apart, expected to differ"
    )
    parser.add_argument("--alpha", type=float, default=0.01, help="family-wise false-alarm rate (default: 0.01)")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("--directory", default=".", help="folder for shift.md and shift.png (default: .)")
    group = parser.add_argument_group(
        "the reference file as a task",
        "read --reference as recipes train --data reads it (needs --target), and "
        "compare both files with the task's column types and its --date as the split column",
    )
    parser.set_defaults(task_options=add_table_task_arguments(group))
    add_json_argument(parser)


def _read(path, role):
    import os

    import pandas as pd

    from recipes._common import table_format as file_format

    if not os.path.isfile(path):
        raise ValueError(f"--{role} must be an existing file. Received: {path!r}")
    try:
        if file_format(path, role) == "csv":
            return pd.read_csv(path)
        return pd.read_json(path, lines=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        raise ValueError(f"cannot read the {role} file {path}: {error}") from None


def _labels(reference, current, target, required=True):
    """`(reference, current, labels)`: the frames without `target`, and its values on each side (or `None`
    when the current file lacks it and `required` is false)."""
    if not required and target not in current.columns:
        return reference, current, None
    labels = []
    for frame, role in ((reference, "reference"), (current, "current")):
        if target not in frame.columns:
            raise ValueError(f"--target: the {role} file has no column {target!r}; it has {list(frame.columns)}")
        missing = int(frame[target].isna().sum())
        if missing:
            raise ValueError(f"--target: the {role} file has {missing} rows without a {target!r} value")
        labels.append(frame[target].to_numpy())
    return reference.drop(columns=target), current.drop(columns=target), labels


def _as_task(args):
    """The options `shift_report` takes from the task `--reference` names with the task options."""
    from recipes.cli.tasks import task_from_args

    args.data, args.shipped = args.reference, None
    task = task_from_args(args, seed=args.seed)
    if task.modality == "text":
        return dict(modality="text", column=args.column or task.features[0])
    columns = args.columns or [*task.features, *([task.date] if task.date and task.date not in task.features else [])]
    column_types = {column: kind for column, kind in task.column_types.items() if column in columns}
    return dict(
        modality="table", columns=columns, column_types=column_types, split_column=args.split_column or task.date
    )


def run(args):
    import os

    from recipes.cli.checking import finish, report_output
    from recipes.debug import shift_report

    with report_output(args):
        as_task = any(getattr(args, option) is not None for option in args.task_options)
        options = (
            _as_task(args)
            if as_task
            else dict(
                modality=args.modality or "table",
                column=args.column,
                columns=args.columns,
                split_column=args.split_column,
            )
        )
        reference, current = _read(args.reference, "reference"), _read(args.current, "current")
        labels = None
        if args.target:
            reference, current, labels = _labels(reference, current, args.target, required=not as_task)
        column = options.pop("column", None)
        if options["modality"] == "text":
            if not column:
                raise ValueError(f"--modality text needs --column, one of {list(reference.columns)}")
            for frame, role in ((reference, "reference"), (current, "current")):
                if column not in frame.columns:
                    raise ValueError(f"the {role} file has no column {column!r}; it has {list(frame.columns)}")
            reference = reference[column].fillna("").astype(str)
            current = current[column].fillna("").astype(str)
            options.update(columns=args.columns, split_column=args.split_column)
        if labels is not None:
            reference, current = (reference, labels[0]), (current, labels[1])
        report = shift_report(reference, current, alpha=args.alpha, seed=args.seed, **options)
        os.makedirs(args.directory, exist_ok=True)
        markdown = os.path.join(args.directory, "shift.md")
        with open(markdown, "w", encoding="utf-8") as f:
            f.write("# Data shift report\n\n" + report.to_markdown())
        figure = report.plot(os.path.join(args.directory, "shift.png"))
    return finish(args, report, f"{report}\nwrote {markdown} and {figure}")

"""`recipes shift`: has the data moved between two CSV or JSON Lines files? Per feature, and as a whole.

Reads both files with pandas, runs `recipes.debug.shift_report` (a table: every column, or one text
column), prints the report and writes `shift.png` and `shift.md` to the folder given. With `--target`, that
column is the labels of both sides: the report adds label shift and concept shift. With `--split-column`,
the column the two files were split by (a date, a group) is reported apart as expected to differ. The exit
status is 1 when the data shifted (verdict "fail"), 0 when it did not, 2 for bad input: a CI job can gate on it.
"""

EXAMPLE = """example:
  recipes shift --reference train.csv --current serving.csv --directory shift
  recipes shift --reference train.jsonl --current today.jsonl --modality text --column review
  recipes shift --reference train.csv --current serving.csv --columns temp_max wind --json
  recipes shift --reference 2014.csv --current 2015.csv --target weather --split-column date

input: .csv (header row) or .jsonl/.ndjson/.json (one JSON object per line), with the same columns
output: the report on stdout (verdict first; with --json its to_dict() as JSON); shift.md (Markdown) and
  shift.png (histograms of the most shifted features) in --directory; exit status 1 when the data shifted
"""


def add_arguments(parser):
    from recipes.cli.checking import add_json_argument

    parser.add_argument("--reference", required=True, help="the data the model was trained on (.csv or .jsonl)")
    parser.add_argument("--current", required=True, help="the data to compare: test or serving (.csv or .jsonl)")
    parser.add_argument(
        "--modality", choices=("table", "text"), default="table", help="table (default) or text (needs --column)"
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


def run(args):
    import os

    from recipes.cli.checking import finish, report_output
    from recipes.debug import shift_report

    with report_output(args):
        reference, current = _read(args.reference, "reference"), _read(args.current, "current")
        labels = None
        if args.target:
            labels = []
            for frame, role in ((reference, "reference"), (current, "current")):
                if args.target not in frame.columns:
                    raise ValueError(
                        f"--target: the {role} file has no column {args.target!r}; it has {list(frame.columns)}"
                    )
                missing = int(frame[args.target].isna().sum())
                if missing:
                    raise ValueError(f"--target: the {role} file has {missing} rows without a {args.target!r} value")
                labels.append(frame[args.target].to_numpy())
            reference, current = reference.drop(columns=args.target), current.drop(columns=args.target)
        if args.modality == "text":
            if not args.column:
                raise ValueError(f"--modality text needs --column, one of {list(reference.columns)}")
            for frame, role in ((reference, "reference"), (current, "current")):
                if args.column not in frame.columns:
                    raise ValueError(f"the {role} file has no column {args.column!r}; it has {list(frame.columns)}")
            reference = reference[args.column].fillna("").astype(str)
            current = current[args.column].fillna("").astype(str)
        if labels is not None:
            reference, current = (reference, labels[0]), (current, labels[1])
        report = shift_report(
            reference, current, modality=args.modality, alpha=args.alpha, seed=args.seed, columns=args.columns,
            split_column=args.split_column,
        )  # fmt: skip
        os.makedirs(args.directory, exist_ok=True)
        markdown = os.path.join(args.directory, "shift.md")
        with open(markdown, "w", encoding="utf-8") as f:
            f.write("# Data shift report\n\n" + report.to_markdown())
        figure = report.plot(os.path.join(args.directory, "shift.png"))
    return finish(args, report, f"{report}\nwrote {markdown} and {figure}")

"""`recipes shift`: has the data moved between two CSV or JSON Lines files? Per feature, and as a whole.

Reads both files with pandas, runs `recipes.debug.shift_report` (tabular: every column, or one text
column), prints the report and writes `shift.png` and `shift.md` to the output folder.
"""

EXAMPLE = """example:
  recipes shift --reference train.csv --current serving.csv --output-dir shift
  recipes shift --reference train.jsonl --current today.jsonl --kind text --column review
  recipes shift --reference train.csv --current serving.csv --columns temp_max wind --fail-on-shift

input: .csv (header row) or .jsonl/.ndjson/.json (one JSON object per line), with the same columns
output: the report on stdout (verdict first); shift.md (Markdown) and shift.png (histograms of the most
  shifted features) in --output-dir; exit status 1 with --fail-on-shift when the data shifted
"""


def add_arguments(parser):
    parser.add_argument("--reference", required=True, help="the data the model was trained on (.csv or .jsonl)")
    parser.add_argument("--current", required=True, help="the data to compare: test or serving (.csv or .jsonl)")
    parser.add_argument(
        "--kind", choices=("tabular", "text"), default="tabular", help="tabular (default) or text (needs --column)"
    )
    parser.add_argument("--column", help="the text column, for --kind text")
    parser.add_argument("--columns", nargs="+", help="columns to compare (tabular; default: all of the reference's)")
    parser.add_argument("--alpha", type=float, default=0.01, help="family-wise false-alarm rate (default: 0.01)")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("--output-dir", default=".", help="folder for shift.md and shift.png (default: .)")
    parser.add_argument("--fail-on-shift", action="store_true", help="exit with status 1 when the data shifted")


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

    from recipes.debug.shift import shift_report

    reference, current = _read(args.reference, "reference"), _read(args.current, "current")
    if args.kind == "text":
        if not args.column:
            raise ValueError(f"--kind text needs --column, one of {list(reference.columns)}")
        for frame, role in ((reference, "reference"), (current, "current")):
            if args.column not in frame.columns:
                raise ValueError(f"the {role} file has no column {args.column!r}; it has {list(frame.columns)}")
        reference = reference[args.column].fillna("").astype(str)
        current = current[args.column].fillna("").astype(str)
    report = shift_report(reference, current, kind=args.kind, alpha=args.alpha, seed=args.seed, columns=args.columns)
    print(report)
    os.makedirs(args.output_dir, exist_ok=True)
    markdown = os.path.join(args.output_dir, "shift.md")
    with open(markdown, "w") as f:
        f.write(report.to_markdown())
    figure = report.plot(os.path.join(args.output_dir, "shift.png"))
    print(f"wrote {markdown} and {figure}")
    return 1 if args.fail_on_shift and report.verdict == "shift" else 0

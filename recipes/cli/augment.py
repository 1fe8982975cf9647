"""`recipes augment`: multiply a labelled text file offline with nlpaug augmenters, seeded.

Reads a CSV or JSON Lines file, writes the original rows plus `--n` synthetic variants of each, with keys
`<key>#aug<copy>`, labels copied and a `synthetic` column (see `recipes.augment.augment_dataset`).
"""

EXAMPLE = """example:
  recipes augment --input reviews.csv --output more.csv --column text --augmenter synonym --n 2
  recipes augment --input reviews.jsonl --output more.jsonl --column text --augmenter swap,delete,spelling \\
      --option aug_p=0.1 --seed 1      # one of the three per synthetic row

augmenters: keyboard, ocr, random_char, swap, delete, split, spelling, synonym (WordNet, offline)
"""


def add_arguments(parser):
    parser.add_argument("--input", required=True, help="input .csv or .jsonl file")
    parser.add_argument("--output", required=True, help="output .csv or .jsonl file (overwritten)")
    parser.add_argument("--column", required=True, help="the text column to augment")
    parser.add_argument(
        "--augmenter",
        default="synonym",
        help="augmenter, or several separated by commas (one per row; default: synonym)",
    )
    parser.add_argument("--n", type=int, default=1, help="synthetic variants per row (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("--key", default="key", help="key column; made from the row numbers if absent (default: key)")
    parser.add_argument("--label", default="label", help="label column, or '' for unlabelled data (default: label)")
    parser.add_argument(
        "--option", action="append", default=[], metavar="NAME=VALUE",
        help="option of the nlpaug augmenters, e.g. aug_p=0.1 (repeatable; numbers are parsed)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _options(pairs):
    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--option must be NAME=VALUE. Received: {pair!r}")
        for parse in (int, float):
            try:
                value = parse(value)
                break
            except ValueError:
                continue
        options[name] = value
    return options


def _table_format(path):
    lower = path.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise ValueError(f"files must end in .csv or .jsonl. Received: {path!r}")


def run(args):
    import pandas as pd

    from recipes.augment import OneOf, augment_dataset, text_augmenter

    input_format, output_format = _table_format(args.input), _table_format(args.output)
    options = _options(args.option)
    kinds = [kind.strip() for kind in args.augmenter.split(",") if kind.strip()]
    augmenters = [text_augmenter(kind, **options) for kind in kinds]
    if not augmenters:
        raise ValueError(f"--augmenter names no augmenter. Received: {args.augmenter!r}")
    augmenter = augmenters[0] if len(augmenters) == 1 else OneOf(augmenters)
    read = pd.read_csv if input_format == "csv" else (lambda path: pd.read_json(path, lines=True))
    frame = read(args.input)
    if args.key in frame.columns:
        frame[args.key] = frame[args.key].astype(str)
    out = augment_dataset(
        frame, augmenter, n=args.n, seed=args.seed, column=args.column, key_column=args.key,
        label_column=args.label or None, progress=False if args.no_progress else None,
    )  # fmt: skip
    if output_format == "csv":
        out.to_csv(args.output, index=False)
    else:
        out.to_json(args.output, orient="records", lines=True, force_ascii=False)
    print(
        f"wrote {len(out)} rows to {args.output}: {len(frame)} original and {int(out['synthetic'].sum())} synthetic "
        f"({augmenter.name}, seed {args.seed})"
    )

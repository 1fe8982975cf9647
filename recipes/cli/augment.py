"""`recipes augment`: multiply a labelled text file offline with nlpaug augmenters, seeded.

Reads a CSV or JSON Lines file, writes the original rows plus `--n` synthetic variants of each, with keys
`<key>#aug<copy>`, labels copied and a `synthetic` column (see `recipes.augment.augment_dataset`).
"""

EXAMPLE = """example:
  recipes augment reviews.csv --output more.csv --column text --augmenter synonym --n 2
  recipes augment reviews.jsonl --output more.jsonl --column text --augmenter swap,delete,spelling \\
      --option aug_p=0.1 --seed 1      # one of the three per synthetic row

augmenters: keyboard, ocr, random_char, swap, delete, split, spelling, synonym (WordNet, offline)
"""


def add_arguments(parser):
    from recipes.cli import add_verbose_arguments

    parser.add_argument("input_path", metavar="INPUT", help="input .csv or .jsonl file")
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
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="option of the nlpaug augmenters, e.g. aug_p=0.1 (repeatable; numbers are parsed)",
    )
    add_verbose_arguments(parser, "1: a progress bar (auto: from 1,000 synthetic rows on), 2: one line when done")


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


def run(args):
    from recipes._common import read_table, table_format, write_table
    from recipes.augment import OneOf, augment_dataset, text_augmenter

    table_format(args.input_path, "input")  # both checked before any work
    table_format(args.output, "output")
    options = _options(args.option)
    names = [name.strip() for name in args.augmenter.split(",") if name.strip()]
    augmenters = [text_augmenter(name, **options) for name in names]
    if not augmenters:
        raise ValueError(f"--augmenter names no augmenter. Received: {args.augmenter!r}")
    augmenter = augmenters[0] if len(augmenters) == 1 else OneOf(augmenters)
    frame = read_table(args.input_path)
    if args.key in frame.columns:
        frame[args.key] = frame[args.key].astype(str)
    out = augment_dataset(
        frame,
        augmenter,
        n=args.n,
        seed=args.seed,
        column=args.column,
        key_column=args.key,
        label_column=args.label or None,
        verbose=args.verbose,
    )
    write_table(out, args.output)
    print(
        f"wrote {len(out)} rows to {args.output}: {len(frame)} original and {int(out['synthetic'].sum())} synthetic "
        f"({augmenter.name}, seed {args.seed})"
    )

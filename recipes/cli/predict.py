"""`recipes predict`: offline batch prediction of an exported model over a CSV or JSON Lines file.

Streams the input in batches through a keyed SavedModel signature (see
`serving.predict_file`), writes the key and the predictions of every row in
input order, and continues an interrupted run where it stopped.
"""

EXAMPLE = """example:
  recipes train text                 # exports/text/1
  recipes predict --model-path exports/text reviews.csv --output predictions.csv
  recipes predict --model-path exports/text/1 reviews.jsonl --output predictions.jsonl --key id
  # killed half-way? the same command again continues after the last complete row

input: .csv (header row; one column per signature input, plus the key column) or .jsonl/.ndjson/.json
  (one JSON object per line; {"b64": "..."} for bytes such as encoded images, lists for waveforms)
output: .csv (key, label, probability_<class>... for classifiers; key, prediction for regressors)
  or JSON Lines ({"key": ..., "label": ..., "probabilities": [...]} / {"key": ..., "prediction": ...})
"""


def add_arguments(parser):
    from recipes.cli import add_verbose_arguments

    parser.add_argument("input_path", metavar="INPUT", help="input .csv or .jsonl file")
    parser.add_argument(
        "--model-path", required=True, help="SavedModel version folder, or export folder (its highest version)"
    )
    parser.add_argument("--output", required=True, help="output .csv or .jsonl file (continued if it exists)")
    parser.add_argument("--key", default="key", help="key column, written with each prediction (default: key)")
    parser.add_argument("--batch-size", type=int, default=256, help="rows per model call (default: 256)")
    parser.add_argument("--signature", default="serving_default", help="default: serving_default")
    parser.add_argument("--overwrite", action="store_true", help="start the output again even if it holds rows")
    parser.add_argument(
        "--no-resume", action="store_true", help="fail if the output exists and is not empty, instead of continuing it"
    )
    add_verbose_arguments(parser, "1: a progress bar, 2: one line when done")


def run(args):
    from serving import predict_file

    summary = predict_file(
        args.model_path,
        args.input_path,
        args.output,
        key=args.key,
        batch_size=args.batch_size,
        signature=args.signature,
        resume=not args.no_resume,
        overwrite=args.overwrite,
        verbose=args.verbose,
    )
    resumed = f" after {summary.rows_skipped} rows from an earlier run" if summary.rows_skipped else ""
    print(f"wrote {summary.rows_written} rows to {summary.output_path}{resumed} (model {summary.model_path})")

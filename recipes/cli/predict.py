"""`recipes predict`: offline batch prediction of an exported model over a CSV or JSON Lines file, or a folder.

A folder of images or WAV clips (a training folder's layout, or files alone) is
predicted file by file, each keyed by its path in the folder: its files are
listed as JSON Lines rows of their encoded bytes under the signature's one input
(`image`, `audio`), or of their waveforms for a float input. Streams the input in batches through a keyed SavedModel signature (see
`serving.predict_file`), writes the key and the predictions of every row in
input order, and continues an interrupted run where it stopped.
"""

EXAMPLE = """example:
  recipes train text                 # exports/text/1
  recipes predict --model-path exports/text reviews.csv --output predictions.csv
  recipes predict --model-path exports/text/1 reviews.jsonl --output predictions.jsonl --key id
  recipes predict --model-path exports/photos photos/ --output predictions.csv   # a folder: keys are the paths
  # killed half-way? the same command again continues after the last complete row

input: .csv (header row; one column per signature input, plus the key column) or .jsonl/.ndjson/.json
  (one JSON object per line; {"b64": "..."} for bytes such as encoded images, lists for waveforms)
output: .csv (key, label, probability_<class>... for classifiers; key, prediction for regressors)
  or JSON Lines ({"key": ..., "label": ..., "probabilities": [...]} / {"key": ..., "prediction": ...})
"""


def add_arguments(parser):
    from recipes.cli import add_verbose_arguments

    parser.add_argument(
        "input_path", metavar="INPUT", help="input .csv or .jsonl file, or a folder of images or WAV clips"
    )
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


FOLDER_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".wav")


def folder_rows(model_path, folder, output, key="key", signature="serving_default"):
    """Writes `output`, JSON Lines rows of the files of `folder` for a model with one input; returns its path.

    Each row is `{key: the file's path in the folder, INPUT: {"b64": its bytes}}` for a string input, or its
    waveform (a WAV's mean over channels) for a float input. Files are listed in sorted order, so the rows
    are the same each time and an interrupted prediction continues where it stopped.
    """
    import base64
    import json
    import os

    from serving.contract import version_folder
    from serving.predict import Predictor

    predictor = Predictor(version_folder(model_path), signature, key)
    if len(predictor.model_inputs) != 1:
        raise ValueError(
            f"a folder is predicted by a model with one input (an image or a clip); {model_path} takes "
            f"{predictor.model_inputs}: write its inputs as a .csv or .jsonl file"
        )
    (name,) = predictor.model_inputs
    as_bytes = predictor.input_specs[name].dtype.name == "string"
    files = []
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        files += [os.path.join(root, n) for n in sorted(names) if n.lower().endswith(FOLDER_EXTENSIONS)]
    if not files:
        raise ValueError(f"the folder {folder} holds no images or WAV clips ({' '.join(FOLDER_EXTENSIONS)})")
    with open(output, "w", encoding="utf-8") as out:
        for path in files:
            with open(path, "rb") as f:
                data = f.read()
            value = {"b64": base64.b64encode(data).decode("ascii")} if as_bytes else _waveform(data, path)
            out.write(json.dumps({key: os.path.relpath(path, folder).replace(os.sep, "/"), name: value}) + "\n")
    return output


def _waveform(data, path):
    import tensorflow as tf

    try:
        audio, _ = tf.audio.decode_wav(data)
    except tf.errors.InvalidArgumentError as error:
        raise ValueError(f"{path} could not be read as a WAV clip: {error.message}") from None
    return tf.reduce_mean(audio, axis=1).numpy().tolist()


def run(args):
    import os
    import tempfile

    if os.path.isdir(args.input_path):
        with tempfile.TemporaryDirectory(prefix="recipes-predict-") as folder:
            rows = folder_rows(
                args.model_path, args.input_path, os.path.join(folder, "files.jsonl"), args.key, args.signature
            )
            return _predict(args, rows)
    return _predict(args, args.input_path)


def _predict(args, input_path):
    from serving import predict_file

    summary = predict_file(
        args.model_path,
        input_path,
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

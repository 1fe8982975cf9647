"""`recipes explain`: explain a trained classifier on a few rows, and analyse its errors given labels.

Reads the rows from a CSV or JSON Lines file (one column per model input: text, raw table columns, or
lists of numbers for waveforms and images) or a `.npy` array, writes the PNGs and Markdown reports into
the folder given and prints the reports (`recipes.debug.explain`, `recipes.debug.error_analysis`). Both
are analyses that judge nothing (verdict "info"): the exit status is 0 unless the input is bad (2).
"""

EXAMPLE = """example:
  recipes explain --model-path text.keras reviews.csv --directory explained --num-examples 4
  recipes explain --model-path weather.keras weather.csv --directory explained --target weather
  recipes explain --model-path digits.keras images.npy --directory explained --method saliency
  recipes explain --model-path weather.keras weather.csv --directory explained --json

writes: explanation.png and explanation.md; with --target also confusion.png and errors.md (all rows)
--json prints {"explanation": ..., "error_analysis": ...} (the reports' to_dict(); the second with --target)
"""


def add_arguments(parser):
    from recipes.cli.checking import add_json_argument

    parser.add_argument("--model-path", required=True, help="a trained Keras model (.keras file)")
    parser.add_argument("input", help="rows to explain: .csv, .jsonl/.ndjson or .npy")
    parser.add_argument("--directory", required=True, help="folder for the PNGs and Markdown reports")
    parser.add_argument("--num-examples", type=int, default=4, help="first rows to explain (default: 4)")
    parser.add_argument("--class-name", default=None, help="class name or id to explain (default: the predicted class)")
    parser.add_argument("--method", default=None, help="attribution method (default: the modality's own)")
    parser.add_argument("--modality", default=None, help="text, image, audio or table (default: read from the model)")
    parser.add_argument("--target", default=None, help="label column: also analyse the errors over all rows")
    add_json_argument(parser)


def run(args):
    import json

    from recipes.cli.checking import exit_status, report_output

    with report_output(args):
        reports, written = _explain(args)
    if args.json:
        print(json.dumps({name: report.to_dict() for name, report in reports.items()}), flush=True)
    else:
        print("\n\n".join(str(report) for report in reports.values()))
        print("\nwrote " + ", ".join(written))
    return exit_status(*reports.values())


def _explain(args):
    import os

    import numpy as np

    from recipes.debug import error_analysis, explain

    model = load_model(args.model_path)
    if args.num_examples < 1:
        raise ValueError(f"--num-examples must be >= 1. Received: {args.num_examples}")
    inputs, labels = _read(args.input, model, args.target)
    os.makedirs(args.directory, exist_ok=True)
    class_name = int(args.class_name) if args.class_name is not None and args.class_name.isdigit() else args.class_name
    rows = args.num_examples
    first = {name: value[:rows] for name, value in inputs.items()} if isinstance(inputs, dict) else inputs[:rows]
    explanation = explain(model, first, modality=args.modality, class_name=class_name, method=args.method)
    written = [explanation.plot(os.path.join(args.directory, "explanation.png"))]
    written.append(_write(os.path.join(args.directory, "explanation.md"), explanation.to_markdown()))
    reports = {"explanation": explanation}
    if labels is not None:
        names = list(explanation.class_names)
        if labels.dtype.kind in "OUS":
            unknown = sorted(set(map(str, labels)) - set(names))
            if unknown:
                raise ValueError(f"--target column {args.target!r} has values the model has no class for: {unknown}")
            labels = np.array([names.index(str(v)) for v in labels])
        report = error_analysis(model, (inputs, labels))
        written.append(report.plot(os.path.join(args.directory, "confusion.png")))
        written.append(_write(os.path.join(args.directory, "errors.md"), report.to_markdown()))
        reports["error_analysis"] = report
    return reports, written


def load_model(path):
    """The trained model at `path` (a `.keras` file), with the package's own layers registered for loading."""
    import os

    import keras

    import recipes.layers  # noqa: F401 - registers the package's layers for loading

    try:  # the factories' own layers (PositionEmbedding, BackbonePreprocessing), when installed
        import models.audio  # noqa: F401
        import models.text  # noqa: F401
        import models.vision  # noqa: F401
    except ImportError:
        pass
    if not str(path).endswith(".keras") or not os.path.isfile(path):
        raise ValueError(f"--model-path must be an existing .keras file. Received: {path!r}")
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # noqa: BLE001 - a file Keras cannot read is bad input, said in one line
        raise ValueError(
            f"--model-path {path!r} cannot be loaded as a Keras model: {type(error).__name__}: {error}"
        ) from None


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def _read(path, model, label):
    """The model's inputs (an array, or a dict of arrays for several named inputs) and the labels, if asked."""
    import os

    import numpy as np
    import pandas as pd

    if not os.path.isfile(path):
        raise ValueError(f"the rows file must be an existing file. Received: {path!r}")
    if path.endswith(".npy"):
        if label is not None:
            raise ValueError("--target needs a .csv or .jsonl rows file; a .npy file holds the inputs only")
        return np.load(path, allow_pickle=False), None
    if path.endswith(".csv"):
        frame = pd.read_csv(path, keep_default_na=False)
    elif path.endswith((".jsonl", ".ndjson", ".json")):
        frame = pd.read_json(path, lines=True)
    else:
        raise ValueError(f"the rows file must be a .csv, .jsonl/.ndjson or .npy file. Received: {path!r}")
    names = [tensor.name for tensor in model.inputs]
    if len(names) == 1 and names[0] not in frame.columns:
        usable = [c for c in frame.columns if c != label]
        if len(usable) != 1:
            raise ValueError(f"the model's input is {names[0]!r}; the rows file has columns {list(frame.columns)}")
        frame = frame.rename(columns={usable[0]: names[0]})
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise ValueError(f"the model needs columns {missing}; the rows file has {list(frame.columns)}")
    if label is not None and label not in frame.columns:
        raise ValueError(f"--target {label!r} is not a column; the rows file has {list(frame.columns)}")
    columns = {}
    for tensor in model.inputs:
        values = frame[tensor.name]
        if len(tensor.shape) > 1 and not (len(tensor.shape) == 2 and tensor.shape[1] == 1):
            columns[tensor.name] = np.stack([np.asarray(v) for v in values]).astype(tensor.dtype)  # lists of numbers
        elif "string" in str(tensor.dtype):
            columns[tensor.name] = values.astype(str).to_numpy(dtype=object)
        else:
            columns[tensor.name] = values.to_numpy(dtype=str(tensor.dtype))
    labels = frame[label].to_numpy() if label is not None else None
    return (columns[names[0]] if len(names) == 1 else columns), labels

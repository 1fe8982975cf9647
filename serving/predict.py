"""Offline batch prediction: a keyed SavedModel over a CSV or JSON Lines file, resumable.

The rows of the input file are streamed in batches through a serving
signature of an exported model (`serving.export_model` writes them; no Keras
is needed here: this reads SavedModels as the server does, so it lives with
`serving`) and one output row per input row is written, in input order:
the row's key, then the predictions. Each finished batch is appended and
flushed to disk (`fsync`) before the next one runs, so an interrupted run
leaves whole batches behind, at most followed by part of one line. Run again,
the output is cut back to its last complete row, its keys are checked against
the input's first rows and prediction continues after them: no row is
duplicated or lost. Batches cover the same rows (rows `k * batch_size + 1` to
`(k + 1) * batch_size`) whether or not the run was interrupted, so a resumed
output is byte for byte the output of an uninterrupted run with the same
batch size.

Formats, chosen by the file extension:

- `.csv`: a header row; every cell is read as a string, then cast to the
  dtype of the signature input of the same name (numbers for float inputs; a
  JSON list such as `[0.1, 0.2]` in the cell for a vector input such as a
  waveform). Strings are passed as UTF-8 text, so binary inputs (encoded
  images) need JSON Lines.
- `.jsonl`, `.ndjson` or `.json` (JSON Lines): one JSON object per line with a
  field per input; numbers, strings, lists for vector inputs, and
  `{"b64": "..."}` for bytes (encoded images), as in TF Serving's REST API.
  Blank lines are skipped.

The output has the key column first, then, for the exports of
`serving.export_model`: `label` and the class probabilities for a classifier
(in CSV one column `probability_<class name>` per class, in JSON Lines a list
`probabilities` in class order), `prediction` for a regressor. Other
signatures' outputs are written the same way: a scalar per row as a column, a
vector per row as columns `<output>_<i>` in CSV or a list in JSON Lines.
Floats are written with the fewest digits that read back to the same float32.
"""

import base64
import binascii
import csv
import dataclasses
import io
import itertools
import json
import os
import sys
import time

import numpy as np

from recipes._common import CSV, JSONL, check_int, check_verbose, table_format
from serving.contract import KEY, KEYED_SIGNATURE, version_folder

_SCAN_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class PredictionSummary:
    """What `predict_file` did.

    Attributes:
        rows_written: Output rows written by this call.
        rows_skipped: Input rows whose predictions an earlier, interrupted run
            had already written (0 for a fresh output).
        model_path: The SavedModel version folder that was used.
        output_path: The output file.
    """

    rows_written: int
    rows_skipped: int
    model_path: str
    output_path: str


def predict_file(
    model_path,
    input_path,
    output_path,
    *,
    key=KEY,
    batch_size=256,
    signature=KEYED_SIGNATURE,
    resume=True,
    overwrite=False,
    verbose="auto",
):
    """Writes a keyed SavedModel's predictions for every row of a CSV or JSON Lines file.

    The input is streamed in batches of `batch_size` rows. Each input row
    gives one output row, in input order: its key, unchanged, then the
    predictions (see the module docstring for the columns). Each batch is
    appended to the output and flushed to disk before the next one runs; an
    interrupted run is continued by calling again with the same arguments.

    Example:

    ```python
    import serving

    summary = serving.predict_file("exports/text", "reviews.csv", "predictions.csv", key="id")
    print(summary.rows_written, summary.rows_skipped)
    ```

    Args:
        model_path: A SavedModel version folder or a TF Serving model base
            path (its highest numeric version is used).
        input_path: A `.csv` file with a header row, or a `.jsonl` / `.ndjson`
            / `.json` JSON Lines file. It must have a column (field) per input
            of the signature, and the key column.
        output_path: A `.csv` or JSON Lines file, written in its own format.
        key: Name of the key column, defaults to `"key"`. Its values are
            passed to the signature's `key` input if it has one and written
            to the output unchanged in any case.
        batch_size: Int >= 1, rows per call of the signature, defaults to 256.
        signature: Name of the signature to run, defaults to
            `"serving_default"`.
        resume: Bool, defaults to `True`: an existing output is continued
            after its last complete row, once its keys are checked against
            the input's. With `False`, an existing non-empty output is an
            error unless `overwrite`.
        overwrite: Bool, defaults to `False`. Start the output again from
            nothing even if it holds rows.
        verbose: `"auto"` (default) or 1: a tqdm progress bar over rows on
            stderr; 0: silent; 2: one line when done.

    Returns:
        A `PredictionSummary`: rows written now and rows skipped because an
        earlier run had written them.

    Raises:
        ValueError: For an unknown extension, missing columns, an existing
            output that `resume` cannot continue (other keys, columns or
            model), or a row that cannot be cast or that the model rejects
            (the error names the row's number and key; the batches before it
            stay written).
    """
    batch_size, level = check_int("batch_size", batch_size), check_verbose(verbose)
    if not isinstance(key, str) or not key:
        raise ValueError(f"`key` must be the name of the key column. Received: key={key!r}")
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    input_format, output_format = table_format(input_path, "input"), table_format(output_path, "output")
    if not os.path.isfile(input_path):
        raise ValueError(f"the input file {input_path} does not exist")
    if os.path.exists(output_path) and os.path.samefile(input_path, output_path):
        raise ValueError(f"`output_path` must not be the input file. Received: {output_path} for both")
    existing = os.path.exists(output_path) and os.path.getsize(output_path) > 0
    if existing and not overwrite and not resume:
        raise ValueError(
            f"the output file {output_path} exists and is not empty; continue it (`resume=True`, the command's "
            "default), overwrite it (`overwrite=True`, `--overwrite`) or choose another output"
        )
    version_dir = version_folder(model_path)
    predictor = Predictor(version_dir, signature, key)
    columns = predictor.csv_header if output_format == CSV else predictor.json_fields
    resume_existing = existing and not overwrite
    output = _Output(output_path, output_format, columns, key, predictor.layouts, resume_existing=resume_existing)
    chunks = _read_input(input_path, input_format, predictor.needed_columns, key, chunk_rows=max(batch_size, 1024))

    from tqdm import tqdm

    total = _count_rows(input_path, input_format) if level == 1 else None
    written, started = 0, time.monotonic()
    with output, tqdm(total=total, initial=output.done, unit="row", desc="predict", disable=level != 1) as bar:
        batches = _Batches(chunks, key, batch_size, skip=output.done, on_skipped=output.check_done_keys)
        for batch in itertools.chain(batches, [None]):
            if batches.skipped < output.done:  # a batch comes once the rows before it are read and checked
                raise output.not_ours(f"has {output.done} rows but the input has only {batches.skipped}")
            output.start()
            if batch is not None:
                rows = predictor.predict(batch)[batch.written :]
                output.write(rows)
                written += len(rows)
                bar.update(len(rows))
    if level == 2:
        print(f"predict: {written} rows in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return PredictionSummary(written, output.done, version_dir, os.path.abspath(output_path))


def read_inputs(model_path, input_path, *, num_examples=256, key=KEY, signature=KEYED_SIGNATURE):
    """The first `num_examples` rows of a CSV or JSON Lines file, cast to a signature's inputs, without the key.

    Reads the formats `predict_file` reads, with the same checks; used to send
    a model its own kind of rows, e.g. by `serving.tune_batching` and
    `serving.measure_throughput`.

    Returns:
        A dict from the signature's input name to a NumPy array of up to `num_examples` rows.
    """
    num_examples = check_int("num_examples", num_examples)
    input_path = os.fspath(input_path)
    input_format = table_format(input_path, "input")
    if not os.path.isfile(input_path):
        raise ValueError(f"the input file {input_path} does not exist")
    predictor = Predictor(version_folder(model_path), signature, key)
    chunks = _read_input(input_path, input_format, predictor.needed_columns, key, chunk_rows=num_examples)
    first = next(iter(chunks), None)
    if first is None:
        raise ValueError(f"the input file {input_path} has no rows")
    tensors = predictor.cast(_Batch(first[0], first[1], key))
    return {name: value.numpy() for name, value in tensors.items() if not (predictor.keyed and name == KEY)}


# -- input -----------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Batch:
    """Rows `first_row` (1-based) onwards: raw values by column, the key column's among them."""

    first_row: int
    columns: dict
    key: str
    written: int = 0  # leading rows an earlier run wrote, computed again only to keep the batch whole

    @property
    def keys(self):
        return self.columns[self.key]

    def __len__(self):
        return len(self.keys)

    def key_of(self, index):
        return _key_text(self.keys[index])

    def where(self, index):
        return f"row {self.first_row + index} (key {self.key_of(index)!r})"


def _key_text(value):
    return value if isinstance(value, str) else json.dumps(value)


def _read_input(path, input_format, needed, key, chunk_rows):
    """Yields `(first_row, {column: list of values})` chunks of the input's needed columns."""
    if input_format == CSV:
        return _read_csv(path, needed, chunk_rows)
    return _read_jsonl(path, needed, key, chunk_rows)


def _read_csv(path, needed, chunk_rows):
    import pandas as pd

    options = dict(dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig")
    try:
        found = list(pd.read_csv(path, nrows=0, **options).columns)
    except pd.errors.EmptyDataError:
        raise ValueError(f"the input file {path} is empty; a CSV input needs a header row") from None
    missing = [name for name in needed if name not in found]
    if missing:
        raise ValueError(
            f"the input file {path} lacks the columns {missing}; expected the signature's inputs and the key "
            f"column {needed}, found the columns {found}"
        )

    def chunks():
        first_row = 1
        for frame in pd.read_csv(path, usecols=needed, chunksize=chunk_rows, **options):
            yield first_row, {name: frame[name].tolist() for name in needed}
            first_row += len(frame)

    return chunks()


def _read_jsonl(path, needed, key, chunk_rows):
    def chunks():
        rows, first_row, row = [], 1, 0
        with open(path, encoding="utf-8-sig") as lines:
            for line_number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                row += 1
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"line {line_number} of {path} is not valid JSON: {error}") from None
                if not isinstance(record, dict):
                    raise ValueError(
                        f"line {line_number} of {path} must be a JSON object with a field per input. "
                        f"Received: a {type(record).__name__}"
                    )
                missing = [name for name in needed if name not in record]
                if missing:
                    where = f"row {row} (line {line_number}"
                    where += f", key {_key_text(record[key])!r})" if key in record else ")"
                    raise ValueError(
                        f"{where} of {path} lacks the fields {missing}; expected the signature's inputs and the key "
                        f"column {needed}, found the fields {list(record)}"
                    )
                rows.append(record)
                if len(rows) == chunk_rows:
                    yield first_row, {name: [r[name] for r in rows] for name in needed}
                    first_row, rows = first_row + len(rows), []
        if rows:
            yield first_row, {name: [r[name] for r in rows] for name in needed}

    return chunks()


class _Batches:
    """Batches of rows `k * size + 1` to `(k + 1) * size` (1-based), from the batch holding row `skip + 1`.

    Batches cover the same rows however many rows an earlier run wrote, so
    that every row is computed in the same batch as in an uninterrupted run:
    the results of a model can differ in the last bits with the batch. The
    first `skip` rows are already in the output: their keys go to
    `on_skipped(first_row, keys)` before any batch is made, and `skipped`
    counts them; the first batch may start with some of them
    (`_Batch.written`).
    """

    def __init__(self, chunks, key, size, skip, on_skipped):
        self.chunks, self.key, self.size, self.skip, self.on_skipped = chunks, key, size, skip, on_skipped
        self.start = skip - skip % size  # rows before the first batch
        self.skipped = 0

    def __iter__(self):
        buffer, first_row = None, None
        for chunk_first, columns in self.chunks:
            count = len(columns[self.key])
            if self.skipped < self.skip:
                take = min(self.skip - self.skipped, count)
                self.on_skipped(chunk_first, columns[self.key][:take])
                self.skipped += take
            drop = min(max(self.start - (chunk_first - 1), 0), count)
            if drop == count:
                continue
            if drop:
                chunk_first += drop
                columns = {name: values[drop:] for name, values in columns.items()}
            if buffer is None:
                buffer, first_row = columns, chunk_first
            else:
                for name, values in columns.items():
                    buffer[name].extend(values)
            position = 0
            while len(buffer[self.key]) - position >= self.size:
                end = position + self.size
                yield self._batch(first_row, {name: values[position:end] for name, values in buffer.items()})
                position, first_row = end, first_row + self.size
            buffer = {name: values[position:] for name, values in buffer.items()}
        if buffer is not None and buffer[self.key]:
            yield self._batch(first_row, buffer)

    def _batch(self, first_row, columns):
        return _Batch(first_row, columns, self.key, written=min(max(self.skip - (first_row - 1), 0), self.size))


def _count_rows(path, input_format):
    """The number of data rows, for the progress bar: lines not inside quotes (CSV), non-blank lines (JSON Lines)."""
    if input_format == JSONL:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    _, records, tail = _scan_records(path, quoted=True)
    return max(records + (1 if tail else 0) - 1, 0)


def _scan_records(path, quoted):
    """`(end, records, tail)`: the byte offset after the last complete record, how many, and bytes after it.

    A record ends at a newline; in CSV (`quoted`) only at a newline outside a
    quoted field, for a quoted field may hold newlines and quotes in it are
    doubled, so the number of quote characters before a record's end is even.
    """
    end = records = position = 0
    in_quotes = False
    with open(path, "rb") as f:
        while chunk := f.read(_SCAN_BYTES):
            if quoted and (in_quotes or b'"' in chunk):
                offset = 0
                for index, part in enumerate(chunk.split(b'"')):
                    if index:
                        in_quotes = not in_quotes
                        offset += 1
                    if not in_quotes and b"\n" in part:
                        records += part.count(b"\n")
                        end = position + offset + part.rindex(b"\n") + 1
                    offset += len(part)
            elif b"\n" in chunk:
                records += chunk.count(b"\n")
                end = position + chunk.rindex(b"\n") + 1
            position += len(chunk)
    return end, records, position > end


# -- model -----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _OutputLayout:
    """One signature output: `kind` is "scalar" (one value per row), "vector" (`width` values) or "list"."""

    name: str
    kind: str
    csv_columns: tuple


def _class_names(function, width):
    """The class names of an export of `serving.export_model`, or `None`.

    Its `label` output is `tf.gather(class_names, tf.argmax(probabilities))`:
    a `GatherV2` of a string constant by an `ArgMax`, found in the graph.
    """
    import tensorflow as tf

    graph_def = function.graph.as_graph_def()
    found = set()
    for nodes in [graph_def.node, *(f.node_def for f in graph_def.library.function)]:
        by_name = {node.name: node for node in nodes}
        for node in nodes:
            if node.op != "GatherV2" or len(node.input) < 2:
                continue
            params, indices = (by_name.get(name.split(":")[0]) for name in node.input[:2])
            if params is None or indices is None or params.op != "Const" or indices.op != "ArgMax":
                continue
            if params.attr["dtype"].type != tf.string.as_datatype_enum:
                continue
            values = tf.make_ndarray(params.attr["value"].tensor)
            if values.ndim == 1 and len(values) == width:
                found.add(tuple(v.decode("utf-8", "replace") for v in values))
    if len(found) != 1:
        return None
    (names,) = found
    return names if len(set(names)) == len(names) else None


def _signature_defaults(version_dir, signature):
    """The SignatureDef's `defaults` (TF2 records a `tf.function`'s default arguments there), as arrays."""
    import tensorflow as tf
    from tensorflow.python.saved_model.loader_impl import parse_saved_model

    (meta_graph, *_) = [g for g in parse_saved_model(version_dir).meta_graphs if signature in g.signature_def]
    return {name: tf.make_ndarray(proto) for name, proto in meta_graph.signature_def[signature].defaults.items()}


class Predictor:
    """A SavedModel's signature, loaded as the server loads it: casts batches of raw values to its inputs, and
    its outputs to output rows.

    Args:
        version_dir: A SavedModel folder (`serving.contract.version_folder` finds it from a base path).
        signature: Name of the signature, defaults to `"serving_default"`.
        key: Name of the key column of the input rows, defaults to `"key"`.

    Attributes:
        function: The signature, a concrete TensorFlow function.
        input_specs: Dict from the signature's input name to its `tf.TensorSpec`.
        keyed: Whether the signature takes a string `key` (`serving.export_model`'s `serving_default`).
        model_inputs: The signature's inputs other than the key and those with a
            default value, sorted.
        defaults: Dict from each input with a default value in the SignatureDef
            (a table export's columns the model ignores) to that value: fed as
            TF Serving feeds it to a request that leaves the input out.
        needed_columns: The input columns a file must have: the model inputs and the key column.
        layouts: How each output is written (scalar, vector or list), in name order.
        csv_header, json_fields: The output's CSV columns and JSON Lines fields, the key first.
    """

    def __init__(self, version_dir, signature=KEYED_SIGNATURE, key=KEY):
        import tensorflow as tf

        loaded = tf.saved_model.load(version_dir)
        if signature not in loaded.signatures:
            raise ValueError(
                f"the SavedModel {version_dir} has no signature {signature!r}; its signatures are "
                f"{sorted(loaded.signatures)}"
            )
        self._loaded = loaded  # the signature's variables live as long as the loaded object
        self.function = loaded.signatures[signature]
        self.signature = signature
        self.key = key
        args, kwargs = self.function.structured_input_signature
        self.input_specs = dict(kwargs)
        self.keyed = KEY in self.input_specs and self.input_specs[KEY].dtype == tf.string
        self.defaults = _signature_defaults(version_dir, signature)
        self.model_inputs = [
            name for name in sorted(self.input_specs) if not (self.keyed and name == KEY) and name not in self.defaults
        ]
        self.needed_columns = list(dict.fromkeys([*self.model_inputs, key]))
        self.layouts = []
        outputs = self.function.structured_outputs
        for name in sorted(outputs):
            if name == KEY:
                continue  # the key column is written from the input
            shape = outputs[name].shape
            if shape.rank == 1:
                layout = _OutputLayout(name, "scalar", (name,))
            elif shape.rank == 2 and shape[1] is not None:
                names = _class_names(self.function, shape[1]) if name == "probabilities" else None
                if names:
                    csv_columns = tuple(f"probability_{c}" for c in names)
                else:
                    csv_columns = tuple(f"{name}_{i}" for i in range(shape[1]))
                layout = _OutputLayout(name, "vector", csv_columns)
            else:
                layout = _OutputLayout(name, "list", (name,))
            self.layouts.append(layout)
        self.csv_header = [key] + [c for layout in self.layouts for c in layout.csv_columns]
        self.json_fields = [key] + [layout.name for layout in self.layouts]
        if key in self.csv_header[1:] or key in self.json_fields[1:]:
            raise ValueError(
                f"`key`, the key column's name, must differ from the output columns {self.csv_header[1:]}. "
                f"Received: key={key!r}"
            )

    def cast(self, batch):
        """The tensors for one batch of rows: the signature's inputs, and the keys when it is keyed."""
        import tensorflow as tf

        for index, key in enumerate(batch.keys):
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise ValueError(
                    f"row {batch.first_row + index}: the key column {self.key!r} must hold a string or an integer. "
                    f"Received: {key!r}"
                )
        tensors = {}
        for name in self.model_inputs:
            spec = self.input_specs[name]
            tensors[name] = tf.constant(_cast_column(batch, name, batch.columns[name], spec.dtype, spec.shape.rank))
        if self.keyed:
            tensors[KEY] = tf.constant(np.array([batch.key_of(i).encode("utf-8") for i in range(len(batch))], object))
        for name, value in self.defaults.items():
            tensors[name] = tf.constant(value)
        return tensors

    def _run(self, tensors):
        outputs = self.function(**tensors)
        return {name: value.numpy() for name, value in outputs.items()}

    def predict(self, batch):
        """Output rows for the batch: `[key, {output name: Python value}]` per input row."""
        import tensorflow as tf

        tensors = self.cast(batch)
        try:
            outputs = self._run(tensors)
        except tf.errors.OpError as error:
            self._raise_for_row(batch, tensors, error)
        if KEY in outputs and self.keyed:
            returned = [k.decode("utf-8") for k in outputs[KEY]]
            if returned != [batch.key_of(i) for i in range(len(batch))]:
                raise ValueError(f"the signature {self.signature!r} returned other keys than it was given")
        values = {layout.name: _python_values(outputs[layout.name]) for layout in self.layouts}
        return [[batch.keys[i], {name: v[i] for name, v in values.items()}] for i in range(len(batch))]

    def _raise_for_row(self, batch, tensors, error):
        """Finds the first row the model rejects on its own, for an error that names it."""
        import tensorflow as tf

        for index in range(len(batch)):
            try:
                row = {name: value[index : index + 1] for name, value in tensors.items() if name not in self.defaults}
                self._run({**row, **{name: tensors[name] for name in self.defaults}})
            except tf.errors.OpError as row_error:
                raise ValueError(
                    f"{batch.where(index)} was rejected by the model: {_tf_message(row_error)}; the rows before "
                    f"row {batch.first_row} are written, fix the row and run again to continue"
                ) from None
        last = batch.first_row + len(batch) - 1
        raise ValueError(f"rows {batch.first_row}-{last} failed together: {_tf_message(error)}") from None


def _tf_message(error):
    """The useful line of a TensorFlow op error, without the graph's node names."""
    message = error.message.split("\n\t [[")[0].split(" [Op:")[0]
    lines = [line for line in message.splitlines() if line.strip()]
    text = lines[-1] if lines else message
    return text.removeprefix("assertion failed: ")


def _is_string(dtype):
    return dtype.name == "string"


def _cast_column(batch, name, values, dtype, rank):
    """A NumPy array of `dtype` with `rank` axes from one column's raw values (strings in CSV, JSON in JSON Lines)."""
    per_row = [_cast_value(batch, index, name, value, dtype, rank - 1) for index, value in enumerate(values)]
    if rank == 1:
        return np.array(per_row, dtype=object if _is_string(dtype) else dtype.as_numpy_dtype)
    shapes = [row.shape for row in per_row]
    for index, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise ValueError(
                f"column {name!r} must have the same shape in every row of a batch; {batch.where(0)} has the "
                f"shape {list(shapes[0])} but {batch.where(index)} has {list(shape)}"
            )
    return np.stack(per_row)


def _cast_value(batch, index, name, value, dtype, rank):
    def fail(expected):
        shown = repr(value) if len(repr(value)) < 80 else repr(value)[:77] + "..."
        raise ValueError(f"{batch.where(index)}: column {name!r} must be {expected}. Received: {shown}")

    if isinstance(value, str) and (rank > 0 or not _is_string(dtype)):
        if rank > 0:  # a vector input in a CSV cell: a JSON list
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                fail(f"a JSON list of {dtype.name} values with {rank} axes")
        else:
            return _parse_number(value, dtype, fail)
    if _is_string(dtype):
        decoded = _to_bytes(value, rank, fail)
        return decoded if rank == 0 else np.array(decoded, dtype=object)
    if rank == 0:
        return _number(value, dtype, fail)
    array = np.asarray(value) if isinstance(value, list) else None
    if array is None or array.ndim != rank or array.dtype.kind not in ("b" if dtype.is_bool else "iuf"):
        fail(f"a list of {dtype.name} numbers with {rank} axes (one row of the input `{name}`)")
    return array.astype(dtype.as_numpy_dtype)


def _to_bytes(value, rank, fail):
    expected = 'a string, or {"b64": ...} for bytes' + (f", in a list with {rank} axes" if rank else "")
    if rank:
        if not isinstance(value, list):
            fail(expected)
        return [_to_bytes(v, rank - 1, fail) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            fail('{"b64": ...} with valid base64 data')
    fail(expected)


def _parse_number(text, dtype, fail):
    text = text.strip()
    if dtype.is_bool:
        if text.lower() in ("true", "1"):
            return True
        if text.lower() in ("false", "0"):
            return False
        fail("true or false")
    if not text and dtype.is_floating:
        return float("nan")  # an empty CSV cell is a missing number, as pandas and `recipes.tasks` read it
    try:
        return float(text) if dtype.is_floating else int(text)
    except ValueError:
        fail(f"a {dtype.name} number")


def _number(value, dtype, fail):
    if dtype.is_bool:
        if isinstance(value, bool):
            return value
        fail("true or false")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"a {dtype.name} number")
    if dtype.is_integer and isinstance(value, float):
        if not value.is_integer():
            fail(f"a {dtype.name} number (an integer)")
        value = int(value)
    return value


def _python_values(array):
    """One Python value per row: floats with the fewest digits that give the same float32 back, strings decoded."""
    if array.dtype == object or array.dtype.kind == "S":
        flat = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in array.ravel()]
        return np.array(flat, dtype=object).reshape(array.shape).tolist()
    if array.dtype.kind == "f" and array.dtype.itemsize < 8:
        return np.array([float(text) for text in array.astype(str).ravel()]).reshape(array.shape).tolist()
    return array.tolist()


# -- output ----------------------------------------------------------------------------------------------------


class _Output:
    """The output file: checks and continues an earlier run's rows, then appends batches durably.

    Nothing in an existing output is changed until the input's first rows
    have been checked against its rows (`check_done_keys`); `start` then cuts
    off a trailing partial line, or writes the header of a new CSV file.
    """

    def __init__(self, path, output_format, columns, key, layouts, resume_existing):
        self.path, self.format, self.columns, self.key, self.layouts = path, output_format, columns, key, layouts
        self.end, self.done, self._done_keys = 0, 0, iter(())
        self._file = None
        if resume_existing:
            self._read_existing()

    def _read_existing(self):
        self.end, records, _ = _scan_records(self.path, quoted=self.format == CSV)
        if self.format == JSONL:
            self.done, self._done_keys = records, self._jsonl_keys(records)
        elif records:  # else not even the header is complete: start again
            with open(self.path, encoding="utf-8", newline="") as f:
                header = next(csv.reader(f))
            if header != self.columns:
                raise self.not_ours(f"has the columns {header}; this model and key write {self.columns}")
            self.done, self._done_keys = records - 1, self._csv_keys(records - 1)

    def not_ours(self, problem):
        return ValueError(
            f"the output file {self.path} {problem}, so it cannot be resumed; overwrite it "
            "(`overwrite=True`, `--overwrite`) or choose another output"
        )

    def _csv_keys(self, count):
        with open(self.path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            for _ in range(count):
                yield next(reader)[0]

    def _jsonl_keys(self, count):
        with open(self.path, encoding="utf-8") as f:
            for number in range(1, count + 1):
                try:
                    record = json.loads(f.readline())
                except json.JSONDecodeError:
                    record = None
                if not isinstance(record, dict) or self.key not in record:
                    raise self.not_ours(f"has a line {number} that is not a JSON object with the key {self.key!r}")
                if number == 1 and list(record) != self.columns:
                    raise self.not_ours(f"has the fields {list(record)}; this model and key write {self.columns}")
                yield _key_text(record[self.key])

    def check_done_keys(self, first_row, keys):
        """Checks the keys of the input's rows `first_row`, ... against the output's rows."""
        for offset, key in enumerate(keys):
            done, key = next(self._done_keys), _key_text(key)
            if done != key:
                row = first_row + offset
                raise self.not_ours(
                    f"does not continue this input: its row {row} has the key {done!r} but the input's row {row} "
                    f"has the key {key!r}"
                )

    def start(self):
        """Cuts the file back to its last complete row (creating it if needed) and opens it for appending."""
        if self._file is not None:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "ab"):
            pass
        os.truncate(self.path, self.end)
        self._file = open(self.path, "ab")
        if self.end == 0 and self.format == CSV:
            self._append(_csv_text([self.columns]))

    def write(self, rows):
        """Appends one batch of `[key, {output: value}]` rows and flushes it to disk."""
        if self.format == JSONL:
            text = "".join(json.dumps({self.key: key, **values}, ensure_ascii=False) + "\n" for key, values in rows)
        else:
            lines = []
            for key, values in rows:
                line = [_key_text(key)]
                for layout in self.layouts:
                    value = values[layout.name]
                    if layout.kind == "vector":
                        line.extend(value)
                    else:
                        line.append(json.dumps(value) if layout.kind == "list" else value)
                lines.append(line)
            text = _csv_text(lines)
        self._append(text)

    def _append(self, text):
        self._file.write(text.encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._file is not None:
            self._file.close()
            self._file = None


def _csv_text(rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()

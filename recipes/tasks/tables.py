"""A table read in chunks: a CSV, JSON Lines or Parquet file, or a `pandas.DataFrame` already in memory.

Files are never read whole: `read` yields frames of `CHUNK_ROWS` rows, each
indexed by its rows' positions in the file (from 0), so that any rule that
looks at one row at a time (the split, the checks, the encoding) gives the
same answer chunk by chunk as on the whole table. CSV values come as the
strings the file has; JSON Lines and Parquet values with their own types.
"""

import bz2
import codecs
import gzip
import json
import lzma
import os

import pandas as pd

CHUNK_ROWS = 4096
FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_UTF8_BLOCK = 1 << 20


def table_format(path):
    """`"csv"`, `"jsonl"` or `"parquet"` from a file's extension (after any .gz, .bz2 or .xz), else `None`."""
    stem, extension = os.path.splitext(os.fspath(path).lower())
    if extension in _COMPRESSED:
        extension = os.path.splitext(stem)[1]
    return FORMATS.get(extension)


def _open_binary(path):
    extension = os.path.splitext(os.fspath(path).lower())[1]
    return _COMPRESSED.get(extension, open)(path, "rb")


def check_utf8(path):
    """A `ValueError` naming the byte and line when `path` is not UTF-8 text, read a block at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1
    with _open_binary(path) as stream:
        while True:
            block = stream.read(_UTF8_BLOCK)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                start = max(error.start - (len(error.object) - len(block)), 0)
                line += block[:start].count(b"\n")
                raise ValueError(
                    f"{path} is not UTF-8 text: byte 0x{error.object[error.start]:02x} at byte {offset + start} "
                    f"(line {line}) does not decode ({error.reason}); save the file as UTF-8"
                ) from None
            if not block:
                return
            line += block.count(b"\n")
            offset += len(block)


def _pyarrow_parquet():
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise ValueError(
            "reading a Parquet file needs the `pyarrow` package, which is not installed: `pip install pyarrow`, "
            "or save the table as CSV or JSON Lines"
        ) from None
    return parquet


class TableSource:
    """One table whose rows can be read in chunks, any number of times.

    Args:
        path: A `.csv`/`.tsv`, `.jsonl`/`.ndjson`/`.json` (one JSON object a
            line) or `.parquet` file; CSV and JSON Lines may be compressed
            (`.gz`, `.bz2`, `.xz`). Or `None` with `frame`.
        frame: A `pandas.DataFrame` in memory, instead of a file.
    """

    def __init__(self, path=None, frame=None):
        if (path is None) == (frame is None):
            raise ValueError("a table is a file (`path`) or a DataFrame (`frame`): give one")
        if frame is not None:
            if not isinstance(frame, pd.DataFrame):
                raise ValueError(f"`frame` must be a pandas DataFrame. Received: {type(frame).__name__}")
            self.path, self.format, self.frame = None, "frame", frame.reset_index(drop=True)
            self.columns = [str(c) for c in frame.columns]
            self.frame.columns = self.columns
            return
        self.path, self.frame = os.fspath(path), None
        self.format = table_format(self.path)
        if self.format is None:
            raise ValueError(
                "`path` must be a table (.csv, .tsv, .jsonl, .ndjson, .json, .parquet; CSV and JSON Lines may end in "
                f".gz, .bz2 or .xz) or a folder of class folders. Received: path={self.path!r}"
            )
        if not os.path.isfile(self.path):
            raise ValueError(f"`path` must be an existing file or folder. Received: path={self.path!r} (not found)")
        if self.format != "parquet":
            check_utf8(self.path)
        self.columns = self._columns()

    def __str__(self):
        return self.path if self.path is not None else f"a DataFrame of {len(self.frame)} rows"

    def _columns(self):
        if self.format == "csv":
            try:
                return [str(c) for c in pd.read_csv(self.path, nrows=0, **self._csv_options()).columns]
            except pd.errors.EmptyDataError:
                raise ValueError(f"{self.path} is empty; a CSV table needs a header row and rows") from None
        if self.format == "parquet":
            return list(_pyarrow_parquet().ParquetFile(self.path).schema_arrow.names)
        columns = {}
        for chunk in self._jsonl_records(CHUNK_ROWS):
            for record in chunk:
                columns.update(dict.fromkeys(record))
            break
        if not columns:
            raise ValueError(f"{self.path} holds no rows; a JSON Lines table needs one JSON object a line")
        return [str(c) for c in columns]

    def _csv_options(self):
        return dict(sep="\t" if ".tsv" in self.path.lower() else ",", dtype=str, encoding="utf-8-sig")

    def head(self, rows):
        """The first `rows` rows (all columns)."""
        for chunk in self.read(rows=rows):
            return chunk
        return pd.DataFrame(columns=self.columns)

    def read(self, columns=None, rows=CHUNK_ROWS):
        """Yields frames of up to `rows` rows of `columns` (default: all), indexed by row position from 0."""
        columns = list(self.columns if columns is None else columns)
        offset = 0
        for chunk in self._chunks(columns, rows):
            chunk.index = pd.RangeIndex(offset, offset + len(chunk))
            offset += len(chunk)
            yield chunk

    def _chunks(self, columns, rows):
        if self.format == "frame":
            for start in range(0, len(self.frame), rows):
                yield self.frame.iloc[start : start + rows][columns]
        elif self.format == "csv":
            yield from pd.read_csv(self.path, usecols=columns, chunksize=rows, **self._csv_options())
        elif self.format == "parquet":
            for batch in _pyarrow_parquet().ParquetFile(self.path).iter_batches(batch_size=rows, columns=columns):
                yield batch.to_pandas(date_as_object=False)
        else:
            for records in self._jsonl_records(rows):
                yield pd.DataFrame.from_records(records, columns=columns)

    def _jsonl_records(self, rows):
        records = []
        with _open_text(self.path) as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"line {number} of {self.path} is not valid JSON: {error}") from None
                if not isinstance(record, dict):
                    raise ValueError(
                        f"line {number} of {self.path} must be a JSON object with a field per column; "
                        f"received a {type(record).__name__}"
                    )
                records.append(record)
                if len(records) == rows:
                    yield records
                    records = []
        if records:
            yield records


def _open_text(path):
    extension = os.path.splitext(path.lower())[1]
    if extension in _COMPRESSED:
        return _COMPRESSED[extension](path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def missing_columns_error(source, role, names):
    """The error for columns the table lacks, naming the ones it has."""
    names = [names] if isinstance(names, str) else list(names)
    return ValueError(
        f"`{role}` names {'a column' if len(names) == 1 else 'columns'} {', '.join(map(repr, names))} that "
        f"{source} does not have; its columns are {list(source.columns)}"
    )

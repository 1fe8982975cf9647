"""A table's examples: the role and type of every column, one checking pass over the rows, and streamed splits.

The first rows (at most `TYPE_ROWS`) give each column's type and whether the
target is a class or a quantity. One pass over the whole table, a chunk at a
time, then checks every value (numbers, dates, keys, labels), counts the
examples and classes of each split, takes the training means that fill
missing numbers (inside the model: the pipelines keep them NaN, as a served
request has them), and keeps the first training rows (at most `sample_size`)
to adapt the model's preprocessing. A split is read again chunk by chunk each
time its `tf.data` pipeline is iterated.
"""

import collections

import numpy as np
import pandas as pd

from recipes._common import check_int, check_one_of
from recipes.tasks.checks import MODALITIES, PROBLEMS, check_classes, check_splits, label_index
from recipes.tasks.columns import KINDS, ColumnType, as_text, encode, infer_column_type, infer_problem
from recipes.tasks.columns import model_date_format, numbers_of, parse_dates, request_dtype, row_of
from recipes.tasks.splitting import SPLITS, SplitPlan
from recipes.tasks.tables import missing_columns_error

TYPE_ROWS = 10_000
SAMPLE_ROWS = 20_000


def _column_list(source, role, names):
    names = [names] if isinstance(names, str) else [str(n) for n in names]
    missing = [name for name in names if name not in source.columns]
    if missing:
        raise missing_columns_error(source, role, missing)
    return names


class TableExamples:
    """The examples of a table (see the module docstring); built by `recipes.tasks.Task.from_path`/`from_frame`."""

    def __init__(
        self,
        source,
        *,
        target,
        key=None,
        group=None,
        date=None,
        split_dates=None,
        fractions=None,
        seed=0,
        features=None,
        column_types=None,
        problem=None,
        modality=None,
        class_names=None,
        sample_size=SAMPLE_ROWS,
    ):
        self.source = source
        sample_size = check_int("sample_size", sample_size)
        if target is None:
            raise ValueError(
                f"`target` must name the column to predict; {source} has the columns {list(source.columns)}"
            )
        for role, value in (("target", target), ("key", key), ("group", group), ("date", date)):
            if value is not None:
                _column_list(source, role, value)
        roles = {"key": key, "group": group, "date": date}
        for role, value in roles.items():
            if value is not None and value == target:
                raise ValueError(
                    f"the target column cannot also be the {role}. Received: target={target!r}, {role}={value!r}"
                )
        if features is None:
            features = [c for c in source.columns if c not in (target, key, group)]
        else:
            features = _column_list(source, "features", features)
            if target in features:
                raise ValueError(f"`features` must not include the target {target!r}. Received: features={features!r}")
        if not features:
            raise ValueError(
                f"{source} has no feature column besides the target {target!r}"
                + (" and the key or group" if key or group else "")
                + f"; its columns are {list(source.columns)}"
            )
        column_types = dict(column_types or {})
        _column_list(source, "column_types", list(column_types))
        for name, kind in column_types.items():
            column_types[name] = check_one_of(f"column_types[{name!r}]", kind, KINDS)
        self.plan = SplitPlan.make(
            key=key, group=group, date=date, split_dates=split_dates, fractions=fractions, seed=seed
        )
        head = source.head(min(TYPE_ROWS, sample_size))
        if len(head) == 0:
            raise ValueError(f"{source} holds no rows")
        types = {name: infer_column_type(head[name], column_types.get(name), name) for name in features}
        self.date_type = None
        if date is not None:
            self.date_type = types.get(date) or infer_column_type(head[date], column_types.get(date), date)
            if self.date_type.kind != "date":
                first = head[date].dropna()
                raise ValueError(
                    f"`date` must name a column of dates; {date!r} reads as {self.date_type.kind} in the first rows "
                    f"(such as {str(first.iloc[0]) if len(first) else ''!r}). Dates may be written like 10/31/2019, "
                    "2019-10-31 or 31.10.2019, with or without a time"
                )
        if class_names is not None and problem is None:
            problem = "classification"
        problem = check_one_of("problem", problem, PROBLEMS) if problem is not None else infer_problem(head[target])
        if class_names is not None and problem == "regression":
            raise ValueError(f"`class_names` has no use in a regression. Received: class_names={class_names!r}")
        text_only = len(features) == 1 and types[features[0]].kind == "text"
        if modality is None:
            modality = "text" if text_only else "table"
        elif check_one_of("modality", modality, MODALITIES) not in ("table", "text"):
            raise ValueError(
                f"a table is read as modality 'table' or 'text' (one column of free text); images and audio come "
                f"from folders of files. Received: modality={modality!r}"
            )
        modality = modality.lower()
        if modality == "text":
            if len(features) != 1:
                raise ValueError(
                    f"a text task reads one column of text; {source} has the feature columns {features}: pass "
                    "`features=[the text column]`, or modality='table'"
                )
            types[features[0]] = ColumnType("text")
            if problem == "regression":
                raise ValueError(
                    f"the text factories classify, and the target {target!r} is a quantity (regression): pass "
                    "problem='classification' if its values are classes, or modality='table'"
                )
        self.modality, self.problem, self.target = modality, problem, target
        self.key, self.group, self.date = key, group, date
        self.features, self.column_types = tuple(features), types
        # The file's other columns (target, key, group, unused ones) as a client's row holds them.
        self.other_columns = {name: request_dtype(head[name]) for name in source.columns if name not in self.features}
        self._needed = list(dict.fromkeys([*features, target, *([self.plan.column] if self.plan.column else [])]))
        self._scan(class_names, sample_size)

    # -- one pass over the rows ------------------------------------------------------------------------------

    def _where(self):
        return f"the target {self.target!r} of {self.source}"

    def _labelled(self, chunk):
        """The rows that have a target value; a row without one cannot be learned from, nor scored."""
        present = chunk[self.target].notna().to_numpy()
        return (chunk, 0) if present.all() else (chunk[present], int((~present).sum()))

    def _codes(self, chunk):
        if self.plan.by == "row":
            return self.plan.assign(chunk.index.to_numpy())
        column = chunk[self.plan.column]
        if self.plan.by == "date":
            return self.plan.assign(parse_dates(column, self.date_type, self.plan.column).to_numpy("datetime64[ns]"))
        absent = np.flatnonzero(column.isna().to_numpy())
        if absent.size:
            raise ValueError(
                f"the {self.plan.by} column {self.plan.column!r} has no value at row "
                f"{row_of(column.index[absent[0]])}: "
                f"every row needs one to be split"
            )
        return self.plan.assign(as_text(column))

    def _targets(self, chunk):
        if self.problem == "classification":
            return as_text(chunk[self.target])
        return numbers_of(chunk[self.target], self.target).astype("float32")

    def _encode(self, chunk):
        return {name: encode(chunk[name], self.column_types[name], name) for name in self.features}

    def _scan(self, class_names, sample_size):
        labels = [collections.Counter() for _ in SPLITS]
        held_out = {1: [], 2: []}
        target_sum, target_count = 0.0, 0
        numbers = [name for name in self.features if self.column_types[name].kind == "number"]
        sums = {name: [0.0, 0] for name in numbers}
        sample, sampled, self.dropped_rows, rows = [], 0, 0, 0
        for chunk in self.source.read(self._needed):
            rows += len(chunk)
            chunk, dropped = self._labelled(chunk)
            self.dropped_rows += dropped
            if not len(chunk):
                continue
            codes = self._codes(chunk)
            encoded = self._encode(chunk)
            targets = self._targets(chunk)
            train = codes == 0
            for code in range(len(SPLITS)):
                if self.problem == "classification":
                    labels[code].update(targets[codes == code])
                else:
                    labels[code]["rows"] += int(np.sum(codes == code))
                    if code:
                        held_out[code].append(targets[codes == code])
            if self.problem == "regression":
                target_sum += float(np.sum(targets[train], dtype="float64"))
                target_count += int(train.sum())
            for name in numbers:
                values = encoded[name][train]
                values = values[~np.isnan(values)]
                sums[name][0] += float(np.sum(values, dtype="float64"))
                sums[name][1] += len(values)
            if sampled < sample_size and train.any():
                take = np.flatnonzero(train)[: sample_size - sampled]
                sample.append(({name: values[take] for name, values in encoded.items()}, targets[take]))
                sampled += len(take)
        if rows == 0:
            raise ValueError(f"{self.source} holds no rows")
        if self.problem == "classification":
            self.num_examples = {name: sum(labels[code].values()) for code, name in enumerate(SPLITS)}
            totals = sum(labels, collections.Counter())
            check_classes(dict(totals), self._where())
            names = tuple(str(n) for n in class_names) if class_names is not None else tuple(sorted(totals))
            index = label_index(names, totals, self._where())
            if self.modality == "table":
                # models.tabular orders the classes alphabetically: follow it.
                ordered = tuple(sorted(names))
                index = {label: ordered.index(names[position]) for label, position in index.items()}
                names = ordered
            self.class_names, self._index = names, index
            self.class_counts = {}
            for code, name in enumerate(SPLITS):
                counts = np.zeros(len(names), dtype="int64")
                for label, count in labels[code].items():
                    counts[index[label]] += count
                self.class_counts[name] = counts
        else:
            self.num_examples = {name: labels[code]["rows"] for code, name in enumerate(SPLITS)}
            self.class_names, self.class_counts = None, None
            self.train_mean = target_sum / target_count if target_count else float("nan")
            self.targets = {
                SPLITS[code]: np.concatenate(parts or [np.zeros(0, "float32")]) for code, parts in held_out.items()
            }
        check_splits(self.num_examples, self.plan, str(self.source))
        self.fill_values = {name: (total / count if count else 0.0) for name, (total, count) in sums.items()}
        self._sample = sample

    # -- what the rest of the task reads ---------------------------------------------------------------------

    def _labels(self, chunk):
        targets = self._targets(chunk)
        if self.problem == "regression":
            return targets
        return np.fromiter((self._index[label] for label in targets), dtype="int64", count=len(targets))

    def dataset(self, split):
        """The examples of `split`: an unbatched `tf.data.Dataset` of `(x, y)`, read chunk by chunk."""
        import tensorflow as tf

        code = SPLITS.index(split)

        def generate():
            for chunk in self.source.read(self._needed):
                chunk, _ = self._labelled(chunk)
                keep = self._codes(chunk) == code
                if not keep.any():
                    continue
                part = chunk[keep]
                x = self._encode(part)
                yield (x[self.features[0]] if self.modality == "text" else x), self._labels(part)

        def spec(name):
            return tf.TensorSpec([None], tf.float32 if self.column_types[name].kind == "number" else tf.string)

        x_spec = spec(self.features[0]) if self.modality == "text" else {name: spec(name) for name in self.features}
        y_spec = tf.TensorSpec([None], tf.int64 if self.problem == "classification" else tf.float32)
        data = tf.data.Dataset.from_generator(generate, output_signature=(x_spec, y_spec)).unbatch()
        return data.apply(tf.data.experimental.assert_cardinality(self.num_examples[split]))

    def sample_frame(self):
        """The first training rows, encoded and filled, with the target: what `models.tabular` adapts on.

        For a classification the target column holds every class name in turn
        (the factory takes its classes from that column and adapts nothing
        else on it), so the model has every class even if a rare one is
        missing from these rows.
        """
        columns = {name: np.concatenate([part[name] for part, _ in self._sample]) for name in self.features}
        for name, value in self.fill_values.items():
            columns[name] = np.where(np.isnan(columns[name]), value, columns[name]).astype("float32")
        frame = pd.DataFrame(columns)
        if self.problem == "classification":
            if len(frame) < len(self.class_names):
                frame = frame.iloc[np.resize(np.arange(len(frame)), len(self.class_names))].reset_index(drop=True)
            frame[self.target] = np.resize(np.array(self.class_names, dtype=object), len(frame))
        else:
            frame[self.target] = np.concatenate([targets for _, targets in self._sample])
        return frame

    def model_arguments(self):
        """What the factories of this modality need from the data."""
        if self.modality == "text":
            return {"train_texts": np.concatenate([part[self.features[0]] for part, _ in self._sample])}
        kinds = {name: self.column_types[name].kind for name in self.features}
        return {
            "frame": self.sample_frame(),
            "target": self.target,
            "date_columns": {
                name: model_date_format(self.column_types[name]) for name in self.features if kinds[name] == "date"
            },
            "text_columns": [name for name in self.features if kinds[name] == "text"],
            "fill_values": dict(self.fill_values),
        }

    def describe_inputs(self):
        return {name: str(self.column_types[name]) for name in self.features}

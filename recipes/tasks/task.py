"""`Task`: a data set, the role of its columns, how it is split, which factory learns it and how it is scored."""

import numpy as np

from recipes._common import check_int, check_one_of
from recipes.tasks.checks import majority_accuracy
from recipes.tasks.from_arrays import ArrayExamples
from recipes.tasks.from_folder import FolderExamples
from recipes.tasks.from_table import SAMPLE_ROWS, TableExamples
from recipes.tasks.splitting import SPLITS
from recipes.tasks.tables import TableSource

# Factory names by (modality, problem), the default first; each is a function of `models`.
MODELS = {
    ("text", "classification"): ("bag_of_words", "lstm", "transformer"),
    ("image", "classification"): ("cnn", "linear", "transfer"),
    ("audio", "classification"): ("cnn", "lstm", "linear"),
    ("table", "classification"): ("classifier", "linear"),
    ("table", "regression"): ("regressor", "linear"),
}
METRICS = {"classification": ("accuracy", "majority class"), "regression": ("mean_absolute_error", "mean")}


def _factory(modality, problem, model):
    if modality == "text":
        from models import text

        return {
            "bag_of_words": text.bag_of_words_classifier,
            "lstm": text.lstm_classifier,
            "transformer": text.transformer_classifier,
        }[model]
    if modality == "image":
        from models import vision

        return {
            "cnn": vision.cnn_classifier,
            "linear": vision.linear_classifier,
            "transfer": vision.transfer_classifier,
        }[model]
    if modality == "audio":
        from models import audio

        return {
            "cnn": audio.mfcc_cnn_classifier,
            "lstm": audio.mfcc_lstm_classifier,
            "linear": audio.mfcc_linear_classifier,
        }[model]
    from models import tabular

    if problem == "classification":
        return {"classifier": tabular.classifier, "linear": tabular.linear_classifier}[model]
    return {"regressor": tabular.regressor, "linear": tabular.linear_regressor}[model]


class Task:
    """A learning task: where the data is, what each column is, how it is split, which model and metric.

    A task is what the package's recipes and commands take: its
    `train_data`, `validation_data` and `test_data` are `tf.data` pipelines of
    `(x, y)` examples for `recipes.fit`, `build_model()` gives the default
    factory's compiled model (inputs are raw data: strings, pixels,
    waveforms, raw column values), `baseline()` the score to beat (the
    majority class's accuracy, or the mean's absolute error) and `score()`
    the model's. Build one with `Task.from_path` (a table file or a folder of
    class folders), `Task.from_frame`, `Task.from_arrays`, or take one of the
    shipped data sets with `recipes.tasks.shipped`.

    Every check of the data runs when the task is built, so bad data fails
    before any training: a missing column (naming the columns there are), a
    target with one class, a class with fewer than two examples, an empty
    folder, an unreadable image or WAV (naming the file), clips of mixed
    sample rates (naming the rates), text that is not UTF-8, a date that
    does not parse (quoting the value and its row), an empty split.

    Example:

    ```python
    import recipes
    from recipes.tasks import Task

    task = Task.from_path("reviews.csv", target="sentiment", group="movie")
    model = task.build_model()
    recipes.fit(model, task.train_data, validation_data=task.validation_data, batch_size=32,
                total_examples=10 * task.num_examples["train"], num_checkpoints=5, directory="runs/reviews")
    print(task.score(model), "vs", task.baseline(), "for the", task.baseline_name)
    ```

    Attributes:
        name: The task's name (the file or folder name without extension, or the shipped name).
        path: The file or folder read, or `None` for data in memory.
        modality: `"text"`, `"image"`, `"audio"` or `"table"`.
        problem: `"classification"` or `"regression"`.
        target: The column predicted, or `None` (folders and arrays: the labels).
        features: The input columns of a table (`()` otherwise).
        column_types: Dict from a table's feature column to its type: `"number"`,
            `"category"`, `"text"` or `"date (FORMAT)"` (`{}` for other data).
        inputs: Dict from each input to its description: a table's column types, or
            what the images, clips or texts become (`"rgb images resized to 32x32"`).
        fill_values: Dict from a table's number column to the value that replaces a
            missing number in it: its mean over the training rows.
        optional_inputs: Dict from each other column of a table (the target, the key
            and group columns when they are not features, unused columns) to the
            dtype a row of the file holds it in (`"float32"`, `"string"` or
            `"bool"`): the export's `row` signature declares them as inputs
            the model ignores, so a row of the file, target and all, is a
            request to it as it stands (`{}` for other data).
        key, group, date: The columns that drive the split, or `None`.
        split: One line saying how the examples are split.
        class_names: The classes in label order, or `None` for a regression.
        metric: `"accuracy"` or `"mean_absolute_error"`; `baseline_name` is
            `"majority class"` or `"mean"`.
        models: The factory names `build_model` takes, the default first.
        num_examples: Dict from split name to its number of examples.
    """

    def __init__(self, examples, *, name, path=None, horizontal_flip=False, model_options=None):
        self._examples = examples
        self.name = str(name)
        self.path = path
        self.horizontal_flip = bool(horizontal_flip)
        self.model_options = {model: dict(options) for model, options in (model_options or {}).items()}
        self.modality = examples.modality
        self.problem = examples.problem
        self.target = examples.target
        self.features = tuple(getattr(examples, "features", ()))
        self.inputs = examples.describe_inputs()
        self.column_types = dict(self.inputs) if self.features else {}
        self.fill_values = dict(getattr(examples, "fill_values", {}))
        self.optional_inputs = dict(getattr(examples, "other_columns", {}))
        self.key = getattr(examples, "key", None)
        self.group = getattr(examples, "group", None)
        self.date = getattr(examples, "date", None)
        self.split = examples.plan.describe()
        self.split_plan = examples.plan
        self.class_names = examples.class_names
        self.metric, self.baseline_name = METRICS[self.problem]
        self.models = MODELS[(self.modality, self.problem)]
        self.num_examples = dict(examples.num_examples)
        self.extra_tests = tuple(getattr(examples, "extra_tests", ()))
        for attribute in ("image_size", "color_mode", "sample_rate", "num_samples"):
            setattr(self, attribute, getattr(examples, attribute, None))
        if self.modality == "audio" and self.num_samples is None:
            self.num_samples = examples.model_arguments()["num_samples"]

    # -- constructors ----------------------------------------------------------------------------------------

    @classmethod
    def from_path(
        cls,
        path,
        *,
        target=None,
        key=None,
        group=None,
        date=None,
        split_dates=None,
        fractions=None,
        seed=0,
        modality=None,
        problem=None,
        column_types=None,
        features=None,
        class_names=None,
        image_size=None,
        color_mode=None,
        sample_rate=None,
        num_samples=None,
        sample_size=SAMPLE_ROWS,
        name=None,
    ):
        """A task on a table file or a folder of class folders, everything inferred from the files.

        A table (CSV, TSV, JSON Lines or Parquet) needs `target`; its other
        columns are the features unless `features` lists them, each a number,
        a category, a date or free text (inferred from the first 10,000
        rows; override with `column_types`). A table whose only feature is
        free text is a text task. A folder holds one folder per class of
        images, WAV clips or `.txt` files (Keras's `*_dataset_from_directory`
        layout).

        Example:

        ```python
        from recipes.tasks import Task

        reviews = Task.from_path("reviews.csv", target="sentiment", group="movie")
        weather = Task.from_path("weather.jsonl", target="weather", date="day",
                                 split_dates=["2014-07-01", "2015-01-01"])
        photos = Task.from_path("photos/", image_size=(64, 64))
        commands = Task.from_path("commands/", sample_rate=16000, group=r"^(\\w+?)_")
        ```

        Args:
            path: A table file or a folder of class folders.
            target: The column to predict (tables; required).
            key: Optional column of row keys: the split hashes each row's key,
                so a row keeps its split as the data grows. Defaults to the
                row number (the file's path in a folder).
            group: Optional column whose rows stay together (all reviews of a
                movie, all clips of a speaker). In a folder, a regular
                expression matched against each file name (its first group,
                or the whole match, is the group).
            date: Optional date column to split by, with `split_dates`.
            split_dates: Two dates: validation starts at the first, test at
                the second (a row on a date goes to the later split).
            fractions: Split fractions for train, validation and test,
                defaults to `(0.8, 0.1, 0.1)`; a dict names them, and names
                other than those three leave rows out.
            seed: Int, defaults to 0. Another seed, another repeatable split.
            modality: `"table"`, `"text"`, `"image"` or `"audio"`, defaults to
                what the path holds.
            problem: `"classification"` or `"regression"`, defaults to what
                the target holds (strings and up to 20 distinct integers are
                classes).
            column_types: Dict from column to `"number"`, `"category"`,
                `"date"` or `"text"`, overriding the inferred types.
            features: The input columns, defaults to every column other than
                the target, the key and the group (a date column is a feature).
            class_names: The classes in label order, defaults to the sorted
                labels (a table's classes are always in sorted order).
            image_size: `(height, width)` images are resized to, defaults to
                their median size, at most 256 a side.
            color_mode: `"grayscale"` or `"rgb"`, defaults to grey when every
                image is grey.
            sample_rate: The rate clips are resampled to; required when the
                clips' rates differ (which is otherwise an error).
            num_samples: Samples per clip (padded or cropped at the end),
                defaults to the longest clip's.
            sample_size: Int, defaults to 20,000. Rows read to infer column
                types (at most 10,000) and training rows or files kept to
                adapt the model's preprocessing (vocabularies, normalisation).
            name: The task's name, defaults to the file or folder name.

        Returns:
            A `Task`.
        """
        import os

        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"`path` must be a file or folder path. Received: path={path!r}")
        path = os.fspath(path)
        default_name = os.path.basename(os.path.normpath(path)).split(".")[0] or "data"
        if os.path.isdir(path):
            table_only = {
                "target": target,
                "key": key,
                "date": date,
                "split_dates": split_dates,
                "column_types": column_types,
                "features": features,
            }
            given = [name for name, value in table_only.items() if value is not None]
            if given:
                raise ValueError(
                    f"{', '.join(f'`{n}`' for n in given)} name{'s' if len(given) == 1 else ''} table columns, but "
                    f"{path} is a folder of class folders: its labels are the folder names"
                )
            examples = FolderExamples(
                path,
                modality=modality,
                group=group,
                fractions=fractions,
                seed=seed,
                class_names=class_names,
                problem=problem,
                image_size=image_size,
                color_mode=color_mode,
                sample_rate=sample_rate,
                num_samples=num_samples,
                sample_size=sample_size,
            )
        else:
            folder_only = {
                "image_size": image_size,
                "color_mode": color_mode,
                "sample_rate": sample_rate,
                "num_samples": num_samples,
            }
            given = [name for name, value in folder_only.items() if value is not None]
            if given:
                raise ValueError(
                    f"{', '.join(f'`{n}`' for n in given)} appl{'ies' if len(given) == 1 else 'y'} to "
                    f"folders of images or clips, not to the table {path}"
                )
            examples = TableExamples(
                TableSource(path),
                target=target,
                key=key,
                group=group,
                date=date,
                split_dates=split_dates,
                fractions=fractions,
                seed=seed,
                features=features,
                column_types=column_types,
                problem=problem,
                modality=modality,
                class_names=class_names,
                sample_size=sample_size,
            )
        return cls(examples, name=name or default_name, path=path)

    @classmethod
    def from_frame(
        cls,
        frame,
        *,
        target,
        key=None,
        group=None,
        date=None,
        split_dates=None,
        fractions=None,
        seed=0,
        modality=None,
        problem=None,
        column_types=None,
        features=None,
        class_names=None,
        sample_size=SAMPLE_ROWS,
        name="frame",
    ):
        """A task on a `pandas.DataFrame` in memory; the arguments are `from_path`'s for tables."""
        examples = TableExamples(
            TableSource(frame=frame),
            target=target,
            key=key,
            group=group,
            date=date,
            split_dates=split_dates,
            fractions=fractions,
            seed=seed,
            features=features,
            column_types=column_types,
            problem=problem,
            modality=modality,
            class_names=class_names,
            sample_size=sample_size,
        )
        return cls(examples, name=name)

    @classmethod
    def from_arrays(
        cls,
        x,
        y,
        *,
        modality,
        class_names=None,
        key=None,
        group=None,
        fractions=None,
        seed=0,
        test_data=None,
        extra_test_data=None,
        sample_rate=None,
        name="arrays",
        horizontal_flip=False,
        model_options=None,
    ):
        """A classification task on examples in memory: uint8 images, float waveforms or strings.

        Args:
            x: uint8 images `(examples, height, width[, channels])`, float
                waveforms `(examples, samples)` or a 1-D array of strings.
            y: Labels: positions in `class_names`, or the class names.
            modality: `"image"`, `"audio"` or `"text"`.
            class_names: Optional class names in label order, defaults to the sorted labels.
            key: Optional key per example to split by, defaults to the position.
            group: Optional group per example (a speaker): a group's examples stay together.
            fractions: As in `from_path`; with `test_data`, for train and validation only.
            seed: Int, defaults to 0.
            test_data: Optional `(x, y)` test set (an official one), instead of a test split.
            extra_test_data: Optional dict from name to further `(x, y)` test sets.
            sample_rate: The waveforms' rate (audio; required).
            name: The task's name.
            horizontal_flip: Bool, defaults to `False`: the image CNN's augmentation flips images.
            model_options: Optional dict from factory name to keyword arguments for it.
        """
        examples = ArrayExamples(
            x,
            y,
            modality=modality,
            class_names=class_names,
            key=key,
            group=group,
            fractions=fractions,
            seed=seed,
            test_data=test_data,
            extra_test_data=extra_test_data,
            sample_rate=sample_rate,
        )
        return cls(examples, name=name, horizontal_flip=horizontal_flip, model_options=model_options)

    # -- the data --------------------------------------------------------------------------------------------

    def _check_split(self, split):
        names = (*SPLITS, *self.extra_tests)
        if split not in names:
            raise ValueError(f"`split` must be one of {names}. Received: split={split!r}")
        return split

    def dataset(self, split):
        """The examples of one split (`"train"`, `"validation"`, `"test"` or an extra test set's name).

        Returns:
            An unbatched `tf.data.Dataset` of `(x, y)`: `x` a dict of raw
            column values for a table, a string, a uint8 image or a float32
            waveform otherwise; `y` an int64 class position or a float32
            value. Files are read as the dataset is iterated.
        """
        return self._examples.dataset(self._check_split(split))

    @property
    def train_data(self):
        """`dataset("train")`, for `recipes.fit(model, task.train_data, ...)`."""
        return self.dataset("train")

    @property
    def validation_data(self):
        """`dataset("validation")`."""
        return self.dataset("validation")

    @property
    def test_data(self):
        """`dataset("test")`."""
        return self.dataset("test")

    def arrays(self, split, limit=None, batch_size=1024):
        """A split as `(x, y)` numpy arrays, for the recipes and models that take arrays.

        Args:
            split: A split name (`"train"`, `"validation"`, `"test"` or an extra test set's name).
            limit: Optional int: the first `limit` examples only.
            batch_size: Int, defaults to 1024: examples read at a time.

        Returns:
            `(x, y)`: `x` an array of the examples (strings as `str`), or a
            dict of column arrays for a table; `y` the class positions or values.
        """
        data = self.dataset(split)
        if limit is not None:
            data = data.take(check_int("limit", limit))
        xs, ys = [], []
        for x, y in data.batch(check_int("batch_size", batch_size)):
            xs.append({k: _numpy(v) for k, v in x.items()} if isinstance(x, dict) else _numpy(x))
            ys.append(y.numpy())
        if not ys:
            raise ValueError(f"the {split} split of {self.name} holds no examples")
        if isinstance(xs[0], dict):
            return {name: np.concatenate([part[name] for part in xs]) for name in xs[0]}, np.concatenate(ys)
        return np.concatenate(xs), np.concatenate(ys)

    @property
    def num_classes(self):
        return None if self.class_names is None else len(self.class_names)

    def class_counts(self, split="train"):
        """Examples of each class in a split, in `class_names` order (classification only)."""
        if self.problem != "classification":
            raise ValueError(f"class counts exist for a classification; the task {self.name!r} is a regression")
        return self._examples.class_counts[self._check_split(split)]

    def baseline(self, split="test"):
        """The trivial model's score on a split, in `metric`: what a trained model must beat.

        For a classification, the accuracy of always answering the most
        frequent training class; for a regression, the mean absolute error of
        always answering the training mean.
        """
        split = self._check_split(split)
        if self.problem == "classification":
            return majority_accuracy(self._examples.class_counts["train"], self._examples.class_counts[split])
        if split == "train":
            raise ValueError("the mean's baseline is scored on held-out data: split='validation' or 'test'")
        return float(np.mean(np.abs(self._examples.targets[split] - self._examples.train_mean)))

    # -- the model -------------------------------------------------------------------------------------------

    def build_model(self, model=None, **options):
        """A compiled model of one of the task's factories, adapted to the training data.

        Args:
            model: A factory name of `models` (the attribute), defaults to the first.
            **options: Further keyword arguments for the factory (`learning_rate`, `hidden_units`, ...).

        Returns:
            A compiled `keras.Model` whose inputs are the raw data of
            `dataset()`, named as `serving_names`: exported with
            `serving.export_model`, its `serving_default` takes those fields
            plus `key` (audio: clips of any length; tables: missing numbers
            and dates as written) and answers `key` with `label` and
            `probabilities`, or `prediction` for a regression. A table's
            export also has a `row` signature that takes a row of the file as
            it stands (see `optional_inputs`).
        """
        from recipes.layers import class_names_of

        model = check_one_of("model", model if model is not None else self.models[0], self.models)
        factory = _factory(self.modality, self.problem, model)
        options = {**self.model_options.get(model, {}), **options}
        data = self._examples.model_arguments()
        if self.modality == "text":
            built = factory(
                data["train_texts"],
                self.num_classes,
                class_names=self.class_names,
                input_name=self.serving_names[0],
                **options,
            )
        elif self.modality == "image":
            if model in ("cnn", "transfer") and "augment" not in options:
                from models import vision

                options["augment"] = vision.augmentation(horizontal_flip=self.horizontal_flip)
            built = factory(data["image_shape"], self.num_classes, class_names=self.class_names, **options)
        elif self.modality == "audio":
            built = factory(
                self.num_classes,
                class_names=self.class_names,
                num_samples=data["num_samples"],
                sample_rate=data["sample_rate"],
                input_name=self.serving_names[0],
                **options,
            )
        else:
            if self.problem == "classification":
                options.setdefault("class_names", self.class_names)
            built = factory(
                data["frame"],
                data["target"],
                date_columns=data["date_columns"],
                text_columns=data["text_columns"],
                fill_values=data["fill_values"],
                **options,
            )
        if self.class_names is not None and class_names_of(built) != list(self.class_names):
            raise ValueError(
                f"the factory {model!r} ordered the classes {class_names_of(built)}, the task {list(self.class_names)}"
            )
        if self.optional_inputs:
            from serving.export import set_optional_inputs

            set_optional_inputs(built, self.optional_inputs)
        return built

    def simple_model(self):
        """The classic simple model of the task, fitted with scikit-learn on the training split.

        TF-IDF of words and word pairs for text, the pixels for images, MFCC
        statistics for audio, standardised numbers and one-hot categories for
        tables; logistic regression for classes, ridge regression for
        numbers; regularisation chosen on the validation split. It is the bar
        the task's networks must clear (`recipes train` prints both).

        Returns:
            A fitted `recipes.tasks.simple.SimpleModel`: `description`,
            `score(split)`, `predict(x)`.
        """
        from recipes.tasks.simple import SimpleModel

        return SimpleModel(self)

    @property
    def serving_names(self):
        """The inputs of the exported `serving_default` besides `key`, named as the data names them.

        A table's feature columns by their own names (raw values: numbers,
        NaN where missing; strings for categories, text and dates as written),
        a text column by its name (`"text"` for a folder of .txt files),
        `"image"` (encoded bytes) for images, `"audio"` (WAV bytes) for a
        folder of clips and `"waveform"` (floats, any length) for waveforms in
        memory. `build_model` names the model's inputs so.
        """
        if self.features:
            return self.features
        if self.modality == "audio":
            return ("audio",) if self.path is not None else ("waveform",)
        return ("image",) if self.modality == "image" else ("text",)

    def score(self, model, split="test", batch_size=256):
        """The model's `metric` on a split (accuracy, or mean absolute error), read batch by batch."""
        batch_size = check_int("batch_size", batch_size)
        right, error, count = 0, 0.0, 0
        for x, y in self.dataset(split).batch(batch_size):
            predictions = np.asarray(model.predict_on_batch(x))
            y = y.numpy()
            if self.problem == "classification":
                right += int(np.sum(predictions.argmax(axis=-1) == y))
            else:
                error += float(np.sum(np.abs(predictions.reshape(len(y), -1)[:, 0] - y)))
            count += len(y)
        return right / count if self.problem == "classification" else error / count

    # -- description -----------------------------------------------------------------------------------------

    def to_dict(self):
        """The task's description as JSON types."""
        return {
            "name": self.name,
            "path": self.path,
            "modality": self.modality,
            "problem": self.problem,
            "target": self.target,
            "inputs": dict(self.inputs),
            "key": self.key,
            "group": self.group,
            "date": self.date,
            "split": self.split,
            "class_names": None if self.class_names is None else list(self.class_names),
            "metric": self.metric,
            "models": list(self.models),
            "num_examples": dict(self.num_examples),
        }

    def __repr__(self):
        return (
            f"Task(name={self.name!r}, modality={self.modality!r}, problem={self.problem!r}, "
            f"num_examples={self.num_examples})"
        )

    def __str__(self):
        source = self.path or "data in memory"
        counts = " / ".join(f"{self.num_examples[name]} {name}" for name in SPLITS)
        extra = "".join(f" / {self.num_examples[name]} {name}" for name in self.extra_tests)
        lines = [f"{self.name}: {self.modality} {self.problem} on {source}"]
        if self.target is not None:
            lines.append(f"  target: {self.target!r}")
        if self.class_names is not None:
            shown = ", ".join(self.class_names[:10]) + (", ..." if len(self.class_names) > 10 else "")
            lines.append(f"  classes ({len(self.class_names)}): {shown}")
        lines.append("  inputs: " + ", ".join(f"{name} ({kind})" for name, kind in self.inputs.items()))
        lines.append(f"  {self.split}: {counts}{extra} examples")
        dropped = getattr(self._examples, "dropped_rows", 0)
        if dropped:
            lines.append(f"  {dropped} rows without a target value left out")
        lines.append(f"  models: {', '.join(self.models)}; metric: {self.metric} (baseline: the {self.baseline_name})")
        return "\n".join(lines)


def _numpy(tensor):
    """A tensor as numpy, strings as `str` (the task checked they are UTF-8)."""
    values = tensor.numpy()
    if values.dtype == object:
        return np.array([value.decode("utf-8") for value in values.reshape(-1)], dtype=object).reshape(values.shape)
    return values

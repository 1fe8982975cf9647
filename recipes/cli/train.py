"""`recipes train TASK`: a baseline on real data, trained with virtual epochs and exported for TF Serving.

Each task loads its data set, splits it repeatably (by movie, by speaker, by
date), builds a factory's model whose inputs are raw data, trains it with
`recipes.fit`, compares its held-out score with the trivial baseline
(majority class, or the mean for regression), and exports a keyed SavedModel
version to `EXPORT_DIR/NAME/`.

With `--workers N` it starts N local processes on 127.0.0.1 that train
together under `tf.distribute.MultiWorkerMirroredStrategy`
(`recipes.distribute.run_local_cluster`): a way to try multi-worker training
on one machine. Any `recipes train` that finds a `TF_CONFIG` in its
environment is one worker of that cluster; the chief (worker 0) scores and
exports, the others only train.
"""

import dataclasses
import os
import shutil
import tempfile

import numpy as np

from recipes._common import check_int

EXAMPLE = """example:
  recipes train text                         # bag-of-words on Rotten Tomatoes, exported to exports/text/1
  recipes train audio --model lstm --total-examples 24000
  recipes train vision --model transfer --export-dir /models
  recipes train tabular --model regressor    # Seattle's temp_max from the other columns and the date
  recipes train tabular --workers 2          # two local workers (MultiWorkerMirroredStrategy) on 127.0.0.1
"""

MODELS = {
    "text": ("bag_of_words", "lstm", "transformer"),
    "audio": ("cnn", "lstm", "linear"),
    "vision": ("cnn", "linear", "transfer"),
    "tabular": ("classifier", "linear", "regressor"),
}
# Passes over the training split shown by default (`--total-examples`), sized for about a minute on 2 cores.
DEFAULT_PASSES = {"text": 10.0, "audio": 30.0, "vision": 3.0, "tabular": 60.0}


def add_arguments(parser):
    from recipes.cli import add_verbose_arguments

    parser.add_argument("task", choices=sorted(MODELS), help="which baseline")
    parser.add_argument(
        "--model", help="factory: " + "; ".join(f"{task}: {', '.join(names)}" for task, names in MODELS.items())
    )
    parser.add_argument("--export-dir", default="exports", help="TF Serving model root (default: exports)")
    parser.add_argument("--name", help="model name, the folder under --export-dir (default: the task)")
    parser.add_argument("--directory", help="the run's folder: checkpoints and their record (default: runs/NAME)")
    parser.add_argument(
        "--total-examples",
        type=int,
        help="examples to show in all (default: "
        + ", ".join(f"{task} {passes:g}" for task, passes in DEFAULT_PASSES.items())
        + " passes over the training split)",
    )
    parser.add_argument("--num-checkpoints", type=int, default=5, help="virtual epochs (default: 5)")
    parser.add_argument("--batch-size", type=int, default=32, help="default: 32")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("--resume", action="store_true", help="continue the run in --directory")
    add_verbose_arguments(parser, "1: a progress bar, 2: one line per virtual epoch", default=2)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="train with N local worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy); "
        "--batch-size is then the global batch (default: 1, no cluster)",
    )


@dataclasses.dataclass
class Split:
    """A task's data, split: inputs as the model takes them, integer labels or float targets."""

    train: tuple
    validation: tuple
    test: tuple
    extra_tests: dict = dataclasses.field(default_factory=dict)


def _take(x, rows):
    return {k: v[rows] for k, v in x.items()} if isinstance(x, dict) else x[rows]


def _text(args, recipes):
    from models import text

    reviews = recipes.datasets.load_rotten_tomatoes()
    x, y = reviews.text.to_numpy(), reviews.label.to_numpy()
    train, val, test = recipes.repeatable_split(reviews.movie_name, (0.8, 0.1, 0.1))
    names = recipes.datasets.ROTTEN_TOMATOES_CLASSES
    factory = {
        "bag_of_words": text.bag_of_words_classifier,
        "lstm": text.lstm_classifier,
        "transformer": text.transformer_classifier,
    }[args.model]
    model = factory(x[train], 2, class_names=names)
    return model, Split((x[train], y[train]), (x[val], y[val]), (x[test], y[test])), "split by movie"


def _audio(args, recipes):
    from models import audio

    waveforms, labels, speakers = recipes.datasets.load_spoken_digits(num_per_digit=100, seed=args.seed)
    train, val, test = recipes.repeatable_split(speakers, (0.8, 0.1, 0.1))
    unseen_x, unseen_y, _ = recipes.datasets.load_spoken_digits(num_per_digit=20, voices="flite", seed=args.seed)
    factory = {
        "cnn": audio.mfcc_cnn_classifier,
        "lstm": audio.mfcc_lstm_classifier,
        "linear": audio.mfcc_linear_classifier,
    }[args.model]
    model = factory(10, class_names=recipes.datasets.DIGIT_WORDS)
    split = Split(
        (waveforms[train], labels[train]),
        (waveforms[val], labels[val]),
        (waveforms[test], labels[test]),
        {"unseen flite voices": (unseen_x, unseen_y)},
    )
    return model, split, "espeak voices split by speaker"


def _vision(args, recipes):
    from models import vision

    images, labels = recipes.datasets.load_fashion_mnist("train")
    test_images, test_labels = recipes.datasets.load_fashion_mnist("test")
    # A fixed subset keeps the default run near a minute; --total-examples trades time for accuracy.
    train, val, _ = recipes.repeatable_split(np.arange(len(images)), (0.2, 0.02, 0.78))
    names = recipes.datasets.FASHION_MNIST_CLASSES
    if args.model == "cnn":
        model = vision.cnn_classifier((28, 28), 10, class_names=names, augment=vision.augmentation(horizontal_flip=True))
    elif args.model == "linear":
        model = vision.linear_classifier((28, 28), 10, class_names=names)
    else:
        model = vision.transfer_classifier((28, 28), 10, class_names=names, input_size=32)
    split = Split((images[train], labels[train]), (images[val], labels[val]), (test_images, test_labels))
    return model, split, "Fashion-MNIST train subset / official test set"


def _tabular(args, recipes):
    from models import tabular

    weather = recipes.datasets.load_seattle_weather()
    train, val, test = recipes.split_by_date(weather.date, ["2014/07/01", "2015/01/01"])
    frame = weather.iloc[train]
    if args.model == "regressor":
        model, target = tabular.regressor(frame, "temp_max", date_columns=["date"]), "temp_max"
    elif args.model == "linear":
        model, target = tabular.linear_classifier(frame, "weather", date_columns=["date"]), "weather"
    else:
        model, target = tabular.classifier(frame, "weather", date_columns=["date"]), "weather"

    def xy(rows):
        return tabular.to_xy(model, weather.iloc[rows], target)

    return model, Split(xy(train), xy(val), xy(test)), "Seattle weather split by date: to mid-2014 | 2014H2 | 2015"


TASKS = {"text": _text, "audio": _audio, "vision": _vision, "tabular": _tabular}


def _score(model, x, y, baseline_value, is_classifier):
    predictions = model.predict(x, batch_size=256, verbose=0)
    if is_classifier:
        return float(np.mean(predictions.argmax(axis=1) == y)), float(np.mean(y == baseline_value))
    return float(np.mean(np.abs(predictions[:, 0] - y))), float(np.mean(np.abs(baseline_value - y)))


def train_and_export(args, passes=None):
    """Runs one task; returns `(name, export_path, lines of results)`.

    Without `args.total_examples`, it shows `passes` passes over the training split (default: the task's
    `DEFAULT_PASSES`).
    """
    args.model = args.model or MODELS[args.task][0]
    if args.model not in MODELS[args.task]:
        raise ValueError(f"--model for {args.task} must be one of {MODELS[args.task]}. Received: {args.model!r}")
    if args.total_examples is not None:
        check_int("--total-examples", args.total_examples)
    import recipes
    import serving

    name = args.name or args.task
    directory = args.directory or os.path.join("runs", name)
    passes = DEFAULT_PASSES[args.task] if passes is None else passes
    recipes.set_seed(args.seed)
    strategy = _cluster_strategy()
    if not args.resume and os.path.isdir(directory):
        if strategy is not None:
            raise ValueError(
                f"{directory} exists and this process is one worker of a TF_CONFIG cluster, which cannot "
                "safely delete a run the others may be reading: pass --resume, or a new --directory"
            )
        shutil.rmtree(directory)  # a new run unless --resume
    if strategy is None:
        model, split, how = TASKS[args.task](args, recipes)
    else:
        with strategy.scope():
            model, split, how = TASKS[args.task](args, recipes)
    x_train, y_train = split.train
    num_train = len(y_train)
    total_examples = args.total_examples or max(int(passes * num_train), args.batch_size * args.num_checkpoints)
    print(f"[{name}] {model.name} on {num_train} training / {len(split.validation[1])} validation / "
          f"{len(split.test[1])} test examples ({how}); {total_examples} examples to show")  # fmt: skip
    result = recipes.fit(
        model,
        split.train,
        validation_data=split.validation,
        batch_size=args.batch_size,
        total_examples=total_examples,
        num_checkpoints=args.num_checkpoints,
        directory=directory,
        early_stopping_patience=3,
        verbose=args.verbose,
    )
    if strategy is not None:
        from recipes import distribute

        model = _local_copy(model)
        if not distribute.is_chief(strategy):
            _barrier(strategy)
            return name, None, [f"[{name}] worker {strategy.cluster_resolver.task_id} finished"]
    is_classifier = hasattr(model.layers[-1], "class_names")
    baseline_value = np.bincount(y_train).argmax() if is_classifier else float(np.mean(y_train))
    metric, baseline_name = ("accuracy", "majority class") if is_classifier else ("mean absolute error", "mean")
    lines = []
    for label, (x, y) in {"test": split.test, **split.extra_tests}.items():
        score, baseline = _score(model, x, y, baseline_value, is_classifier)
        lines.append(f"[{name}] {label} {metric}: {score:.3f} vs {baseline:.3f} for the {baseline_name}")
    path = serving.export_model(model, os.path.join(args.export_dir, name), warmup_inputs=_take(x_train, slice(0, 3)))
    lines.append(
        f"[{name}] {result.steps_per_epoch} steps x {len(result.history['loss'])} virtual epochs; "
        f"best checkpoint {result.best_checkpoints[0]}; exported to {path}"
    )
    if strategy is not None:
        _barrier(strategy)
    return name, path, lines


def _cluster_strategy():
    """A `MultiWorkerMirroredStrategy` when this process is a worker of a `TF_CONFIG` cluster, else `None`."""
    if not os.environ.get("TF_CONFIG"):
        return None
    import tensorflow as tf

    return tf.distribute.MultiWorkerMirroredStrategy()


def _barrier(strategy):
    """Waits for every worker: one that exited while the chief still exports would be reported as crashed."""
    import tensorflow as tf

    strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)


def _local_copy(model):
    """The trained model outside the cluster, for scoring and export (Keras's `predict` fails under
    MultiWorkerMirroredStrategy, keras-team/keras#20585). Every worker saves, as saving may run
    collective ops; only the chief goes on to use the copy."""
    import keras

    with tempfile.TemporaryDirectory(prefix="recipes-train-") as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        return keras.models.load_model(path)


def _worker_argv(args):
    """The command line of one worker: these arguments, without --workers, continuing the run the launcher prepared."""
    argv = [args.task, "--resume", "--num-checkpoints", args.num_checkpoints, "--batch-size", args.batch_size]
    argv += ["--seed", args.seed, "--export-dir", args.export_dir, "--verbose", args.verbose]
    for flag, value in (
        ("--model", args.model),
        ("--name", args.name),
        ("--directory", args.directory),
        ("--total-examples", args.total_examples),
    ):
        if value is not None:
            argv += [flag, value]
    return [str(a) for a in argv]


def run_workers(args):
    """Starts `args.workers` local processes of this command that train as one cluster; waits for them."""
    from recipes import distribute

    if os.environ.get("TF_CONFIG"):
        raise ValueError("--workers starts a local cluster and cannot be used inside one (TF_CONFIG is set)")
    directory = args.directory or os.path.join("runs", args.name or args.task)
    if not args.resume and os.path.isdir(directory):
        shutil.rmtree(directory)  # a new run unless --resume; done here, before any worker reads it
    code = "import sys; from recipes.cli import main; sys.exit(main(sys.argv[1:]))"
    print(f"recipes train: starting {args.workers} workers on 127.0.0.1 (worker 0 is the chief)", flush=True)
    try:
        cluster = distribute.run_local_cluster(["-c", code, "train", *_worker_argv(args)], workers=args.workers)
    except distribute.ClusterError as error:
        raise ValueError(str(error)) from None
    print(cluster)


def run(args):
    check_int("--workers", args.workers)
    if args.workers > 1:
        return run_workers(args)
    _, _, lines = train_and_export(args)
    print("\n".join(lines))

"""`recipes train TASK` or `recipes train --data PATH`: a baseline, trained with virtual epochs and exported for TF Serving.

The task (`recipes.cli.tasks`: a shipped data set, or the user's table or
folder of class folders) is read and checked, split repeatably (by movie, by
speaker, by date, by key or group), a factory's model whose inputs are raw
data is built and trained with `recipes.fit`, its held-out score is compared
with the trivial baseline (majority class, or the mean for regression), and a
keyed SavedModel version is exported to `EXPORT_DIR/NAME/`.

With `--workers N` it starts N local processes on 127.0.0.1 that train
together under `tf.distribute.MultiWorkerMirroredStrategy`
(`recipes.distribute.run_local_cluster`): a way to try multi-worker training
on one machine. Any `recipes train` that finds a `TF_CONFIG` in its
environment is one worker of that cluster; the chief (worker 0) scores and
exports, the others only train.
"""

import os
import shutil
import tempfile

from recipes._common import check_int

EXAMPLE = """example:
  recipes train text                         # bag-of-words on Rotten Tomatoes, exported to exports/text/1
  recipes train audio --model lstm --total-examples 24000
  recipes train vision --model transfer --export-dir /models
  recipes train tabular --model regressor    # Seattle's temp_max from the other columns and the date
  recipes train tabular --workers 2          # two local workers (MultiWorkerMirroredStrategy) on 127.0.0.1
  recipes train --data reviews.csv --target sentiment --group movie       # your own table: exports/reviews/1
  recipes train --data photos/ --model cnn --name photos                  # a folder of class folders
"""


def add_arguments(parser):
    from recipes.cli import add_verbose_arguments
    from recipes.cli.tasks import DATA_PASSES, DEFAULT_PASSES, add_task_arguments

    add_task_arguments(parser)
    parser.add_argument("--export-dir", default="exports", help="TF Serving model root (default: exports)")
    parser.add_argument("--name", help="model name, the folder under --export-dir (default: the task's name)")
    parser.add_argument("--directory", help="the run's folder: checkpoints and their record (default: runs/NAME)")
    parser.add_argument(
        "--total-examples",
        type=int,
        help="examples to show in all (default: "
        + ", ".join(f"{task} {passes:g}" for task, passes in DEFAULT_PASSES.items())
        + f", --data {DATA_PASSES:g} passes over the training split)",
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


def _first_inputs(task, count=3):
    """The first `count` training inputs as arrays, for the export's warmup requests."""
    x, _ = task.arrays("train", limit=count)
    return x


def score_lines(task, model, name):
    """The held-out scores, each split on lines of its own (so scripts can read them):

    `[NAME] SPLIT METRIC: SCORE vs BASELINE for the BASELINE NAME` for the network, then
    `[NAME] simple model (DESCRIPTION) SPLIT METRIC: SCORE` for the task's scikit-learn simple model
    (`Task.simple_model`), and a note when the network does not beat the simple model.
    """
    metric = task.metric.replace("_", " ")
    simple = task.simple_model()
    lines, behind = [], []
    for split in ("test", *task.extra_tests):
        score, baseline = task.score(model, split), task.baseline(split)
        simple_score = simple.score(split)
        lines.append(f"[{name}] {split} {metric}: {score:.3f} vs {baseline:.3f} for the {task.baseline_name}")
        lines.append(f"[{name}] simple model ({simple.description}) {split} {metric}: {simple_score:.3f}")
        if (score < simple_score) if task.problem == "classification" else (score > simple_score):
            behind.append(split)
    if behind:
        lines.append(
            f"[{name}] note: the network does not beat the simple model on {' and '.join(behind)}: train longer "
            "(--total-examples), try another --model, or ask `recipes doctor` why"
        )
    return lines


def train_and_export(args, task=None, passes=None):
    """Trains and exports the task of `args` (or `task`); returns `(name, export_path, lines of results)`.

    Without `args.total_examples`, it shows `passes` passes over the training split (default: the task's,
    `recipes.cli.tasks.default_passes`). The task is built, and its data checked, before the run folder or
    the export is touched.
    """
    from recipes.cli.tasks import check_model, default_passes, describe, task_from_args

    if args.total_examples is not None:
        check_int("--total-examples", args.total_examples)
    task = task or task_from_args(args, seed=args.seed)
    args.model = check_model(task, args.model)
    import recipes
    import serving

    name = args.name or task.name
    directory = args.directory or os.path.join("runs", name)
    passes = default_passes(task) if passes is None else passes
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
        model = task.build_model(args.model)
    else:
        with strategy.scope():
            model = task.build_model(args.model)
    counts = task.num_examples
    total_examples = args.total_examples or max(int(passes * counts["train"]), args.batch_size * args.num_checkpoints)
    print(
        f"[{name}] {model.name} on {counts['train']} training / {counts['validation']} validation / "
        f"{counts['test']} test examples ({describe(task)}); {total_examples} examples to show"
    )
    result = recipes.fit(
        model,
        task.train_data,
        validation_data=task.validation_data,
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
    lines = score_lines(task, model, name)
    path = serving.export_model(model, os.path.join(args.export_dir, name), warmup_inputs=_first_inputs(task))
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
    from recipes.cli.tasks import task_argv

    argv = [*task_argv(args), "--resume", "--num-checkpoints", args.num_checkpoints, "--batch-size", args.batch_size]
    argv += ["--seed", args.seed, "--export-dir", args.export_dir, "--verbose", args.verbose]
    for flag, value in (
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
    from recipes.cli.tasks import task_from_args

    task = task_from_args(args, seed=args.seed)  # the data is checked before any worker starts
    directory = args.directory or os.path.join("runs", args.name or task.name)
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

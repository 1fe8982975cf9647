"""`fit` with virtual epochs, best-K checkpoints, crash recovery and early stopping.

A *virtual epoch* is a fixed number of steps chosen from the number of
examples the model should see in all, not from the size of the data set:
`steps_per_epoch = total_examples // (batch_size * num_checkpoints)`. When the
data grows, training does not silently grow with it, and every virtual epoch
ends with a checkpoint (Lakshmanan et al., *Machine Learning Design
Patterns*, "Checkpoints").

Under `tf.distribute.MultiWorkerMirroredStrategy` the same plan holds for the
whole cluster: `batch_size` is the global batch, each step of the cluster
consumes it, and only the chief writes checkpoints (`recipes.distribute`).
"""

import contextlib
import dataclasses
import math
import os
import shutil
import tempfile

import keras

from recipes import distribute, pipeline
from recipes._common import check_int, check_number, check_one_of
from recipes.callbacks import BestKCheckpoint, EpochBackup, ResumableEarlyStopping, resolve_mode

BACKUP_SUBDIR = "backup"


def virtual_steps_per_epoch(total_examples, batch_size, num_checkpoints):
    """Steps per virtual epoch: `total_examples // (batch_size * num_checkpoints)`.

    Example:

    >>> import recipes
    >>> recipes.virtual_steps_per_epoch(14_000_000, batch_size=100, num_checkpoints=20)
    7000

    Args:
        total_examples: Int. How many examples training should show the model
            in all (repeating the data as needed), e.g. 15 passes over
            today's data set.
        batch_size: Int. Examples per step (the global batch across replicas).
        num_checkpoints: Int. How many virtual epochs, each ending with an
            evaluation and a checkpoint.

    Returns:
        The number of steps per virtual epoch, at least 1.
    """
    check_int("total_examples", total_examples)
    check_int("batch_size", batch_size)
    check_int("num_checkpoints", num_checkpoints)
    if total_examples < batch_size * num_checkpoints:
        raise ValueError(
            "`total_examples` must be at least `batch_size * num_checkpoints` "
            f"({batch_size} * {num_checkpoints} = {batch_size * num_checkpoints}) so that every "
            f"virtual epoch has a step. Received: total_examples={total_examples}"
        )
    return total_examples // (batch_size * num_checkpoints)


@keras.saving.register_keras_serializable(package="recipes")
class PlannedCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate decayed to 0 along a cosine over the steps `recipes.fit` plans.

    A model factory cannot know how long its model will train; `recipes.fit`
    does (`num_checkpoints * steps_per_epoch`) and sets `decay_steps` before
    training. Until then (a plain `model.fit`, say) the rate stays at
    `initial_learning_rate`. The rate is a function of the optimizer's step
    count, so a resumed run continues on the same curve.

    Example:

    ```python
    model.compile(optimizer=keras.optimizers.Adam(recipes.training.PlannedCosineDecay(1e-3)), loss=...)
    recipes.fit(model, train, batch_size=32, total_examples=300_000, num_checkpoints=5)  # decays over 9,375 steps
    ```

    Args:
        initial_learning_rate: Float > 0.
        decay_steps: Optional int >= 1, defaults to `None` (set by `recipes.fit`).
    """

    def __init__(self, initial_learning_rate, decay_steps=None):
        self.initial_learning_rate = check_number("initial_learning_rate", initial_learning_rate, 0, inclusive=False)
        self.decay_steps = None if decay_steps is None else check_int("decay_steps", decay_steps)

    def __call__(self, step):
        rate = keras.ops.convert_to_tensor(self.initial_learning_rate, "float32")
        if self.decay_steps is None:
            return rate
        progress = keras.ops.minimum(keras.ops.cast(step, "float32") / self.decay_steps, 1.0)
        return rate * 0.5 * (1.0 + keras.ops.cos(math.pi * progress))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps}


def _plan_learning_rate(model, total_steps):
    """Sets the decay of a `PlannedCosineDecay` learning rate to the run's steps (other rates are left alone)."""
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)  # under a LossScaleOptimizer
    schedule = getattr(optimizer, "_learning_rate", None)  # the schedule itself; `learning_rate` is its value
    if isinstance(schedule, PlannedCosineDecay) and schedule.decay_steps != total_steps:
        schedule.decay_steps = total_steps
        model.train_function = None  # a traced step holds the old number of steps


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What `recipes.fit` returns.

    Attributes:
        history: Dict from metric name to one value per virtual epoch, across
            restarts when a `directory` was given.
        steps_per_epoch: Steps in each virtual epoch.
        epochs: Planned number of virtual epochs (`num_checkpoints`).
        best_checkpoints: Paths of the kept best checkpoints, best first.
        last_checkpoint: Path of the newest checkpoint, or `None`.
        stopped_early: Whether early stopping ended the run.
    """

    history: dict
    steps_per_epoch: int
    epochs: int
    best_checkpoints: list
    last_checkpoint: str | None
    stopped_early: bool


def fit(
    model,
    train_data,
    *,
    batch_size,
    total_examples,
    num_checkpoints,
    validation_data=None,
    directory=None,
    keep_best=3,
    monitor="val_loss",
    mode="auto",
    early_stopping_patience=None,
    resume=True,
    callbacks=(),
    verbose="auto",
    strategy=None,
    loop="auto",
):
    """Trains a compiled model for a fixed number of examples in virtual epochs.

    The training data is shuffled, repeated and batched, so the number of
    steps (`num_checkpoints * steps_per_epoch`) is fixed by `total_examples`
    whatever the size of the data. With a `directory`, every virtual
    epoch ends with a full-model `.keras` checkpoint; the best `keep_best` by
    `monitor` and the last one are kept. With `resume=True` (the default) an
    interrupted run started again with the same arguments continues from its
    last completed virtual epoch, weights and optimizer state included
    (`recipes.EpochBackup`), and a finished run is not trained again. Early stopping ends the run once `monitor` has not improved for
    `early_stopping_patience` virtual epochs and restores the best weights.
    A `PlannedCosineDecay` learning rate is set to decay over the planned
    `num_checkpoints * steps_per_epoch` steps.

    Distributed training: build and compile the model inside
    `strategy.scope()`. Under `tf.distribute.MirroredStrategy` Keras's
    `model.fit` trains it; under `tf.distribute.MultiWorkerMirroredStrategy`
    (every worker runs the same script with its `TF_CONFIG`), where Keras
    3.15's `model.fit` fails (keras-team/keras#20585), `recipes.distribute.
    custom_fit` does, with the same virtual epochs, validation, checkpoints,
    early stopping and resume. `batch_size` and `total_examples` count for the
    whole cluster. Only the chief writes to `directory`, which must be a
    folder every worker can read (on one machine any folder; on several, a
    shared file system): the other workers read its record and backup, so
    that all resume from the same epoch and stop at the same one, and write
    their copies to temporary folders deleted at the end.

    Example:

    ```python
    import recipes
    from models import text

    recipes.set_seed(0)
    data = recipes.datasets.load_rotten_tomatoes()
    train, val = recipes.repeatable_split(data.movie_name, (0.8, 0.2))
    model = text.bag_of_words_classifier(data.text[train], num_classes=2)
    result = recipes.fit(
        model,
        (data.text[train].to_numpy(), data.label[train].to_numpy()),
        validation_data=(data.text[val].to_numpy(), data.label[val].to_numpy()),
        batch_size=32,
        total_examples=20 * len(train),  # about 20 passes over today's data
        num_checkpoints=10,
        directory="runs/rotten-tomatoes",
        early_stopping_patience=3,
    )
    result.best_checkpoints[0]
    ```

    Args:
        model: A compiled `keras.Model`.
        train_data: An `(x, y)` tuple of NumPy arrays (or of dicts of arrays,
            one per named input), or a `tf.data.Dataset` of unbatched
            `(x, y)` examples.
        batch_size: Int. Examples per step; the global batch under a
            distribution strategy.
        total_examples: Int. Examples to show the model in all.
        num_checkpoints: Int. Number of virtual epochs; each ends with
            validation and a checkpoint.
        validation_data: Optional data in the same forms as `train_data`,
            evaluated in full after every virtual epoch. Defaults to `None`.
        directory: Optional folder for checkpoints, their record and the
            crash backup. Defaults to `None` (no checkpoints, no resume).
        keep_best: Int >= 1, defaults to 3. Best checkpoints kept besides the
            last one.
        monitor: Logged metric ranking the checkpoints and driving early
            stopping, defaults to `"val_loss"`.
        mode: `"auto"`, `"min"` or `"max"`, defaults to `"auto"`.
        early_stopping_patience: Optional int >= 1. Virtual epochs without
            improvement before stopping; defaults to `None` (never stop early).
        resume: Bool, defaults to `True`. Continue the run recorded in
            `directory`. With `False`, a `directory` that already
            holds a run is an error rather than overwritten.
        callbacks: Further Keras callbacks, defaults to `()`.
        verbose: Passed to `model.fit`, defaults to `"auto"`. Non-chief
            workers of a multi-worker run are silent.
        strategy: Optional `tf.distribute.Strategy` the model was built and
            compiled under; checked, since Keras trains with the strategy the
            model was created in. Defaults to `None`.
        loop: `"auto"` (default: `"custom"` under `MultiWorkerMirroredStrategy`,
            `"keras"` otherwise), `"keras"` (`model.fit`) or `"custom"`
            (`recipes.distribute.custom_fit`, under any strategy).

    Returns:
        A `FitResult`.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: {type(model).__name__}")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise ValueError("`model` must be compiled (model.compile(optimizer=..., loss=...)) before fit")
    steps_per_epoch = virtual_steps_per_epoch(total_examples, batch_size, num_checkpoints)
    mode = resolve_mode(monitor, mode)
    monitored = directory is not None or early_stopping_patience is not None
    if monitored and monitor.startswith("val_") and validation_data is None:
        raise ValueError(
            f"`monitor={monitor!r}` is a validation metric, but no `validation_data` was given. "
            "Pass validation_data or monitor a training metric such as 'loss'."
        )
    if early_stopping_patience is not None:
        check_int("early_stopping_patience", early_stopping_patience)
    if strategy is not None and model.distribute_strategy is not strategy:
        raise ValueError(
            "`model` was not created under `strategy`: build and compile it inside "
            "`with strategy.scope():` so that its variables are mirrored"
        )
    check_one_of("loop", loop, ("auto", "keras", "custom"))
    _plan_learning_rate(model, steps_per_epoch * num_checkpoints)
    strategy = model.distribute_strategy
    if loop == "auto":
        loop = "custom" if distribute.is_multi_worker(strategy) else "keras"
    if loop == "custom":
        distribute.per_replica_batch_size(batch_size, strategy)
    with contextlib.ExitStack() as stack:
        stack.enter_context(strategy.scope())
        scratch = None
        if not distribute.is_chief(strategy):
            scratch = tempfile.mkdtemp(prefix="recipes-worker-")
            stack.callback(shutil.rmtree, scratch, ignore_errors=True)
            verbose = 0
        return _fit(
            model,
            train_data,
            validation_data,
            batch_size,
            steps_per_epoch,
            num_checkpoints,
            directory,
            keep_best,
            monitor,
            mode,
            early_stopping_patience,
            resume,
            callbacks,
            verbose,
            loop,
            scratch,
        )


def _fit(
    model,
    train_data,
    validation_data,
    batch_size,
    steps_per_epoch,
    num_checkpoints,
    directory,
    keep_best,
    monitor,
    mode,
    early_stopping_patience,
    resume,
    callbacks,
    verbose,
    loop,
    scratch,
):
    """`fit` once the arguments are checked; `scratch` is a non-chief worker's temporary folder."""

    train = pipeline.training_pipeline(train_data, batch_size, "train_data")
    validation = (
        pipeline.evaluation_pipeline(validation_data, batch_size, "validation_data")
        if validation_data is not None
        else None
    )

    all_callbacks = []
    checkpoint = None
    if directory is not None:
        directory = os.fspath(directory)
        checkpoint = BestKCheckpoint(
            directory,
            monitor=monitor,
            mode=mode,
            keep_best=keep_best,
            scratch_dir=scratch and os.path.join(scratch, "checkpoints"),
        )
        if checkpoint.records and not resume:
            raise ValueError(
                f"directory {directory!r} already holds a run of {len(checkpoint.records)} "
                "epoch(s). Pass resume=True to continue it, or another directory for a new run."
            )
        if checkpoint.finished:
            return _finished_run(model, checkpoint, steps_per_epoch, num_checkpoints)
        all_callbacks.append(checkpoint)
        if early_stopping_patience is not None:
            all_callbacks.append(ResumableEarlyStopping(checkpoint, early_stopping_patience))
    elif early_stopping_patience is not None:
        all_callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=early_stopping_patience, restore_best_weights=True
            )
        )
    all_callbacks.extend(callbacks)
    initial_epoch = 0
    if directory is not None and resume:
        backup = EpochBackup(
            os.path.join(directory, BACKUP_SUBDIR), scratch_dir=scratch and os.path.join(scratch, BACKUP_SUBDIR)
        )
        # Last, so that an epoch's backup follows its checkpoint: a crash between them re-runs the epoch.
        all_callbacks.append(backup)
        _build(model, train)
        initial_epoch = backup.restore(model)
        if initial_epoch and verbose:
            print(f"recipes.fit: resuming {directory} after virtual epoch {initial_epoch}")

    if loop == "custom":
        history = distribute.custom_fit(
            model,
            train_data,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            epochs=num_checkpoints,
            initial_epoch=initial_epoch,
            validation_data=validation_data,
            callbacks=all_callbacks,
            verbose=verbose,
        )
    else:
        history = model.fit(
            train,
            validation_data=validation,
            epochs=num_checkpoints,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            shuffle=False,  # the pipeline shuffles
            callbacks=all_callbacks,
            verbose=verbose,
        )
    if checkpoint is None:
        return FitResult(
            history=dict(history.history),
            steps_per_epoch=steps_per_epoch,
            epochs=num_checkpoints,
            best_checkpoints=[],
            last_checkpoint=None,
            stopped_early=len(history.epoch) < num_checkpoints and bool(history.epoch),
        )
    return _result_from_checkpoint(checkpoint, steps_per_epoch, num_checkpoints)


def _build(model, train):
    """Creates the weights of a model defined without an `Input`, so that a backup can load into them."""
    if not model.built:
        model(next(iter(train))[0])


def _result_from_checkpoint(checkpoint, steps_per_epoch, num_checkpoints):
    return FitResult(
        history=checkpoint.history,
        steps_per_epoch=steps_per_epoch,
        epochs=num_checkpoints,
        best_checkpoints=checkpoint.best_checkpoints,
        last_checkpoint=checkpoint.last_checkpoint,
        stopped_early=len(checkpoint.records) < num_checkpoints,
    )


def _finished_run(model, checkpoint, steps_per_epoch, num_checkpoints):
    """A finished run is not trained again: the model gets the weights it ended with."""
    final = checkpoint.final_checkpoint
    if final is None:
        raise ValueError(
            f"{checkpoint.directory} records a finished run whose final checkpoint is missing; "
            "use another directory for a new run"
        )
    print(f"recipes.fit: the run in {checkpoint.directory} already finished; loaded {final}")
    if not model.optimizer.built:  # so that the optimizer state loads too
        model.optimizer.build(model.trainable_variables)
    model.load_weights(final)
    return _result_from_checkpoint(checkpoint, steps_per_epoch, num_checkpoints)

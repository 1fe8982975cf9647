"""Checkpoint callbacks whose state survives a restart of the training process.

Keras's `ModelCheckpoint` keeps either every checkpoint or the single best
one, and `EarlyStopping` forgets its patience counter when the process dies.
`BestKCheckpoint` keeps the best K full-model checkpoints plus the last one and
writes its bookkeeping next to them; `ResumableEarlyStopping` reads that
bookkeeping, so a resumed run stops exactly where an uninterrupted run would
have; `EpochBackup` backs up the training state so that a killed run resumes.
"""

import json
import math
import os
import re
import shutil

import keras

from recipes._common import check_int, check_one_of

STATE_FILE = "checkpoints.json"
_CHECKPOINT_NAME = re.compile(r"^epoch-\d+.*\.keras$")
_BACKUP_NAME = re.compile(r"^epoch-(\d+)\.weights\.h5$")
_MAXIMISED = ("acc", "auc", "precision", "recall", "f1", "iou", "r2")


def resolve_mode(monitor, mode):
    """Returns `"min"` or `"max"` for `mode="auto"` as Keras's callbacks do.

    Metrics that grow as a model improves (accuracy, AUC, precision, recall,
    F1, IoU, R²) are maximised, everything else (losses, errors) minimised.
    """
    mode = check_one_of("mode", mode, ("auto", "min", "max"))
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_").lower()
    return "max" if any(part in name for part in _MAXIMISED) else "min"


class BestKCheckpoint(keras.callbacks.Callback):
    """Keeps the best `keep_best` full-model checkpoints and the last one.

    At the end of every epoch the whole model (architecture, weights,
    optimizer state and the vocabularies of preprocessing layers) is saved as
    `epoch-{epoch:03d}-{monitor}={value:.4f}.keras` in `directory`. Files that
    are neither among the best `keep_best` by `monitor` nor the last one are
    deleted. The record of every epoch (its logs and its file, if kept) is
    written to `checkpoints.json` after each save, so a restarted process
    continues the bookkeeping instead of starting it over, and the files on
    disk always match the record.

    Example:

    ```python
    checkpoint = recipes.BestKCheckpoint("runs/imdb", monitor="val_loss", keep_best=3)
    model.fit(x, y, validation_split=0.1, epochs=10, callbacks=[checkpoint])
    checkpoint.best_checkpoints  # paths, best first
    checkpoint.last_checkpoint
    ```

    Args:
        directory: Folder for the checkpoints and `checkpoints.json`; created
            if missing. Use one folder per run.
        monitor: Name of the logged metric to rank checkpoints by, defaults to
            `"val_loss"`.
        mode: One of `"auto"`, `"min"`, `"max"`, defaults to `"auto"` (maximise
            accuracy-like metrics, minimise the rest).
        keep_best: Int >= 1, defaults to 3. How many best checkpoints to keep
            besides the last one.
        scratch_dir: Optional folder for the non-chief workers of a
            multi-worker run. Such a worker reads the chief's record in
            `directory` (so that every worker resumes, ranks and stops alike)
            but writes nothing there: it saves each checkpoint to
            `scratch_dir`, as every worker must save for the collective ops
            that saving may run, and deletes it at once. Defaults to `None`
            (this process owns `directory`).
    """

    def __init__(self, directory, monitor="val_loss", mode="auto", keep_best=3, scratch_dir=None):
        super().__init__()
        if not directory:
            raise ValueError(f"`directory` must be a folder path. Received: directory={directory!r}")
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"`monitor` must be a metric name. Received: monitor={monitor!r}")
        keep_best = check_int("keep_best", keep_best)
        self.directory = os.fspath(directory)
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.keep_best = keep_best
        self.scratch_dir = os.fspath(scratch_dir) if scratch_dir else None
        self.records = []
        self.finished = False
        self.final_epoch = None  # the epoch whose weights the model held when training ended
        self._load_state()

    # -- state on disk -------------------------------------------------------------------------

    @property
    def state_path(self):
        return os.path.join(self.directory, STATE_FILE)

    def _load_state(self):
        if not os.path.exists(self.state_path):
            return
        with open(self.state_path) as f:
            state = json.load(f)
        if state["monitor"] != self.monitor or state["mode"] != self.mode:
            raise ValueError(
                f"{self.directory} holds a run ranked by monitor={state['monitor']!r}, "
                f"mode={state['mode']!r}. Received: monitor={self.monitor!r}, mode={self.mode!r}. "
                "Use the same settings to resume, or another directory for a new run."
            )
        self.records = state["records"]
        self.finished = state["finished"]
        self.final_epoch = state["final_epoch"]

    def _write_state(self):
        state = {
            "monitor": self.monitor,
            "mode": self.mode,
            "keep_best": self.keep_best,
            "finished": self.finished,
            "final_epoch": self.final_epoch,
            "records": self.records,
        }
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)  # atomic: a crash leaves the old or the new state

    def _remove_unrecorded_files(self):
        """Deletes checkpoint files a crash left behind before the state named or dropped them."""
        kept = {r["path"] for r in self.records if r["path"]}
        for name in os.listdir(self.directory):
            if _CHECKPOINT_NAME.match(name) and name not in kept:
                os.remove(os.path.join(self.directory, name))

    # -- ranking -------------------------------------------------------------------------------

    def _ranked(self):
        """Records with a value, best first; ties go to the earlier epoch."""
        valued = [r for r in self.records if r["value"] is not None and math.isfinite(r["value"])]
        sign = 1 if self.mode == "min" else -1
        return sorted(valued, key=lambda r: (sign * r["value"], r["epoch"]))

    @property
    def best_record(self):
        ranked = self._ranked()
        return ranked[0] if ranked else None

    @property
    def best_checkpoints(self):
        """Paths of the kept best checkpoints, best first."""
        return [os.path.join(self.directory, r["path"]) for r in self._ranked()[: self.keep_best] if r["path"]]

    @property
    def last_checkpoint(self):
        """Path of the newest checkpoint, or `None` before the first epoch ends."""
        if not self.records or not self.records[-1]["path"]:
            return None
        return os.path.join(self.directory, self.records[-1]["path"])

    @property
    def history(self):
        """Logs of every recorded epoch, across restarts, as `History.history` lays them out."""
        history = {}
        for record in self.records:
            for name, value in record["logs"].items():
                history.setdefault(name, []).append(value)
        return history

    # -- callback hooks ------------------------------------------------------------------------

    @property
    def final_checkpoint(self):
        """Path of the checkpoint holding the weights the finished run ended with."""
        for record in self.records:
            if record["epoch"] == self.final_epoch and record["path"]:
                return os.path.join(self.directory, record["path"])
        return None

    def on_train_begin(self, logs=None):
        self.finished = False
        self.final_epoch = None
        if self.scratch_dir:
            os.makedirs(self.scratch_dir, exist_ok=True)
            return
        os.makedirs(self.directory, exist_ok=True)
        self._remove_unrecorded_files()

    def on_epoch_end(self, epoch, logs=None):
        logs = {name: float(value) for name, value in (logs or {}).items()}
        if self.monitor not in logs:
            raise ValueError(
                f"BestKCheckpoint monitors {self.monitor!r}, but the epoch logged only "
                f"{sorted(logs)}. Pass one of these as `monitor` (metrics starting with "
                "'val_' need validation data)."
            )
        number = epoch + 1
        value = logs[self.monitor]
        name = f"epoch-{number:03d}-{self.monitor}={value:.4f}.keras"
        if self.scratch_dir:
            self.model.save(os.path.join(self.scratch_dir, name))
            os.remove(os.path.join(self.scratch_dir, name))
        else:
            self.model.save(os.path.join(self.directory, name))
        # A record for this epoch or later comes from a run that crashed before its backup.
        self.records = [r for r in self.records if r["epoch"] < number]
        self.records.append({"epoch": number, "value": value, "logs": logs, "path": name})
        keep = {r["epoch"] for r in self._ranked()[: self.keep_best]} | {number}
        doomed = [r["path"] for r in self.records if r["path"] and r["epoch"] not in keep]
        for record in self.records:
            if record["epoch"] not in keep:
                record["path"] = None
        if self.scratch_dir:
            return  # the chief writes the state and deletes the files
        self._write_state()
        for path in doomed:  # after the state: a crash here leaves files the next start removes
            os.remove(os.path.join(self.directory, path))

    def on_train_end(self, logs=None):
        self.finished = True
        if self.final_epoch is None and self.records:
            self.final_epoch = self.records[-1]["epoch"]
        if not self.scratch_dir:
            self._write_state()

    def get_config(self):
        return {
            "directory": self.directory,
            "monitor": self.monitor,
            "mode": self.mode,
            "keep_best": self.keep_best,
            "scratch_dir": self.scratch_dir,
        }


class ResumableEarlyStopping(keras.callbacks.Callback):
    """Stops training when the monitored metric stopped improving, and restores the best weights.

    Keras's `EarlyStopping` keeps its patience counter and best weights in
    memory, so a resumed run would wait `patience` epochs all over again. This
    callback derives both from a `BestKCheckpoint`'s record instead: it stops
    when the best epoch lies `patience` epochs back, then loads the weights of
    the best checkpoint file. Put it after the `BestKCheckpoint` in the
    callbacks list.

    Example:

    ```python
    checkpoint = recipes.BestKCheckpoint("runs/imdb", monitor="val_loss")
    stopping = recipes.ResumableEarlyStopping(checkpoint, patience=3)
    model.fit(..., callbacks=[checkpoint, stopping])
    ```

    Args:
        checkpoint: The `BestKCheckpoint` of the same run; its `monitor` and
            `mode` are used.
        patience: Int >= 1. Epochs without improvement before stopping.
        restore_best_weights: Bool, defaults to `True`. Load the best
            checkpoint's weights into the model when stopping.
    """

    def __init__(self, checkpoint, patience, restore_best_weights=True):
        super().__init__()
        if not isinstance(checkpoint, BestKCheckpoint):
            raise ValueError(
                f"`checkpoint` must be a BestKCheckpoint. Received: checkpoint={type(checkpoint).__name__}"
            )
        patience = check_int("patience", patience)
        self.checkpoint = checkpoint
        self.patience = patience
        self.restore_best_weights = restore_best_weights
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        best = self.checkpoint.best_record
        if best is None or (epoch + 1) - best["epoch"] < self.patience:
            return
        self.model.stop_training = True
        self.stopped_epoch = epoch + 1
        if self.restore_best_weights and best["path"]:
            self.model.load_weights(os.path.join(self.checkpoint.directory, best["path"]))
            self.checkpoint.final_epoch = best["epoch"]

    def get_config(self):
        return {"patience": self.patience, "restore_best_weights": self.restore_best_weights}


class EpochBackup(keras.callbacks.Callback):
    """Backs up weights and optimizer state after every epoch, so that a killed run can resume.

    Each backup is written under a temporary name and renamed into place as
    `epoch-{epoch:06d}.weights.h5`, then older backups are deleted: whenever
    the process dies, the folder holds a complete backup and its epoch number.
    `restore` loads the newest one and returns the epoch to pass to
    `model.fit(initial_epoch=...)`. The folder is removed when training ends.

    Why not `keras.callbacks.BackupAndRestore`: it overwrites its weights file
    in place and writes the epoch to a second file afterwards, so a SIGKILL
    during the write leaves a truncated HDF5 file (restart fails with "truncated
    file") or weights that do not match the recorded epoch; this project's
    crash test hit both.

    Example:

    ```python
    backup = recipes.EpochBackup("runs/imdb/backup")
    initial_epoch = backup.restore(model)
    model.fit(x, y, epochs=10, initial_epoch=initial_epoch, callbacks=[backup])
    ```

    Args:
        directory: Folder for the backups, used by nothing else.
        scratch_dir: Optional folder for the non-chief workers of a
            multi-worker run: they `restore` the chief's backup from
            `directory` but write theirs to `scratch_dir` (deleted at the end
            of training) and leave `directory` alone. Defaults to `None`.
    """

    def __init__(self, directory, scratch_dir=None):
        super().__init__()
        if not directory:
            raise ValueError(f"`directory` must be a folder path. Received: directory={directory!r}")
        self.directory = os.fspath(directory)
        self.scratch_dir = os.fspath(scratch_dir) if scratch_dir else None

    def _backups(self):
        """`(epoch, path)` of the complete backups on disk, newest first."""
        if not os.path.isdir(self.directory):
            return []
        found = [
            (int(match.group(1)), os.path.join(self.directory, name))
            for name in os.listdir(self.directory)
            if (match := _BACKUP_NAME.match(name))
        ]
        return sorted(found, reverse=True)

    def restore(self, model):
        """Loads the newest backup into `model` (weights and optimizer state).

        Returns:
            The number of epochs the backup completed (0 if there is none),
            the `initial_epoch` from which training continues.
        """
        backups = self._backups()
        if not backups:
            return 0
        epoch, path = backups[0]
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # so that its state loads too
        model.load_weights(path)
        return epoch

    def on_epoch_end(self, epoch, logs=None):
        name = f"epoch-{epoch + 1:06d}.weights.h5"
        if self.scratch_dir:
            os.makedirs(self.scratch_dir, exist_ok=True)
            self.model.save_weights(os.path.join(self.scratch_dir, name))
            os.remove(os.path.join(self.scratch_dir, name))
            return
        os.makedirs(self.directory, exist_ok=True)
        partial = os.path.join(self.directory, f"partial-{name}")
        self.model.save_weights(partial)
        os.replace(partial, os.path.join(self.directory, name))
        for _, older in self._backups()[1:]:
            os.remove(older)

    def on_train_end(self, logs=None):
        shutil.rmtree(self.scratch_dir or self.directory, ignore_errors=True)

    def get_config(self):
        return {"directory": self.directory, "scratch_dir": self.scratch_dir}

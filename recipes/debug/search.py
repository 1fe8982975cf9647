"""`search_hyperparameters`: random, grid, Bayesian or Hyperband search over a model factory's arguments.

A thin layer over KerasTuner (O'Malley et al., 2019): its oracles choose the values and keep the search's
state on disk, so an interrupted search continues where it stopped. What this recipe adds is the training
of each trial with the virtual-epoch `recipes.fit` (the same number of examples, steps and checkpoints for
every trial, whatever the data size), a search space written as plain Python (a list, a `(low, high)`
range) and checked against the factory's signature before anything trains, and a results table.
"""

import contextlib
import dataclasses
import functools
import inspect
import json
import math
import os
import shutil
import tempfile
import time
import warnings

import keras

from recipes._common import check_int, check_one_of
from recipes.callbacks import resolve_mode
from recipes.report import Report
from recipes.seed import set_seed
from recipes.training import fit, virtual_steps_per_epoch

TUNERS = ("random", "grid", "bayesian", "hyperband")
SETTINGS_FILE = "recipes_search.json"  # the plan the trials in a directory were trained with
TRIAL_FILE = "recipes_trial.json"  # what one trial trained, next to KerasTuner's trial.json
FIT_SUBDIR = "fit"  # a trial's `recipes.fit` checkpoints and crash backup
_CHOICE_TYPES = (bool, int, float, str)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SearchResult(Report):
    """What `search_hyperparameters` returns (a `recipes.report.Report`).

    Attributes:
        verdict: `"info"` (a search judges no model), or `"warn"` when some trials failed.
        summary: The best trial: its score and hyperparameters, out of how many completed trials.
        advice: How to get the best model (`best_model()`), and where to read why trials failed.
        tuner: `"random"`, `"grid"`, `"bayesian"` or `"hyperband"`.
        objective: The metric ranked, e.g. `"val_loss"`.
        direction: `"min"` or `"max"`.
        table: `pandas.DataFrame`, one row per trial, best first (failed trials last): `trial`, one
            column per hyperparameter, `score` (the objective at the trial's best virtual epoch), the
            other logged metrics at that epoch, `status` (`COMPLETED` or `FAILED`), `epochs` (virtual
            epochs the configuration has trained in all), `steps` (training steps this trial ran,
            counted), `best_epoch`, `seconds` and `error` (the failure's last line). Hyperband adds
            `continued_from`: the trial whose weights this one continued.
        best_hyperparameters: Dict of the best trial's arguments for `model_fn`.
        best_score: The best trial's score.
        best_trial: Its id, as in the table's `trial` column.
        best_checkpoint: Path of the best trial's best checkpoint (a full-model `.keras` file).
        trials_run: Trials trained by this call; 0 when a finished search was loaded from `directory`.
        steps_per_epoch: Steps in every virtual epoch of every trial.
        directory: The search's folder (KerasTuner's project folder, one subfolder per trial).
        model_fn: The factory searched over, used by `best_model`.
    """

    tuner: str
    objective: str
    direction: str
    table: object
    best_hyperparameters: dict
    best_score: float
    best_trial: str
    best_checkpoint: str
    trials_run: int
    steps_per_epoch: int
    directory: str
    model_fn: object = dataclasses.field(repr=False, compare=False)

    def best_model(self):
        """The best trial's model: rebuilt by `model_fn(**best_hyperparameters)`, with its best weights.

        Rebuilt, as KerasTuner does, rather than loaded with `keras.models.load_model`: a `model_fn` using
        custom layers then needs no `custom_objects`.

        Returns:
            A compiled `keras.Model` holding the weights of the best virtual epoch of the best trial,
            optimizer state included.
        """
        model = self.model_fn(**self.best_hyperparameters)
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.best_checkpoint)
        return model

    def markdown_details(self):
        """The trials table, best first."""
        from recipes._markdown import markdown_table

        failed = (self.table.status != "COMPLETED").any()
        return markdown_table(self.table if failed else self.table.drop(columns=["error"]), digits=4)


def search_hyperparameters(
    model_fn,
    space,
    train_data,
    validation_data=None,
    *,
    tuner="random",
    max_trials=10,
    batch_size=32,
    total_examples,
    num_checkpoints=3,
    objective="val_loss",
    directory=None,
    seed=0,
    overwrite=False,
    hyperband_factor=3,
    num_initial_points=None,
    verbose="auto",
):
    """Searches `model_fn`'s arguments with a KerasTuner oracle, training every trial with `recipes.fit`.

    Each trial calls `model_fn(**values)` with one value per entry of `space`, then trains the model with
    `recipes.fit` for `total_examples` examples in `num_checkpoints` virtual epochs of
    `total_examples // (batch_size * num_checkpoints)` steps, each ending with validation and a
    checkpoint. The trial's score is `objective` at its best virtual epoch; its best checkpoint is kept.
    The global seeds are set from `seed` before every trial, so trials start from the same random state
    and differ only by their hyperparameters, and a search repeats exactly.

    Hyperband spends the same budget unevenly: a configuration's full budget is the plan above
    (`num_checkpoints` virtual epochs, KerasTuner's `max_epochs`), and Hyperband's epochs are virtual
    epochs. A trial that Hyperband gives `e` epochs starting from epoch `i` trains `e - i` virtual epochs
    of the same number of steps, so many configurations get a fraction of the examples and the best are
    continued from their last checkpoint (weights and optimizer state) up to all of them. With
    `num_checkpoints < hyperband_factor` Hyperband has a single bracket: random search at the full
    budget. `max_trials` caps its trials too.

    State lives in `directory/<tuner>/`: KerasTuner's oracle (which trials ran, with what values and
    scores) and one folder per trial with its checkpoints. Run the same call again with
    `overwrite=False` (the default) and finished trials are not trained again: an interrupted trial
    resumes from its last virtual epoch, and a larger `max_trials` adds trials. A directory holding a
    search over another space or with another training plan is an error, not a silent mix.

    A trial that raises, or whose objective is NaN in every virtual epoch, is recorded as FAILED with its
    error; three failures in a row stop the search (KerasTuner's `RuntimeError`).

    Example:

    ```python
    import recipes
    from models import text
    from recipes.debug import search_hyperparameters

    reviews = recipes.datasets.load_rotten_tomatoes()
    train, val = recipes.repeatable_split(reviews.movie_name, (0.8, 0.2))
    x, y = reviews.text.to_numpy(), reviews.label.to_numpy()
    result = search_hyperparameters(
        lambda learning_rate, max_tokens: text.bag_of_words_classifier(
            x[train], 2, learning_rate=learning_rate, max_tokens=max_tokens
        ),
        {"learning_rate": (1e-4, 1e-1, "log"), "max_tokens": [5_000, 20_000]},
        (x[train], y[train]),
        (x[val], y[val]),
        tuner="bayesian",
        max_trials=8,
        total_examples=2 * len(train),
        directory="runs/search",
    )
    print(result)  # INFO: best of 8 completed trial(s) (bayesian search, minimising val_loss): ...
    model = result.best_model()
    ```

    Args:
        model_fn: Callable returning a new compiled `keras.Model`, called with one keyword argument per
            entry of `space`. Bind everything else first (`functools.partial`, a `lambda`).
        space: Dict from argument name to its choices: a list (any of them: `Choice`), a scalar (always
            that value: `Fixed`), or a range `(low, high)`, `(low, high, step)` or `(low, high, "log")`,
            of ints (`Int`) or floats (`Float`; grid search tries 10 values of a range without a step).
            Or a `keras_tuner.HyperParameters` for anything else (conditions, `reverse_log`).
        train_data: As for `recipes.fit`: an `(x, y)` tuple of arrays (or of dicts of arrays), or a
            `tf.data.Dataset` of unbatched `(x, y)` examples.
        validation_data: Optional, in the same forms; needed for a `val_` objective. Defaults to `None`.
        tuner: `"random"` (default), `"grid"`, `"bayesian"` (Gaussian process) or `"hyperband"`.
        max_trials: Int >= 1, defaults to 10. Most trials in the whole search (counting earlier runs
            in `directory`); grid and random search also stop when no untried combination is left.
        batch_size: Int >= 1, defaults to 32.
        total_examples: Int. Examples each trial trains on (the full budget, for Hyperband).
        num_checkpoints: Int >= 1, defaults to 3. Virtual epochs per trial (Hyperband's `max_epochs`).
        objective: Logged metric to rank trials by, defaults to `"val_loss"`; accuracy-like metrics are
            maximised, others minimised (as `recipes.fit`'s `monitor`). Or a `keras_tuner.Objective`.
        directory: Folder of the search, defaults to `None`: a new temporary folder (nothing resumes).
        seed: Int >= 0, defaults to 0. Seeds the oracle and every trial.
        overwrite: Bool, defaults to `False`. Delete an earlier search in `directory` and start again.
        hyperband_factor: Int >= 2, defaults to 3. Hyperband's reduction factor: each round keeps
            1 in `factor` configurations and trains them `factor` times longer.
        num_initial_points: Optional int >= 1, Bayesian search only. Random trials before the Gaussian
            process proposes values; defaults to `None`: 3 per hyperparameter (KerasTuner's default).
        verbose: `"auto"` (default, as 1), 0 (silent), 1 (KerasTuner's line per trial) or 2 (also a line per
            virtual epoch).

    Returns:
        A `SearchResult`.
    """
    tuner = _check_tuner(tuner)
    if not callable(model_fn):
        raise ValueError(
            f"`model_fn` must be a callable returning a compiled keras.Model. Received: model_fn={model_fn!r}"
        )
    check_int("max_trials", max_trials)
    check_int("hyperband_factor", hyperband_factor, 2)
    if num_initial_points is not None:
        check_int("num_initial_points", num_initial_points)
    verbose = 1 if check_one_of("verbose", verbose, ("auto", 0, 1, 2)) == "auto" else verbose
    check_int("seed", seed, 0)
    steps_per_epoch = virtual_steps_per_epoch(total_examples, batch_size, num_checkpoints)
    objective_name, direction = _check_objective(objective, validation_data)
    hyperparameters = build_space(space)
    names = [hp.name for hp in hyperparameters.space]
    _check_signature(model_fn, names)
    directory = os.fspath(directory) if directory is not None else tempfile.mkdtemp(prefix="recipes-search-")
    settings = {
        "space": hyperparameters.get_config(),
        "objective": objective_name,
        "direction": direction,
        "batch_size": batch_size,
        "total_examples": total_examples,
        "num_checkpoints": num_checkpoints,
        "seed": seed,
        "hyperband_factor": hyperband_factor if tuner == "hyperband" else None,
    }
    _check_settings(os.path.join(directory, tuner), settings, overwrite)

    plan = _Plan(
        model_fn,
        names,
        train_data,
        validation_data,
        batch_size,
        steps_per_epoch,
        num_checkpoints,
        objective_name,
        direction,
        seed,
        verbose,
    )
    oracle = _oracle(
        tuner,
        objective_name,
        direction,
        max_trials,
        num_checkpoints,
        hyperband_factor,
        num_initial_points,
        seed,
        hyperparameters,
    )
    with contextlib.ExitStack() as stack:
        if verbose == 0:  # KerasTuner and a reloaded `recipes.fit` print whatever their verbosity
            stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
        search = _tuner_class()(plan, oracle=oracle, directory=directory, project_name=tuner, overwrite=overwrite)
        if tuner == "bayesian":  # the Gaussian process's fit on a few points warns; nothing a user can act on
            from sklearn.exceptions import ConvergenceWarning

            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore", ConvergenceWarning)
        _write_settings(search.project_dir, settings)
        search.search(verbose=min(verbose, 1))
    return _result(search, tuner, plan)


def build_space(space):
    """The `keras_tuner.HyperParameters` for a `space` given as a dict (see `search_hyperparameters`).

    Example:

    >>> from recipes.debug.search import build_space
    >>> hp = build_space({"learning_rate": (1e-4, 1e-1, "log"), "units": [16, 64], "layers": (1, 3)})
    >>> [type(p).__name__ for p in hp.space]
    ['Float', 'Choice', 'Int']

    Args:
        space: Dict from argument name to a list, a scalar or a range tuple; or a
            `keras_tuner.HyperParameters`, returned as it is.

    Returns:
        A `keras_tuner.HyperParameters`.
    """
    import keras_tuner

    if isinstance(space, keras_tuner.HyperParameters):
        if not space.space:
            raise ValueError("`space` is a HyperParameters object with no hyperparameter declared")
        return space
    if not isinstance(space, dict) or not space:
        raise ValueError(
            "`space` must be a non-empty dict from argument name to choices (a list, a (low, high) range "
            f"or a scalar), or a keras_tuner.HyperParameters. Received: {space!r}"
        )
    hp = keras_tuner.HyperParameters()
    for name, choices in space.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"`space` keys must be argument names of `model_fn`. Received: {name!r}")
        if isinstance(choices, list):
            hp.Choice(name, _choice_values(name, choices))
        elif isinstance(choices, tuple):
            _add_range(hp, name, choices)
        elif isinstance(choices, _CHOICE_TYPES):
            hp.Fixed(name, choices)
        else:
            raise ValueError(
                f"`space[{name!r}]` must be a list of choices, a (low, high), (low, high, step) or "
                f"(low, high, 'log') tuple, or a single bool, int, float or str. Received: {choices!r}"
            )
    return hp


# -- checks ---------------------------------------------------------------------------------------------


def _check_tuner(tuner):
    return check_one_of("tuner", tuner, TUNERS)


def _check_objective(objective, validation_data):
    if isinstance(objective, str) and objective:
        name, direction = objective, resolve_mode(objective, "auto")
    elif _is_objective(objective):
        name, direction = objective.name, objective.direction
    else:
        raise ValueError(
            "`objective` must be a logged metric name such as 'val_loss' or 'val_accuracy', or a "
            f"keras_tuner.Objective. Received: objective={objective!r}"
        )
    if name.startswith("val_") and validation_data is None:
        raise ValueError(
            f"`objective={name!r}` is a validation metric, but no `validation_data` was given. Pass "
            "validation_data (tuning on the training loss picks the model that memorises best)."
        )
    return name, direction


def _is_objective(objective):
    import keras_tuner

    return isinstance(objective, keras_tuner.Objective) and objective.direction in ("min", "max")


def _choice_values(name, choices):
    if not choices:
        raise ValueError(f"`space[{name!r}]` is an empty list; give at least one choice")
    kinds = {bool if isinstance(v, bool) else type(v) for v in choices}
    if not kinds <= set(_CHOICE_TYPES):
        raise ValueError(
            f"`space[{name!r}]` choices must be bools, ints, floats or strs (KerasTuner records them in "
            f"JSON); map richer values inside model_fn. Received: {choices!r}"
        )
    if kinds == {int, float}:
        return [float(v) for v in choices]
    if len(kinds) > 1:
        raise ValueError(f"`space[{name!r}]` mixes types {sorted(k.__name__ for k in kinds)}: {choices!r}")
    return list(choices)


def _add_range(hp, name, bounds):
    numbers = (int, float)
    shape_ok = len(bounds) in (2, 3) and all(
        isinstance(b, numbers) and not isinstance(b, bool) and math.isfinite(b) for b in bounds[:2]
    )
    third = bounds[2] if len(bounds) == 3 else None
    is_step = isinstance(third, numbers) and not isinstance(third, bool) and third > 0
    third_ok = third is None or third == "log" or is_step
    if not (shape_ok and third_ok):
        raise ValueError(
            f"`space[{name!r}]` must be a range (low, high), (low, high, step) or (low, high, 'log') of "
            f"finite numbers with step > 0; for choices pass a list. Received: {bounds!r}"
        )
    low, high = bounds[:2]
    if not low < high:
        raise ValueError(f"`space[{name!r}]` must have low < high. Received: {bounds!r}")
    sampling = "log" if third == "log" else "linear"
    step = None if third in (None, "log") else third
    if sampling == "log" and low <= 0:
        raise ValueError(f"`space[{name!r}]` samples on a log scale, so low must be > 0. Received: {bounds!r}")
    if all(isinstance(b, int) for b in (low, high)) and (step is None or isinstance(step, int)):
        hp.Int(name, low, high, step=step or 1, sampling=sampling)
    else:
        hp.Float(name, float(low), float(high), step=step, sampling=sampling)


def _check_signature(model_fn, names):
    try:
        parameters = inspect.signature(model_fn).parameters
    except (TypeError, ValueError):
        return  # a builtin or C callable: its own error will say what it needs
    kinds = inspect.Parameter
    accepted = [p.name for p in parameters.values() if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)]
    takes_any = any(p.kind == kinds.VAR_KEYWORD for p in parameters.values())
    unknown = [name for name in names if name not in accepted]
    if unknown and not takes_any:
        raise ValueError(
            f"`space` names {unknown}, which `model_fn` does not take: it takes {accepted}. Rename the "
            "entries, or wrap the factory in a lambda that takes them."
        )
    required = [
        p.name
        for p in parameters.values()
        if p.default is kinds.empty and p.kind not in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD) and p.name not in names
    ]
    if required:
        raise ValueError(
            f"`model_fn` requires {required}, which `space` does not give. Bind them first, e.g. "
            "functools.partial(factory, train_texts, 2), or add them to `space`."
        )


def _check_settings(project_dir, settings, overwrite):
    """A directory's trials are comparable only under one space and one training plan."""
    path = os.path.join(project_dir, SETTINGS_FILE)
    if overwrite or not os.path.exists(path):
        return
    with open(path) as f:
        recorded = json.load(f)
    differ = sorted(key for key in settings if recorded.get(key) != json.loads(json.dumps(settings[key])))
    if differ:
        shown = ", ".join(f"{key}={recorded.get(key)!r}" for key in differ if key != "space")
        raise ValueError(
            f"{project_dir} holds a search with other {', '.join(differ)}"
            + (f" (recorded: {shown})" if shown else "")
            + ". Its trials would not be comparable: pass overwrite=True to start again, or another directory."
        )


def _write_settings(project_dir, settings):
    with open(os.path.join(project_dir, SETTINGS_FILE), "w") as f:
        json.dump(settings, f, indent=1)


# -- the tuner ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Plan:
    model_fn: object
    names: list
    train_data: object
    validation_data: object
    batch_size: int
    steps_per_epoch: int
    num_checkpoints: int
    objective: str
    direction: str
    seed: int
    verbose: int


def _oracle(tuner, objective, direction, max_trials, num_checkpoints, factor, initial_points, seed, hyperparameters):
    import keras_tuner

    common = dict(
        objective=keras_tuner.Objective(objective, direction),
        seed=seed,
        hyperparameters=hyperparameters,
        tune_new_entries=False,
        allow_new_entries=False,
    )
    if tuner == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    if tuner == "grid":
        return keras_tuner.oracles.GridSearchOracle(max_trials=max_trials, **common)
    if tuner == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(
            max_trials=max_trials, num_initial_points=initial_points, **common
        )
    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=num_checkpoints, factor=factor, **common)
    oracle.max_trials = max_trials  # Hyperband schedules its own trials; this caps them as for the others
    return oracle


class _CountSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


@functools.cache
def _tuner_class():
    """Defined on first use, so that importing this module does not import KerasTuner."""
    import keras_tuner

    class VirtualEpochTuner(keras_tuner.Tuner):
        """Runs each trial with `recipes.fit`; no HyperModel, the space is the oracle's."""

        def __init__(self, plan, **kwargs):
            self.plan = plan
            self.ran_now = []  # ids of the trials this process ran
            super().__init__(oracle=kwargs.pop("oracle"), hypermodel=None, **kwargs)

        def run_trial(self, trial, *args, **kwargs):
            plan = self.plan
            values = trial.hyperparameters.values
            epochs = values.get("tuner/epochs")
            initial_epoch = values.get("tuner/initial_epoch", 0)
            parent = values.get("tuner/trial_id")
            trial_dir = self.get_trial_dir(trial.trial_id)
            self.ran_now.append(trial.trial_id)
            fit_dir = os.path.join(trial_dir, FIT_SUBDIR)
            record = {"hyperparameters": dict(values)}
            recorded = (_read_trial(trial_dir) or {}).get("hyperparameters")
            if recorded != json.loads(json.dumps(record["hyperparameters"])):
                # An interrupted run resumes its checkpoints only if they belong to these values (a search
                # stopped during its first trial restarts its oracle, and its trial ids, from scratch).
                shutil.rmtree(fit_dir, ignore_errors=True)
                _write_trial(trial_dir, record)
            started = time.monotonic()
            # As KerasTuner does, but without its full `gc.collect()`, which takes about a second per trial
            # in a process holding TensorFlow; the previous trial's model is garbage collected as usual.
            keras.backend.clear_session(free_memory=False)
            set_seed(plan.seed)
            arguments = _arguments(trial.hyperparameters, plan.names)
            model = plan.model_fn(**arguments)
            if not isinstance(model, keras.Model):
                raise ValueError(f"`model_fn` must return a keras.Model. Received: {type(model).__name__}")
            if parent is not None:  # Hyperband continues a trial of the previous round
                last = _read_trial(self.get_trial_dir(parent))["last_checkpoint"]
                if model.optimizer is not None and not model.optimizer.built:
                    model.optimizer.build(model.trainable_variables)
                model.load_weights(last)
            num_epochs = epochs - initial_epoch if epochs is not None else plan.num_checkpoints
            counter = _CountSteps()
            result = fit(
                model,
                plan.train_data,
                validation_data=plan.validation_data,
                batch_size=plan.batch_size,
                total_examples=plan.steps_per_epoch * plan.batch_size * num_epochs,
                num_checkpoints=num_epochs,
                directory=fit_dir,
                keep_best=1,
                monitor=plan.objective,
                mode=plan.direction,
                callbacks=[counter],
                verbose=2 if plan.verbose == 2 else 0,
            )
            values_seen = result.history.get(plan.objective, [])
            finite = [(v, i) for i, v in enumerate(values_seen) if math.isfinite(v)]
            if not finite or not result.best_checkpoints:
                raise keras_tuner.errors.FailedTrialError(
                    f"{plan.objective} was not finite in any virtual epoch ({values_seen}): the training diverged"
                )
            sign = 1 if plan.direction == "min" else -1
            best_value, best_index = min(finite, key=lambda item: (sign * item[0], item[1]))
            info = {
                **record,
                "steps": counter.steps,
                "steps_per_epoch": result.steps_per_epoch,
                "epochs": epochs if epochs is not None else result.epochs,
                "best_epoch": best_index + 1 + initial_epoch,
                "seconds": time.monotonic() - started,
                "best_checkpoint": result.best_checkpoints[0],
                "last_checkpoint": result.last_checkpoint,
                "continued_from": parent,
            }
            previous = _read_trial(trial_dir)
            if counter.steps == 0 and "steps" in previous:  # a finished run was loaded, not trained
                info["steps"], info["seconds"] = previous["steps"], previous["seconds"]
            _write_trial(trial_dir, info)
            metrics = {name: history[best_index] for name, history in result.history.items()}
            metrics[plan.objective] = best_value
            return {name: float(value) for name, value in metrics.items() if math.isfinite(value)}

        def load_model(self, trial):
            model = self.plan.model_fn(**_arguments(trial.hyperparameters, self.plan.names))
            model.load_weights(_read_trial(self.get_trial_dir(trial.trial_id))["best_checkpoint"])
            return model

    return VirtualEpochTuner


def _arguments(hyperparameters, names):
    """`model_fn`'s keyword arguments: the active hyperparameters, without Hyperband's bookkeeping."""
    return {
        name: hyperparameters.values[name]
        for name in names
        if name in hyperparameters.values and hyperparameters.is_active(name)
    }


def _read_trial(trial_dir):
    path = os.path.join(trial_dir, TRIAL_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _write_trial(trial_dir, info):
    tmp = os.path.join(trial_dir, TRIAL_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(info, f, indent=1)
    os.replace(tmp, os.path.join(trial_dir, TRIAL_FILE))


# -- the results ----------------------------------------------------------------------------------------


def _error_line(message):
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _result(search, tuner, plan):
    import pandas as pd

    oracle = search.oracle
    rows = []
    for trial_id in oracle.start_order:
        trial = oracle.trials[trial_id]
        trial_dir = search.get_trial_dir(trial_id)
        info = _read_trial(trial_dir) or {}
        status = str(trial.status)
        row = {"trial": trial_id, **_arguments(trial.hyperparameters, plan.names)}
        row["score"] = trial.score if status == "COMPLETED" else math.nan
        for name in sorted(trial.metrics.metrics):
            if name != plan.objective:
                row[name] = trial.metrics.get_last_value(name)
        row["status"] = status
        row["epochs"] = info.get("epochs", trial.hyperparameters.values.get("tuner/epochs"))
        row["steps"] = info.get("steps")
        row["best_epoch"] = info.get("best_epoch")
        row["seconds"] = info.get("seconds")
        if tuner == "hyperband":
            row["continued_from"] = trial.hyperparameters.values.get("tuner/trial_id", "")
        row["error"] = _error_line(trial.message) if status != "COMPLETED" else ""
        row["_checkpoint"] = info.get("best_checkpoint")
        rows.append(row)
    table = pd.DataFrame(rows)
    completed = table[table.status == "COMPLETED"]
    if completed.empty:
        first = next((r["error"] for r in rows if r["error"]), "no trial ran")
        raise RuntimeError(
            f"none of the {len(rows)} trial(s) in {search.project_dir} completed; the first error: {first}"
        )
    sign = 1 if plan.direction == "min" else -1
    table = table.assign(_rank=sign * table.score, _done=table.status != "COMPLETED")
    table = table.sort_values(["_done", "_rank", "trial"], na_position="last", kind="stable")
    best = table.iloc[0]
    checkpoint = best["_checkpoint"]
    table = table.drop(columns=["_rank", "_done", "_checkpoint"]).reset_index(drop=True)
    best_trial = oracle.trials[best["trial"]]
    best_hyperparameters = _arguments(best_trial.hyperparameters, plan.names)
    trials_run = len(set(search.ran_now))
    failed = int((table.status != "COMPLETED").sum())
    values = ", ".join(f"{name}={_shown(value)}" for name, value in best_hyperparameters.items())
    summary = (
        f"best of {len(table) - failed} completed trial(s) ({tuner} search, {plan.direction}imising "
        f"{plan.objective}): {plan.objective} {float(best['score']):.4f} with {values} (trial {best['trial']})"
    )
    if trials_run == 0:
        summary += f"; nothing trained: the search in {search.project_dir} had finished"
    advice = [f"rebuild the best model with its best weights: result.best_model() (checkpoint {checkpoint})"]
    if failed:
        advice.append(f"{failed} trial(s) failed: read the `error` column of result.table")
    return SearchResult(
        verdict="warn" if failed else "info",
        summary=summary,
        advice=advice,
        tuner=tuner,
        objective=plan.objective,
        direction=plan.direction,
        table=table,
        best_hyperparameters=best_hyperparameters,
        best_score=float(best["score"]),
        best_trial=str(best["trial"]),
        best_checkpoint=checkpoint,
        trials_run=trials_run,
        steps_per_epoch=plan.steps_per_epoch,
        directory=search.project_dir,
        model_fn=plan.model_fn,
    )


def _shown(value):
    return f"{value:.4g}" if isinstance(value, float) else repr(value)

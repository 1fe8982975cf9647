import csv
import json
import math
import os

import keras
import numpy as np
import pytest
from _recipes_command import recipes_command
from conftest import blobs

from recipes.debug import search_hyperparameters

# 2 steps per virtual epoch: 600 // (150 * 2), half the 300 training rows.
PLAN = dict(batch_size=150, total_examples=600, num_checkpoints=2)
GRID = {"learning_rate": [0.1, 0.0], "units": [4, 16]}


class BlobModels:
    """A tiny classifier factory that counts its calls. Eager: a trial of ten steps then takes a second,
    where tracing a graph per trial would take several on shared cores."""

    def __init__(self, fail_units=None, interrupt_on_call=None):
        self.calls = 0
        self.fail_units = fail_units
        self.interrupt_on_call = interrupt_on_call

    def __call__(self, learning_rate=0.05, units=16):
        self.calls += 1
        if self.calls == self.interrupt_on_call:
            raise KeyboardInterrupt
        if units == self.fail_units:
            raise ValueError(f"no model with {units} units")
        inputs = keras.Input(shape=(8,), name="features")
        hidden = keras.layers.Dense(units, activation="relu")(inputs)
        outputs = keras.layers.Dense(3, activation="softmax")(hidden)
        model = keras.Model(inputs, outputs)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            run_eagerly=True,
        )
        return model


@pytest.fixture(scope="module")
def data():
    return blobs(300), blobs(100, seed=1)


@pytest.fixture(scope="module")
def grid(data, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("grid"))
    factory = BlobModels()
    result = search_hyperparameters(
        factory, GRID, *data, tuner="grid", max_trials=10, directory=directory, verbose=0, **PLAN
    )
    return result, factory, directory


def test_grid_tries_every_combination_and_ranks_best_first(grid):
    result, factory, _ = grid
    table = result.table
    assert len(table) == 4 and factory.calls == 4 and result.trials_run == 4
    assert set(zip(table.learning_rate, table.units)) == {(0.1, 4), (0.1, 16), (0.0, 4), (0.0, 16)}
    assert (table.status == "COMPLETED").all()
    assert list(table.score) == sorted(table.score)
    assert result.best_score == table.score.min() == table.score.iloc[0]
    assert result.best_hyperparameters == {"learning_rate": table.learning_rate[0], "units": table.units[0]}
    assert {"val_accuracy", "accuracy", "loss", "steps", "best_epoch"} <= set(table.columns)
    assert result.verdict == "info" and result.ok
    assert str(result).startswith("INFO: best of 4 completed trial(s) (grid search, minimising val_loss): val_loss")
    assert result.advice[0].startswith("rebuild the best model with its best weights: result.best_model()")
    data = json.loads(json.dumps(result.to_dict()))
    assert len(data["table"]) == 4 and data["table"][0]["trial"] == result.best_trial and "model_fn" not in data


def test_a_learning_rate_of_zero_loses(grid):
    table = grid[0].table.set_index(["learning_rate", "units"])
    for units in (4, 16):  # every trial starts from the same seed: the same initial weights for the same units
        assert table.score[0.1, units] < table.score[0.0, units] - 0.1
    assert grid[0].best_hyperparameters["learning_rate"] == 0.1


def test_every_trial_follows_the_virtual_epoch_plan(grid):
    result = grid[0]
    assert result.steps_per_epoch == 2
    assert list(result.table.epochs) == [2] * 4
    assert list(result.table.steps) == [4] * 4  # counted batch by batch


def test_best_model_scores_the_best_score(grid, data):
    result = grid[0]
    model = result.best_model()
    evaluated = model.evaluate(*data[1], batch_size=150, verbose=0, return_dict=True)
    assert evaluated["loss"] == pytest.approx(result.best_score, rel=1e-4)
    assert evaluated["accuracy"] == pytest.approx(result.table.val_accuracy[0], abs=1e-6)


def test_rerun_resumes_without_training(grid, data):
    result, _, directory = grid
    factory = BlobModels()
    again = search_hyperparameters(
        factory, GRID, *data, tuner="grid", max_trials=10, directory=directory, verbose=0, **PLAN
    )
    assert factory.calls == 0 and again.trials_run == 0
    assert again.table.equals(result.table)
    assert "; nothing trained: the search in" in again.summary
    with pytest.raises(ValueError, match=r"holds a search with other space.*overwrite=True"):
        search_hyperparameters(
            factory, {"learning_rate": [0.1, 0.2]}, *data, tuner="grid", directory=directory, verbose=0, **PLAN
        )
    with pytest.raises(ValueError, match=r"other total_examples \(recorded: total_examples=600\)"):
        search_hyperparameters(
            factory, GRID, *data, tuner="grid", directory=directory, verbose=0, **{**PLAN, "total_examples": 900}
        )


def test_random_search_resumes_an_interrupted_search_and_adds_trials(data, tmp_path):
    space = {"learning_rate": (1e-3, 1e-1, "log"), "units": (4, 16, 4)}
    arguments = dict(directory=tmp_path, seed=3, verbose=0, **PLAN)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C while the second trial builds its model
        search_hyperparameters(BlobModels(interrupt_on_call=2), space, *data, max_trials=2, **arguments)
    factory = BlobModels()
    resumed = search_hyperparameters(factory, space, *data, max_trials=2, **arguments)
    assert factory.calls == 1 and resumed.trials_run == 1 and len(resumed.table) == 2
    more = search_hyperparameters(factory, space, *data, max_trials=3, **arguments)
    assert factory.calls == 2 and more.trials_run == 1
    assert sorted(more.table.trial) == ["0", "1", "2"] and (more.table.status == "COMPLETED").all()
    assert ((1e-3 <= more.table.learning_rate) & (more.table.learning_rate <= 1e-1)).all()
    assert set(more.table.units) <= {4, 8, 12, 16}
    assert list(more.table.steps) == [4, 4, 4]


def test_bayesian_search_maximises_an_accuracy_objective(data, tmp_path):
    result = search_hyperparameters(
        BlobModels(),
        {"learning_rate": (1e-3, 0.3, "log"), "units": [4, 16]},
        *data,
        tuner="bayesian",
        max_trials=3,
        num_initial_points=2,  # the third trial's values come from the Gaussian process
        objective="val_accuracy",
        directory=tmp_path,
        verbose=0,
        **PLAN,
    )
    assert result.direction == "max" and len(result.table) == 3
    assert list(result.table.score) == sorted(result.table.score, reverse=True)
    assert result.best_score == result.table.score.max() and "val_loss" in result.table


def test_hyperband_budget_is_virtual_epochs(data, tmp_path):
    result = search_hyperparameters(
        BlobModels(),
        GRID,
        *data,
        tuner="hyperband",
        max_trials=4,
        directory=tmp_path,
        verbose=0,
        batch_size=150,
        total_examples=900,
        num_checkpoints=3,
    )
    assert result.steps_per_epoch == 2  # 900 // (150 * 3)
    table = result.table.set_index("trial")
    # Bracket 1: three configurations get one virtual epoch each, the best of them is continued to all three.
    first_round = table.loc[["0", "1", "2"]]
    assert list(first_round.epochs) == [1, 1, 1] and list(first_round.steps) == [2, 2, 2]
    assert list(first_round.continued_from) == ["", "", ""]
    continued = table.loc["3"]
    parent = first_round.score.idxmin()
    assert continued.continued_from == parent
    assert continued.epochs == 3 and continued.steps == 4  # virtual epochs 2 and 3
    assert (continued.learning_rate, continued.units) == tuple(table.loc[parent, ["learning_rate", "units"]])
    assert continued.score < table.loc[parent, "score"]  # it went on from the parent's weights
    assert continued.best_epoch == 3  # it still improved in its last virtual epoch


def test_failed_trials_are_reported_and_ranked_last(data, tmp_path):
    result = search_hyperparameters(
        BlobModels(fail_units=3), {"units": [3, 4]}, *data, tuner="grid", directory=tmp_path / "one", verbose=0, **PLAN
    )
    assert list(result.table.status) == ["COMPLETED", "FAILED"]
    assert result.table.error[1] == "ValueError: no model with 3 units"
    assert math.isnan(result.table.score[1]) and result.best_hyperparameters == {"units": 4}
    assert result.verdict == "warn" and result.ok
    assert result.advice[1] == "1 trial(s) failed: read the `error` column of result.table"
    with pytest.raises(RuntimeError, match="none of the 1 trial.*ValueError: no model with 3 units"):
        search_hyperparameters(
            BlobModels(fail_units=3), {"units": [3]}, *data, tuner="grid", directory=tmp_path / "two", verbose=0, **PLAN
        )


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"tuner": "sgd"},
            r"`tuner` must be one of \('random', 'grid', 'bayesian', 'hyperband'\)\. Received: tuner='sgd'",
        ),
        (
            {"space": {"units": [4], "dropout": [0.1]}},
            r"names \['dropout'\], which `model_fn` does not take: it takes \['learning_rate', 'units'\]",
        ),
        (
            {"model_fn": lambda texts, learning_rate, units: None},
            r"`model_fn` requires \['texts'\], which `space` does not give",
        ),
        ({"space": {"units": []}}, r"`space\['units'\]` is an empty list"),
        ({"space": {"units": [4, "wide"]}}, r"mixes types \['int', 'str'\]"),
        ({"space": {"units": (4, "many")}}, r"must be a range \(low, high\).*Received: \(4, 'many'\)"),
        ({"space": {"units": (16, 4)}}, r"must have low < high. Received: \(16, 4\)"),
        ({"space": {"learning_rate": (0.0, 0.1, "log")}}, r"log scale, so low must be > 0"),
        ({"space": {"units": {4, 16}}}, r"must be a list of choices.*Received: \{"),
        ({"space": {}}, r"`space` must be a non-empty dict"),
        ({"validation_data": None}, r"`objective='val_loss'` is a validation metric, but no `validation_data`"),
        ({"max_trials": 0}, r"`max_trials` must be an int >= 1. Received: max_trials=0"),
        ({"total_examples": 10}, r"`total_examples` must be at least `batch_size \* num_checkpoints`"),
    ],
)
def test_bad_arguments_raise_clear_errors(changes, message, data, tmp_path):
    arguments = dict(
        model_fn=BlobModels(),
        space=GRID,
        train_data=data[0],
        validation_data=data[1],
        directory=tmp_path,
        verbose=0,
        **PLAN,
    )
    arguments.update(changes)
    with pytest.raises(ValueError, match=message):
        search_hyperparameters(**arguments)
    assert not os.listdir(tmp_path)  # refused before anything was written


@pytest.mark.slow
def test_the_real_command_searches_the_text_baseline(tmp_path):
    output = tmp_path / "search.csv"
    result = recipes_command(
        "search",
        "text",
        "--max-trials",
        "2",
        "--train-fraction",
        "0.1",
        "--total-examples",
        "384",
        "--num-checkpoints",
        "1",
        "--batch-size",
        "128",
        "--directory",
        tmp_path / "search",
        "--output",
        output,
        "--quiet",
        "--json",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["verdict"] == "info" and report["ok"] is True
    assert report["summary"].startswith("best of 2 completed trial(s) (random search, minimising val_loss): val_loss")
    with open(output) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {row["status"] for row in rows} == {"COMPLETED"}
    assert {"learning_rate", "max_tokens", "score", "val_accuracy"} <= set(rows[0])
    scores = [float(row["score"]) for row in rows]
    assert scores == sorted(scores) and all(np.isfinite(scores))
    assert {int(row["steps"]) for row in rows} == {3}  # 384 // (128 * 1)
    assert [row["score"] for row in report["table"]] == pytest.approx(scores)
    bad = recipes_command("search", "text", "--train-fraction", "1.5", "--directory", tmp_path / "x", "--json")
    assert bad.returncode == 2 and bad.stdout == "" and "Traceback" not in bad.stderr
    assert "recipes search: error: --train-fraction must be in (0, 1]. Received: 1.5" in bad.stderr

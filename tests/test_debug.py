"""recipes.debug on real data: the overfit check's bug zoo, and diagnose on real and synthetic curves."""

import functools
import importlib
import inspect
import json
import math
import re

import keras
import numpy as np
import pandas as pd
import pytest

import recipes
import recipes.debug
from models import tabular, text, vision
from recipes.debug import diagnose, overfit_check
from recipes.debug.fitting import FINDINGS, REMEDIES, VERDICT_OF

DIGITS = dict(num_classes=10, per_class=30, num_checkpoints=30)  # 300 rows: about a second a check


@pytest.fixture(scope="module")
def digits():
    return recipes.datasets.load_digits()


@pytest.fixture(scope="module")
def reviews():
    frame = recipes.datasets.load_rotten_tomatoes()
    return frame.text.to_numpy(), frame.label.to_numpy()


@pytest.fixture(scope="module")
def weather():
    return recipes.datasets.load_seattle_weather()


# -- models, correct and planted with one bug each -----------------------------------------------------


def linear_digits(learning_rate=1e-2):
    return vision.linear_classifier((8, 8), 10, learning_rate=learning_rate)


def digits_mlp(scaling):
    """Flatten, scaling, Dense(64, relu), softmax, trained with SGD(0.1): a step size for inputs near [0, 1]."""

    def build(images):
        image = keras.Input((8, 8), dtype="uint8", name="image")
        x = keras.layers.Flatten()(image)
        if scaling == "rescaling":
            x = keras.layers.Rescaling(1 / 255)(x)
        elif scaling in ("normalization", "normalization never adapted"):
            normalization = keras.layers.Normalization()
            if scaling == "normalization":
                normalization.adapt(images.reshape(len(images), -1).astype("float32"))
            x = normalization(x)
        x = keras.layers.Dense(64, activation="relu")(x)
        model = keras.Model(image, keras.layers.Dense(10, activation="softmax")(x))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        return model

    return build


def categorical_loss_on_class_ids():
    model = linear_digits()
    model.compile(optimizer=model.optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def frozen_linear_digits():
    model = linear_digits()
    for layer in model.layers:
        layer.trainable = False
    model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])
    return model


def unadapted_text_model():
    """An embedding-bag text classifier whose TextVectorization was never adapted."""
    texts = keras.Input(shape=(), dtype="string", name="text")
    tokens = keras.layers.TextVectorization(max_tokens=5000, output_sequence_length=32, name="tokens")(texts)
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(5000, 16)(tokens))
    model = keras.Model(texts, keras.layers.Dense(2, activation="softmax")(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def shuffled(labels):
    return np.random.default_rng(1).permutation(labels)


# -- overfit_check: correct baselines pass -------------------------------------------------------------

BASELINES = {
    "linear classifier": linear_digits,
    "MLP with Rescaling": digits_mlp("rescaling"),
    "MLP with adapted Normalization": digits_mlp("normalization"),
}


@pytest.mark.parametrize("name", BASELINES)
def test_overfit_check_passes_correct_digit_models(name, digits):
    model_fn = BASELINES[name]
    report = overfit_check(model_fn, digits, **DIGITS)
    assert report.verdict == "pass" and report.ok, report
    assert report.reached >= 0.9 and report.causes == []
    assert report.summary.startswith("accuracy") and str(report).startswith("PASS: accuracy")
    assert report.advice == (
        "train on all the training data with validation data and read the curves with recipes.debug.diagnose(history)",
    )
    assert report.num_examples == 300 and report.classes == list(range(10))
    assert report.steps_per_checkpoint == 10  # one pass over the sample: 300 rows in batches of 32
    assert report.label_agreement > 0.9  # the nearest neighbour of a digit is the same digit
    assert len(report.curve["accuracy"]) == len(report.curve["loss"]) == report.checkpoints < 30  # stops at the target


def test_overfit_check_passes_bag_of_words_adapted_on_the_sample(reviews):
    report = overfit_check(lambda texts: text.bag_of_words_classifier(texts, 2), reviews, num_classes=2, per_class=50)
    assert report.verdict == "pass", report
    assert report.num_examples == 100 and report.label_agreement is None  # text: no neighbour check


# -- overfit_check: the bug zoo ------------------------------------------------------------------------

# name: (model_fn, how the labels are spoiled or None, the cause the check must name)
BUGS = {
    "shuffled labels": (linear_digits, shuffled, r"labels look unrelated to the inputs.*chance is 10%"),
    "class ids with categorical_crossentropy": (
        categorical_loss_on_class_ids,
        None,
        r"integer class ids but the loss is categorical_crossentropy",
    ),
    "one-hot labels with sparse_categorical_crossentropy": (
        linear_digits,
        lambda labels: keras.utils.to_categorical(labels, 10),
        r"one-hot rows \(10 columns\) but the loss is sparse_categorical_crossentropy",
    ),
    "learning rate 0": (functools.partial(linear_digits, 0.0), None, r"learning rate is 0 \(Adam"),
    "frozen layers": (frozen_linear_digits, None, r"no trainable weights: frozen layers .*'probabilities'"),
    "Normalization never adapted": (
        digits_mlp("normalization never adapted"),
        None,
        r"Normalization layer 'normalization\w*' was never adapted \(mean 0 and variance 1",
    ),
    "inputs not scaled": (
        digits_mlp("none"),
        None,
        r"input 'image' \(uint8, values 0 to 255\) reaches the model unscaled",
    ),
}


@pytest.mark.filterwarnings("ignore:The model does not have any trainable weights")
@pytest.mark.parametrize("bug", BUGS)
def test_overfit_check_fails_each_planted_bug_and_names_it(bug, digits):
    model_fn, spoil, cause = BUGS[bug]
    images, labels = digits
    report = overfit_check(model_fn, (images, spoil(labels) if spoil else labels), **DIGITS)
    assert report.verdict == "fail" and not report.ok, report
    assert str(report).startswith("FAIL: ")
    assert any(re.search(cause, found) for found in report.causes), report.causes
    assert re.search(cause, report.advice[0])  # the advice names the causes first, then the rest of the checklist
    assert report.advice[-1].startswith("check that ")
    print(f"\n[{bug}] {report}")


def test_overfit_check_says_why_keras_refused_the_labels(digits):
    report = overfit_check(categorical_loss_on_class_ids, digits, **DIGITS)
    assert report.checkpoints == 0 and math.isnan(report.reached)
    assert report.error.startswith("ValueError: Arguments `target` and `output` must have the same rank")


def test_overfit_check_stops_after_an_epoch_that_changed_no_weight(digits):
    report = overfit_check(functools.partial(linear_digits, 0.0), digits, **DIGITS)
    assert report.checkpoints == 1


def test_overfit_check_names_unscaled_inputs_by_their_blow_up(digits):
    report = overfit_check(digits_mlp("none"), digits, **DIGITS)
    assert report.reached <= 0.2  # chance: the network died
    assert any("far above ln(10) = 2.30" in cause for cause in report.causes)
    assert any(re.search(r"predicts class \d for all 300 rows", cause) for cause in report.causes)
    # Found causes lead; the checklist goes on with the other items only.
    found = len(report.causes)
    assert report.advice[0].startswith("input 'image'") and report.advice[:found] == tuple(report.causes)
    rest = report.advice[found:]
    assert rest and all(item.startswith("check that ") for item in rest)
    assert not any("inputs are scaled" in item for item in rest)  # found, so not listed again


def test_overfit_check_names_a_text_vectorizer_never_adapted(reviews):
    report = overfit_check(unadapted_text_model, reviews, num_classes=2, per_class=30, num_checkpoints=5)
    assert report.verdict == "fail"
    assert report.causes[0].startswith("TextVectorization layer 'tokens' was never adapted (its vocabulary is empty")
    assert report.error == "FailedPreconditionError: Table not initialized."


# -- overfit_check: other data and the report ----------------------------------------------------------


@pytest.mark.slow
def test_overfit_check_regression_passes_on_r2(weather):
    x = {name: weather[name].to_numpy("float32") for name in ("precipitation", "temp_min", "wind")}
    x["date"] = weather.date.to_numpy()
    y = weather.temp_max.to_numpy("float32")

    def model_fn(x_sample, y_sample):  # the FeatureSpace adapts on the sampled rows
        frame = pd.DataFrame({**x_sample, "temp_max": y_sample})
        return tabular.regressor(frame, "temp_max", date_columns=["date"], hidden_units=(64, 64))

    report = overfit_check(model_fn, (x, y), per_class=30, num_checkpoints=30, task="regression")
    assert report.verdict == "pass", report
    assert report.metric == "r2" and report.classes is None and report.num_examples == 300
    assert report.causes == []  # the FeatureSpace's adapted Normalization layers are not "frozen"


@pytest.mark.slow
def test_overfit_check_sample_is_repeatable_and_seeded(digits):
    images, labels = digits
    quick = dict(num_classes=3, per_class=5, num_checkpoints=1)
    first = overfit_check(linear_digits, (images, labels), **quick)
    again = overfit_check(linear_digits, (images, labels), **quick)
    other = overfit_check(linear_digits, (images, labels), seed=1, **quick)
    np.testing.assert_array_equal(first.indices, again.indices)
    assert first.curve == again.curve  # same sample, same initial weights, same shuffles
    assert not np.array_equal(first.indices, other.indices)
    assert len(first.classes) == 3 and first.num_examples == 15
    assert sorted(np.bincount(labels[first.indices])[first.classes]) == [5, 5, 5]


def test_overfit_check_passes_sample_inputs_and_labels_to_model_fn(digits):
    seen = {}

    def model_fn(images, labels):
        seen["shapes"] = images.shape, labels.shape
        return linear_digits()

    overfit_check(model_fn, digits, num_classes=2, per_class=4, num_checkpoints=1)
    assert seen["shapes"] == ((8, 8, 8), (8,))


def test_overfit_check_trains_total_examples_in_num_checkpoints(digits):
    report = overfit_check(
        linear_digits, digits, num_classes=2, per_class=20, total_examples=640, num_checkpoints=4, target_score=1.0
    )
    assert report.steps_per_checkpoint == 5  # 640 // (32 * 4)
    assert report.checkpoints == 2 and report.reached == 1.0  # stopped at the target, before the 4th
    assert len(report.curve["loss"]) == len(report.curve["accuracy"]) == 2


def test_report_plot_writes_a_png(digits, tmp_path):
    report = overfit_check(linear_digits, digits, num_classes=3, per_class=5, num_checkpoints=2)
    path = report.plot(tmp_path / "overfit.png")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(task="ranking"), r"`task` must be one of \('classification', 'regression'\). Received: task='ranking'"),
        (dict(target_score=90), r"`target_score` must be a finite number in \[0, 1\]. Received: target_score=90"),
        (dict(target_score=0), r"`target_score` must be a finite number in \(0, 1\]. Received: target_score=0"),
        (dict(per_class=0), r"`per_class` must be an int >= 1. Received: per_class=0"),
        (dict(num_classes=1), r"`num_classes` must be None or an int >= 2. Received: num_classes=1"),
        (dict(num_checkpoints=0), r"`num_checkpoints` must be an int >= 1. Received: num_checkpoints=0"),
        (dict(total_examples=10), r"`total_examples` must be at least `batch_size \* num_checkpoints`"),
    ],
)
def test_overfit_check_refuses_bad_arguments(digits, arguments, message):
    with pytest.raises(ValueError, match=message):
        overfit_check(linear_digits, digits, **arguments)


def test_overfit_check_refuses_bad_data_and_model_fns(digits):
    images, labels = digits
    with pytest.raises(ValueError, match=r"`data` must be an \(x, y\) tuple. Received: data=a tuple of length 3"):
        overfit_check(linear_digits, (images, labels, labels))
    with pytest.raises(ValueError, match=r"`data`'s x and y must have the same number of rows.*x: 1797, y: 10"):
        overfit_check(linear_digits, (images, labels[:10]))
    with pytest.raises(ValueError, match=r"integer class ids or one-hot rows.*task='regression'"):
        overfit_check(linear_digits, (images, labels + 0.5))
    with pytest.raises(ValueError, match=r"must return a compiled model"):
        overfit_check(lambda: keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten()]), (images, labels))
    with pytest.raises(ValueError, match=r"Received: model_fn with 3 required positional parameters"):
        overfit_check(lambda a, b, c: None, (images, labels))


# -- diagnose on real training runs --------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit_split(digits):
    images, labels = digits
    train, val = recipes.repeatable_split(np.arange(len(labels)), (0.67, 0.33))
    return (images[train], labels[train]), (images[val], labels[val])


def _digits_model(hidden, optimizer):
    image = keras.Input((8, 8), dtype="uint8", name="image")
    x = hidden(keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(image)))
    model = keras.Model(image, keras.layers.Dense(10, activation="softmax")(x))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_diagnose_good_run_from_a_fit_result(digit_split):
    recipes.set_seed(0)
    train, val = digit_split
    result = recipes.fit(
        linear_digits(),
        train,
        validation_data=val,
        batch_size=32,
        total_examples=8 * len(train[1]),
        num_checkpoints=8,
        verbose=0,
    )
    diagnosis = diagnose(result, target_score=0.95)
    assert diagnosis.finding == "good" and diagnosis.verdict == "pass", diagnosis
    assert diagnosis.metric == "accuracy" and diagnosis.epochs == 8
    assert diagnosis.remedies[0].remedy == "test once on held-out data"
    print(f"\n{diagnosis}")


def test_diagnose_underfitting_of_a_one_unit_bottleneck(digit_split):
    recipes.set_seed(0)
    train, val = digit_split
    model = _digits_model(keras.layers.Dense(1), keras.optimizers.Adam(0.05))  # every digit squeezed to one number
    history = model.fit(*train, validation_data=val, epochs=10, batch_size=64, verbose=0)
    diagnosis = diagnose(history, target_score=0.95)
    assert diagnosis.finding == "underfitting" and diagnosis.verdict == "fail", diagnosis
    bias = r"training accuracy 0\.\d+ is 0\.[4-7]\d+ below the target 0\.950 \(avoidable bias\)"
    assert re.search(bias, str(diagnosis))
    assert [r.remedy for r in diagnosis.remedies][:2] == ["bigger model", "longer training"]
    print(f"\n{diagnosis}")


def test_diagnose_overfitting_of_a_big_network_on_60_rows(digit_split):
    recipes.set_seed(0)
    (images, labels), (val_images, val_labels) = digit_split
    model = _digits_model(keras.layers.Dense(256, activation="relu"), keras.optimizers.Adam(3e-3))
    validation = (val_images[:300], val_labels[:300])
    history = model.fit(images[:60], labels[:60], validation_data=validation, epochs=10, batch_size=16, verbose=0)
    diagnosis = diagnose(history, target_score=0.95)
    assert diagnosis.finding == "overfitting", diagnosis
    assert diagnosis.train >= 0.95 and diagnosis.train - diagnosis.validation > 0.1
    assert [r.remedy for r in diagnosis.remedies] == [
        "more data",
        "augmentation",
        "regularization",
        "early stopping",
        "smaller model",
    ]
    print(f"\n{diagnosis}")


def test_diagnose_not_converged_with_a_tiny_learning_rate(digit_split):
    recipes.set_seed(0)
    train, val = digit_split
    history = linear_digits(1e-4).fit(*train, validation_data=val, epochs=4, verbose=0)
    diagnosis = diagnose(history, target_score=0.95)
    assert diagnosis.finding == "not converged" and diagnosis.verdict == "warn" and diagnosis.ok, diagnosis
    assert "the training loss was still falling" in diagnosis.evidence[0]
    assert diagnosis.remedies[0].remedy == "more passes"


def test_diagnose_diverged_regression_with_a_huge_learning_rate(weather):
    recipes.set_seed(0)
    frame = weather.drop(columns=["weather"])
    train, val = recipes.split_by_date(weather.date, ["2015/01/01"])
    model = tabular.regressor(frame.iloc[train], "temp_max", date_columns=["date"])
    model.compile(optimizer=keras.optimizers.SGD(10.0), loss="mean_squared_error", metrics=["mean_absolute_error"])
    history = model.fit(
        *tabular.to_xy(model, frame.iloc[train], "temp_max"),
        validation_data=tabular.to_xy(model, frame.iloc[val], "temp_max"),
        epochs=3,
        callbacks=[keras.callbacks.TerminateOnNaN()],
        verbose=0,
    )
    diagnosis = diagnose(history)
    assert diagnosis.finding == "diverged", diagnosis
    assert diagnosis.metric == "mean_absolute_error"
    assert re.fullmatch(r"the training loss is (nan|inf) in epoch 1: training diverged", diagnosis.evidence[0])
    assert [r.remedy for r in diagnosis.remedies] == ["lower learning rate", "check input scaling", "gradient clipping"]
    assert diagnosis.advice[0].startswith("lower learning rate: learning_rate=1e-4")
    assert str(diagnosis).startswith("FAIL: diverged: the training loss is")
    print(f"\n{diagnosis}")


# -- diagnose on synthetic curves: the edges of each rule -------------------------------------------------


def curves(loss, val_loss=None, accuracy=None, val_accuracy=None):
    history = {"loss": loss}
    for name, values in (("val_loss", val_loss), ("accuracy", accuracy), ("val_accuracy", val_accuracy)):
        if values is not None:
            history[name] = values
    return history


FALLING = [2.0, 1.0, 0.6, 0.45, 0.4, 0.38, 0.37, 0.365]  # flattened: the last third brings 2% of the drop


def test_diagnose_reads_nan_and_exploding_losses():
    assert diagnose(curves([2.0, 1.0, float("nan")])).evidence == [
        "the training loss is nan in epoch 3 after 1 in epoch 2: training diverged"
    ]
    exploded = diagnose(curves([2.0, 0.5, 0.6, 5.0]))
    assert exploded.finding == "diverged" and "10.0x its lowest 0.5 (epoch 2)" in exploded.evidence[0]
    # worse, but not above where it started: not diverged; it fell only 5% in all
    assert diagnose(curves([2.0, 0.5, 0.6, 1.9])).finding == "underfitting"


def test_diagnose_reads_a_blow_up_inside_the_first_epoch():
    # A real Adam(learning_rate=1e3) run on the digits: huge but finite cross-entropy, then a dead network.
    history = curves([19257724.0, 621.7, 414.9], [962.0, 483.1, 327.5], [0.169, 0.143, 0.138], [0.097, 0.147, 0.147])
    diagnosis = diagnose(history)
    assert diagnosis.finding == "diverged"
    assert "averaged 1.926e+07 over epoch 1, 20,018x the validation loss at its end (962)" in diagnosis.evidence[0]
    regression = {"loss": [1e9, 1e6, 5e5], "val_loss": [1e6, 6e5, 4e5]}
    regression.update(mae=[3e4, 900, 600], val_mae=[900, 700, 600])
    assert diagnose(regression).finding == "good"  # unscaled targets legitimately fall a thousandfold


def test_diagnose_overfitting_when_validation_loss_rises():
    history = curves(FALLING, [2.1, 1.1, 0.7, 0.6, 0.62, 0.66, 0.7, 0.75])
    diagnosis = diagnose(history)
    assert diagnosis.finding == "overfitting"
    assert diagnosis.evidence[0] == (
        "the validation loss rose from its lowest 0.6 (epoch 4) to 0.75 (+25%) at epoch 8, "
        "while the training loss fell from 0.45 to 0.365"
    )
    barely = curves(FALLING, [2.1, 1.1, 0.7, 0.45, 0.42, 0.43, 0.44, 0.45])  # +7% over 3 epochs: noise
    assert diagnose(barely).finding == "good"
    # Only the loss logged: a validation loss 44% above the training loss is a large gap (RELATIVE_GAP).
    gap = diagnose(curves(FALLING, [2.1, 1.1, 0.7, 0.6, 0.62, 0.63, 0.64, 0.65]))
    assert gap.finding == "overfitting" and gap.metric == "loss"
    assert gap.evidence == ["validation loss 0.65 is 0.285 above training loss 0.365 (variance)"]


def test_diagnose_fixes_the_larger_of_bias_and_variance_first():
    val_loss = [2.1, 1.1, 0.7, 0.6, 0.58, 0.57, 0.56, 0.56]
    both = dict(loss=FALLING, val_loss=val_loss, accuracy=[0.5] * 7 + [0.80])
    assert diagnose(curves(**both, val_accuracy=[0.5] * 7 + [0.72]), target_score=0.95).finding == "underfitting"
    assert diagnose(curves(**both, val_accuracy=[0.5] * 7 + [0.60]), target_score=0.95).finding == "overfitting"
    close = diagnose(curves(**both, val_accuracy=[0.5] * 7 + [0.77]), target_score=0.83)
    assert close.finding == "good"  # within 0.05 of the target and of training: FRACTION_GAP
    assert close.evidence == [
        "training accuracy 0.800 is 0.030 below the target 0.830 (avoidable bias)",
        "validation accuracy 0.770 is 0.030 below training accuracy 0.800 (variance)",
    ]


def test_diagnose_not_converged_when_still_falling_or_too_short():
    linear = [2.0 - 0.2 * i for i in range(8)]
    diagnosis = diagnose(curves(linear))
    assert diagnosis.finding == "not converged"
    assert diagnosis.evidence[0] == (
        "the training loss was still falling: 1 to 0.6 over the last 2 of 8 epochs, 29% of its whole drop"
    )
    assert diagnose(curves(linear, accuracy=[0.9] * 8), target_score=0.9).finding == "good"  # target met: done
    assert diagnose(curves([2.0, 1.0])).evidence[0] == "only 2 epoch(s): too few to see a trend"


def test_diagnose_without_target_or_validation():
    good = diagnose(curves(FALLING))
    assert good.finding == "good" and good.train == 0.365 and good.validation is None
    assert good.evidence == [
        "no validation curve, so overfitting cannot be seen (pass validation data)",
        "no target score given, so the bias is not judged (pass target_score=, e.g. human-level accuracy)",
    ]
    flat = diagnose(curves([2.3, 2.2, 2.15, 2.14, 2.14]))
    assert flat.finding == "underfitting" and flat.evidence[0].startswith("the training loss fell only 7%")


def test_diagnose_a_minimised_metric_against_its_target():
    history = {
        "loss": FALLING,
        "mean_absolute_error": [9, 6, 5, 4.4, 4.2, 4.1, 4.05, 4.0],
        "val_mean_absolute_error": [9, 6, 5, 4.5, 4.3, 4.2, 4.15, 4.1],
    }
    diagnosis = diagnose(history, target_score=2.0)  # e.g. a forecaster's error of 2 degrees
    assert diagnosis.finding == "underfitting" and diagnosis.metric == "mean_absolute_error"
    assert "training mean_absolute_error 4 is 2 above the target 2 (avoidable bias)" in diagnosis.evidence
    assert diagnose(history, target_score=3.5).finding == "good"  # 4.0 is within 20% (RELATIVE_GAP) of 3.5
    assert diagnose(history, metric="val_loss").metric == "loss"


def test_diagnose_refuses_what_it_cannot_read():
    with pytest.raises(
        ValueError, match=r"must be a Keras History, a recipes.FitResult or a dict.*Received: history of type list"
    ):
        diagnose([1.0, 0.5])
    with pytest.raises(ValueError, match=r"non-empty 'loss' curve. Received: keys \['accuracy'\]"):
        diagnose({"accuracy": [0.5]})
    with pytest.raises(ValueError, match=r"`target_score` must be in \[0, 1\] like 'accuracy' \(0.95, not 95\)"):
        diagnose(curves(FALLING, accuracy=[0.9] * 8), target_score=95)
    with pytest.raises(
        ValueError,
        match=r"`metric` must be one of the history's metrics \['accuracy', 'loss'\]. Received: metric='auc'",
    ):
        diagnose(curves(FALLING, accuracy=[0.9] * 8), metric="auc")
    with pytest.raises(ValueError, match=r"`history\['loss'\]` must be a list of numbers"):
        diagnose({"loss": ["high"]})


def _calls(text):
    """`(dotted name, top-level keywords)` of each `name(...)` call in `text`, nested parentheses included."""
    for match in re.finditer(r"\b((?:recipes|models|serving|keras|model)(?:\.\w+)+)\(", text):
        depth, keywords, start = 1, [], match.end()
        for i in range(start, len(text)):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            if depth == 0:
                break
            if depth == 1:
                keyword = re.match(r"(?<![\w.])(\w+)=(?!=)", text[i:])
                if keyword and (i == start or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                    keywords.append(keyword.group(1))
        yield match.group(1), keywords


def _resolve(path):
    if path.startswith("model."):
        return getattr(keras.Model, path.removeprefix("model."))
    module_name, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except ModuleNotFoundError:  # keras.layers.Rescaling: a class in a module
        owner, _, attribute = module_name.rpartition(".")
        return getattr(getattr(importlib.import_module(owner), attribute), name)


def test_every_remedy_names_calls_that_exist():
    """Each `module.function(..., keyword=...)` of a remedy exists and takes that keyword."""
    assert set(REMEDIES) == set(FINDINGS) == set(VERDICT_OF)
    checked_keywords = 0
    for remedy in (r for remedies in REMEDIES.values() for r in remedies):
        calls = list(_calls(remedy.call))
        assert calls, remedy
        for path, keywords in calls:
            parameters = inspect.signature(_resolve(path)).parameters
            for keyword in keywords:
                assert keyword in parameters, f"{path} takes no {keyword!r}: {remedy}"
            checked_keywords += len(keywords)
        outside = len(re.findall(r"\b\w+=(?!=)", remedy.call)) - sum(len(k) for _, k in calls)
        loose = remedy.call.startswith(("learning_rate=3e-3", "learning_rate=1e-4"))  # then shown in a call
        assert outside == (1 if loose else 0), f"a keyword outside any call: {remedy}"
    assert checked_keywords >= 25


def test_diagnosis_plots_its_curves(tmp_path):
    diagnosis = diagnose(curves(FALLING, [2.1, 1.1, 0.7, 0.6, 0.62, 0.66, 0.7, 0.75]))
    with open(diagnosis.plot(tmp_path / "curves.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert diagnosis.to_dict()["history"]["val_loss"][-1] == 0.75


def test_every_report_is_json_ready(digits):
    overfit = overfit_check(linear_digits, digits, num_classes=3, per_class=5, num_checkpoints=2)
    diagnosis = diagnose({"loss": [2.0, float("nan")], "accuracy": [0.5, 0.6]})
    for report in (overfit, diagnosis):
        data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
        assert data["verdict"] == report.verdict and data["ok"] == report.ok and data["summary"] == report.summary
        assert data["advice"] == list(report.advice)
    assert diagnosis.to_dict()["remedies"][0] == {"remedy": "lower learning rate", "call": REMEDIES["diverged"][0].call}
    assert "indices" not in overfit.to_dict() and overfit.to_dict()["curve"]["loss"]
    assert "**FAIL**: diverged" in diagnosis.to_markdown() and "What to do:" in diagnosis.to_markdown()


def test_debug_package_exports_lazily():
    assert set(dir(recipes.debug)) >= {"overfit_check", "diagnose", "OverfitReport", "Diagnosis", "Remedy"}
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        recipes.debug.nothing  # noqa: B018

"""`mode_check`: a model must be deterministic at inference and really train in training mode.

Keras layers behave differently in training and inference: `Dropout`, `GaussianNoise` and the random
image layers act only when `training` is true, and `BatchNormalization` normalises with the batch and
updates its moving statistics in training but uses those statistics at inference. Three common bugs
break this quietly: a custom layer that applies its randomness whatever `training` says (so predictions
change from call to call), a `BatchNormalization` whose moving statistics never move (so inference
normalises with the initial mean 0 and variance 1), and a custom training loop that calls the model
without `training=True` (so dropout, augmentation and batch statistics are never used in training).
`mode_check` runs the model on a batch of inputs and names the layer and the fix for each.
"""

import contextlib
import dataclasses
import inspect

import keras
import numpy as np
import tensorflow as tf

from recipes._common import check_int
from recipes.report import Report

_SEVERITIES = ("error", "note")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem `mode_check` found.

    Attributes:
        layer: Name of the layer at fault, with its enclosing blocks (`"augmentation/noise"`), or the
            model's name for the training step.
        problem: What was observed.
        fix: What to change.
        severity: `"error"` (the verdict is `"fail"`) or `"note"` (worth knowing, often intended: a frozen
            `BatchNormalization` when fine-tuning a pretrained backbone).
    """

    layer: str
    problem: str
    fix: str
    severity: str = "error"

    def __str__(self):
        return f"{self.layer}: {self.problem}. Fix: {self.fix}."


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModeReport(Report):
    """What `mode_check` returns (a `recipes.report.Report`).

    Attributes:
        verdict: `"pass"` (no finding of severity `"error"`; notes allowed) or `"fail"`.
        summary: What was checked, and how many problems were found.
        advice: One item per finding, errors first: the layer, what was observed and the fix (notes
            begin with `"(note)"`).
        findings: List of `Finding`, errors first.
        deterministic: Whether `repeats` calls at `training=False` gave the same outputs.
        batch_norm_layers: Number of `BatchNormalization` layers checked.
    """

    findings: list
    deterministic: bool
    batch_norm_layers: int


def mode_check(model, x, *, repeats=3, train_step=None):
    """Checks that a model behaves as it should in training and in inference mode: pass or fail.

    1. Inference is deterministic: `model(x, training=False)` (what `predict` does) is called `repeats`
       times and must give the same outputs. If not, each layer that gives different outputs for the
       same input is named (functional and `Sequential` models, nested blocks included): a custom layer
       that ignores `training`. When only `model(x)` without `training` is random (Keras random
       preprocessing layers default to `training=True`), a note says so and names the layers.
    2. `BatchNormalization` learns its statistics: after one `model(x, training=True)` call (what `fit`
       does for each batch), every `BatchNormalization` layer's moving mean and variance must have moved.
       A layer with `momentum=1.0`, or one a custom layer calls with `training=False`, is an error; one
       frozen with `trainable=False` (itself or a block around it) is a note, since Keras then runs it in
       inference mode on purpose (fine-tuning a pretrained backbone).
    3. With `train_step`, a custom training loop calls the model with `training=True`: the step is run
       once, eagerly, and the `training` value the model receives is recorded.

    The verdict is `"fail"` when a finding is an error, else `"pass"`. The model's weights are restored
    afterwards, so the check leaves the model as it found it.

    Example:

    ```python
    import recipes
    from models import vision
    from recipes.debug import mode_check

    images, labels = recipes.datasets.load_digits()
    model = vision.cnn_classifier((8, 8), 10)
    print(mode_check(model, images[:64]))  # PASS: inference is deterministic (3 calls at training=False), ...
    ```

    Args:
        model: A built `keras.Model` (functional, `Sequential` or subclassed; culprits are located
            inside functional and `Sequential` models only).
        x: A batch of inputs the model accepts, e.g. 32 to 128 rows of real inputs (an array, or a dict
            or list of arrays). Use more than one row: batch statistics need several.
        repeats: Int >= 2, defaults to 3. Calls at `training=False` compared.
        train_step: Optional callable, the step of a custom training loop, run once as `train_step(x)`
            (wrap yours: `lambda x: step(x, labels)`). A `tf.function` is run eagerly for the check.
            The model's weights are restored afterwards; an optimizer the step uses keeps its advanced
            state.

    Returns:
        A `ModeReport`.
    """
    check_int("repeats", repeats, 2)
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model of type {type(model).__name__}")
    if train_step is not None and not callable(train_step):
        raise ValueError(f"`train_step` must be None or a callable. Received: train_step={train_step!r}")

    before = model.get_weights()
    try:
        deterministic = _deterministic(model, x, repeats, {"training": False})
        findings = [] if deterministic else _locate_randomness(model, x, {"training": False})
        if deterministic and not _deterministic(model, x, repeats, {}):
            findings.append(_default_call_note(model, x))
        norms = [(path, layer) for path, layer, _ in _walk(model) if isinstance(layer, keras.layers.BatchNormalization)]
        findings += _batch_norm_findings(model, x, norms)
        if train_step is not None:
            model.set_weights(before)
            findings += _train_step_findings(model, x, train_step)
    finally:
        model.set_weights(before)

    findings.sort(key=lambda finding: _SEVERITIES.index(finding.severity))
    verdict = "fail" if any(f.severity == "error" for f in findings) else "pass"
    return ModeReport(
        verdict=verdict,
        summary=_summary(findings, deterministic, repeats, len(norms), train_step is not None),
        advice=[("" if f.severity == "error" else "(note) ") + str(f) for f in findings],
        findings=findings,
        deterministic=deterministic,
        batch_norm_layers=len(norms),
    )


# -- walking the model ---------------------------------------------------------------------------------


def _walk(layer, prefix="", frozen=None):
    """`(path, layer, frozen_by)` for every layer inside `layer`, depth first; `frozen_by` names the
    outermost enclosing block (or the layer itself) with `trainable=False`, else `None`."""
    for child in layer._flatten_layers(include_self=False, recursive=False):
        path = f"{prefix}{child.name}"
        frozen_by = frozen or (path if not child.trainable else None)
        yield path, child, frozen_by
        yield from _walk(child, path + "/", frozen_by)


def _call_takes_training(layer):
    try:
        return "training" in inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return False


def _numpy(value):
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in keras.tree.flatten(value)]


def _same(a, b):
    a, b = _numpy(a), _numpy(b)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x.shape != y.shape:
            return False
        if np.issubdtype(x.dtype, np.floating):
            if not np.allclose(x, y, rtol=1e-5, atol=1e-6, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def _is_graph_model(layer):
    """A functional or `Sequential` model whose graph can be replayed up to each layer."""
    if not isinstance(layer, keras.Model):
        return False
    try:
        return bool(layer.inputs) and bool(layer.outputs)
    except (AttributeError, ValueError):
        return False


# -- 1. inference is deterministic ---------------------------------------------------------------------


def _deterministic(model, x, repeats, mode):
    outputs = [model(x, **mode) for _ in range(repeats)]
    return all(_same(outputs[0], other) for other in outputs[1:])


def _default_call_note(model, x):
    """`model(x)` without `training` is random although `model(x, training=False)` is not."""
    culprits = _culprits(model, x, "", {}) if _is_graph_model(model) else []
    named = ", ".join(f.layer for f in culprits) or "some layers"
    return Finding(
        model.name,
        f"model(x) without `training` gives different outputs: {named} run as in training when no mode is given "
        "(Keras random preprocessing layers default to training=True; a layer built with training=True keeps "
        "it); predict() and model(x, training=False) are deterministic",
        "call model(x, training=False) or model.predict(x) for inference, never model(x)",
        "note",
    )


def _locate_randomness(model, x, mode):
    culprits = _culprits(model, x, "", mode) if _is_graph_model(model) else []
    if culprits:
        return culprits
    suspects = [
        path
        for path, layer, _ in _walk(model)
        if not _call_takes_training(layer) and not type(layer).__module__.startswith("keras.")
    ]
    hint = f" Suspects (custom layers whose call takes no `training`): {', '.join(suspects)}" if suspects else ""
    return [
        Finding(
            model.name,
            "outputs differ between calls with training=False, and the layer could not be located (the model "
            "is not functional or Sequential)",
            "find the layer that draws random numbers whatever `training` says and make it act only when "
            f"`training` is true.{hint}",
        )
    ]


def _graph(model):
    """The functional graph of a functional or `Sequential` model."""
    return model._functional if isinstance(model, keras.Sequential) else model


def _layer_calls(graph):
    """`(layer, node)` for each call of a layer in the graph, inputs first (a shared layer once a call)."""
    calls = []
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if not isinstance(node.operation, keras.layers.InputLayer):
                calls.append((node.operation, node))
    return calls


def _culprits(model, inputs, prefix, mode):
    """Layers of a graph model that give different outputs for the same input when called with `mode`."""
    graph = _graph(model)
    calls = _layer_calls(graph)
    tensors, index = [], {}
    for _, node in calls:
        for tensor in node.input_tensors + node.output_tensors:
            if id(tensor) not in index:
                index[id(tensor)] = len(tensors)
                tensors.append(tensor)
    if not tensors:
        return []
    probe = keras.Model(graph.input, tensors)
    first = probe(inputs, **mode)
    second = probe(inputs, **mode)
    varies = [not _same(a, b) for a, b in zip(first, second)]
    found, seen = [], set()
    for layer, node in calls:
        if id(layer) in seen or not any(varies[index[id(t)]] for t in node.output_tensors):
            continue
        values = [first[index[id(t)]] for t in node.input_tensors]
        values = values[0] if len(values) == 1 else values
        training = node.arguments.kwargs.get("training")
        random_alone = _random_alone(layer, values, mode if training is None else {"training": training})
        if any(varies[index[id(t)]] for t in node.input_tensors) and not random_alone:
            continue  # varies only because its input does
        seen.add(id(layer))
        path = f"{prefix}{layer.name}"
        if _is_graph_model(layer):
            inner = _culprits(layer, values, path + "/", mode)
            if inner:
                found += inner
                continue
        found.append(_randomness_finding(path, layer, training))
    return found


def _random_alone(layer, values, mode):
    """Whether the layer, called alone twice on the same input as in the model, gives different outputs."""
    return not _same(layer(values, **mode), layer(values, **mode))


def _randomness_finding(path, layer, training):
    name = type(layer).__name__
    if training is True:
        return Finding(
            path,
            f"{name} was called with training=True when the model was built, so it stays random at inference",
            "drop `training=True` from that call and let Keras pass the mode (Monte Carlo dropout on purpose? "
            "then build a separate model for it and keep this one deterministic)",
        )
    if not _call_takes_training(layer):
        return Finding(
            path,
            f"{name}.call takes no `training` argument and gives different outputs for the same input at "
            "training=False (dropout or augmentation active at inference)",
            f"add `training=None` to {name}.call and apply the randomness only `if training:`, or build it from "
            "keras.layers.Dropout / GaussianNoise / Random* layers, which are identity at inference",
        )
    return Finding(
        path,
        f"{name} receives training=False but gives different outputs for the same input (randomness applied "
        "whatever the mode)",
        f"in {name}.call apply the randomness only `if training:`, and pass `training=training` on to the layers "
        "it calls",
    )


# -- 2. BatchNormalization moving statistics move --------------------------------------------------------


def _batch_norm_findings(model, x, norms):
    if not norms:
        return []
    before = {path: _numpy([layer.moving_mean, layer.moving_variance]) for path, layer in norms}
    model(x, training=True)
    frozen_by = {path: frozen for path, _, frozen in _walk(model)}
    findings, frozen_counts = [], {}
    for path, layer in norms:
        after = _numpy([layer.moving_mean, layer.moving_variance])
        if any(not np.array_equal(a, b) for a, b in zip(before[path], after)):
            continue
        if frozen_by[path] is not None:
            frozen_counts.setdefault(frozen_by[path], []).append(path)
        elif float(layer.momentum) >= 1.0:
            findings.append(
                Finding(
                    path,
                    f"BatchNormalization with momentum={layer.momentum:g}: its moving mean and variance never change "
                    "in training, so inference normalises with the initial mean 0 and variance 1",
                    "use the default momentum=0.99 (0.9 for short trainings); momentum is the share of the old "
                    "statistics kept at each step",
                )
            )
        else:
            findings.append(
                Finding(
                    path,
                    "BatchNormalization moving statistics did not change under model(x, training=True): it "
                    "runs in inference mode in training (called with training=False in the graph, or inside a "
                    "layer that calls it so)",
                    "remove the hard-coded training=False (keep it only for a frozen pretrained block, together "
                    "with trainable=False), or pass `training=training` on in the custom layer that calls it",
                )
            )
    for block, paths in frozen_counts.items():
        count = f"{len(paths)} BatchNormalization layers" if len(paths) > 1 else "BatchNormalization"
        findings.append(
            Finding(
                block,
                f"{count} frozen (trainable=False), so Keras runs {'them' if len(paths) > 1 else 'it'} in inference "
                "mode and the moving statistics never change in training",
                "intended when fine-tuning a pretrained backbone (Keras transfer-learning guide); otherwise set "
                "trainable=True before compile",
                "note",
            )
        )
    return findings


# -- 3. the custom training step calls the model with training=True -------------------------------------


@contextlib.contextmanager
def _recording_training(model):
    """Records the `training` value of every call of `model` (None when not passed) while active."""
    seen = []
    original = model.call

    def spy(*args, **kwargs):
        seen.append(kwargs.get("training"))
        return original(*args, **kwargs)

    eager = tf.config.functions_run_eagerly()
    model.call = spy
    tf.config.run_functions_eagerly(True)  # a tf.function traced before would never call the spy
    try:
        yield seen
    finally:
        tf.config.run_functions_eagerly(eager)
        del model.call


def _train_step_findings(model, x, train_step):
    with _recording_training(model) as seen:
        train_step(x)
    if not seen:
        return [
            Finding(
                model.name,
                "the training step never called the model",
                "call `model(x, training=True)` inside the step (a step that calls another model or a copy "
                "trains that one instead)",
            )
        ]
    if all(value is True for value in seen):
        return []
    mode_dependent = sorted(
        {
            type(layer).__name__
            for _, layer, _ in _walk(model)
            if _call_takes_training(layer) and not isinstance(layer, keras.Model)
        }
    )
    shown = ", ".join(f"training={value}" for value in dict.fromkeys(seen))
    if mode_dependent:
        problem = (
            f"the training step calls the model with {shown}, so its {', '.join(mode_dependent)} layers run in "
            "inference mode while training (no dropout or augmentation; BatchNormalization uses and never "
            "updates its moving statistics)"
        )
        severity = "error"
    else:
        problem = f"the training step calls the model with {shown}; harmless for now (no layer depends on the mode)"
        severity = "note"
    return [
        Finding(
            model.name,
            problem,
            "call `model(x, training=True)` in the training step (and `training=False` when evaluating)",
            severity,
        )
    ]


# -- the summary ---------------------------------------------------------------------------------------


def _summary(findings, deterministic, repeats, num_norms, checked_step):
    checks = [
        f"inference is {'deterministic' if deterministic else 'NOT deterministic'} ({repeats} calls at training=False)",
        f"{num_norms} BatchNormalization layer(s) checked" if num_norms else "no BatchNormalization layer",
    ]
    if checked_step:
        checks.append("training step checked")
    errors = sum(f.severity == "error" for f in findings)
    notes = len(findings) - errors
    counted = [f"{errors} problem(s)"] if errors else []
    counted += [f"{notes} note(s)"] if notes else []
    return ", ".join(checks) + ("; " + ", ".join(counted) if counted else "")

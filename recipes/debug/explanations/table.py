"""Tables: attributions to the encoded features of a `FeatureSpace`, summed back to each raw column."""

import numpy as np

from recipes.debug.explanations.integrated_gradients import attribute
from recipes.debug.explanations.modalities import TABLE_NEEDS, encoder_layer, is_feature_vector_model
from recipes.debug.explanations.splitting import run_in_batches, split


def explain_table(model, x, class_ids, *, method, steps, batch_size, **_):
    """`(attributions, layer name, scores, baseline scores, notes)`: per row a dict from column to score."""
    encoder = encoder_layer(model)
    if encoder is not None:
        front, back, _ = split(model, encoder)
        features, *extras = run_in_batches(front, x, batch_size)
        columns = _encoded_columns(encoder)
        layer = encoder.name
        order = [t.name for t in model.inputs]
    elif is_feature_vector_model(model):
        features, extras, back = np.asarray(x, dtype=np.float32), [], model
        columns = [f"feature_{j}" for j in range(features.shape[1])]
        layer, order = model.inputs[0].name, columns
    else:
        raise ValueError(TABLE_NEEDS)
    values, scores, baseline = attribute(
        back, features, class_ids, extras=extras, method=method, steps=steps, batch_size=batch_size
    )
    names = [n for n in order if n in set(columns)] + sorted(set(columns) - set(order))
    attributions = []
    for row in values:
        totals = dict.fromkeys(names, 0.0)
        for column, value in zip(columns, row):
            totals[column] += float(value)
        attributions.append(totals)
    return attributions, layer, scores, baseline, []


def _encoded_columns(encoder):
    """The raw column behind each encoded feature: parts of the final concatenation traced back to inputs."""
    names = {id(t): t.name for t in encoder.inputs}
    memo = {}

    def sources(tensor):
        if id(tensor) in names:
            return frozenset([names[id(tensor)]])
        if id(tensor) not in memo:
            operation, node_index, _ = tensor._keras_history
            node = operation._inbound_nodes[node_index]
            memo[id(tensor)] = (
                frozenset().union(*(sources(t) for t in node.input_tensors)) if node.input_tensors else frozenset()
            )
        return memo[id(tensor)]

    output = encoder.outputs[0]
    width = output.shape[-1]
    operation, node_index, _ = output._keras_history
    parts = operation._inbound_nodes[node_index].input_tensors
    widths = [t.shape[-1] for t in parts]
    if "concat" in type(operation).__name__.lower() and None not in widths and sum(widths) == width:
        return [" x ".join(sorted(sources(part))) for part, w in zip(parts, widths) for _ in range(w)]
    return [" x ".join(sorted(sources(output)))] * width

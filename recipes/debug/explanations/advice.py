"""What an explanation says in words: the summary, the evidence per example and what to do about it."""

import numpy as np

# Examples drawn by `Explanation.plot` and detailed in the advice.
MAX_SHOWN = 6
# Above this share of the attribution on silent frames, the model listens to the silence.
SILENCE_SHARE = 0.5
# Integrated gradients whose sums miss the change of score by more than this are approximate.
COMPLETENESS_TOLERANCE = 0.05
METHOD_NAMES = {
    "integrated_gradients": "integrated gradients",
    "gradient_x_input": "gradient x input",
    "gradcam": "Grad-CAM (tf-keras-vis)",
    "saliency": "saliency (tf-keras-vis)",
}
WHAT = {"text": "the tokens", "audio": "the time-frequency features", "image": "the pixels", "table": "the columns"}
ACTIONS = {
    "text": (
        "If a token with no bearing on the task (a name, a placeholder, a source tag, punctuation) tops an "
        "example, the model learned a shortcut: remove it from the training texts or balance it across classes."
    ),
    "audio": (
        "Heat on silent frames or on a fixed time means the model listens to the recording (silence, offset, "
        "noise) rather than the word: vary offsets and add noise in training (recipes.augment.audio_augmenter)."
    ),
    "image": (
        "If the heat sits on the background, a border or a watermark rather than on the object, the model uses a "
        "shortcut: crop, augment (models.vision.augmentation(...)), or collect images where that part varies."
    ),
    "table": (
        "A column that ranks first but is not known at prediction time (an id, a date or a value recorded after the "
        "fact, the target in disguise) is leakage: drop it and retrain."
    ),
}


def summary(explanation):
    """One line: the method, what was attributed, how many examples, the score, and the completeness."""
    e = explanation
    n = len(e.attributions)
    text = (
        f"{METHOD_NAMES[e.method]} over {WHAT[e.modality]} ({e.layer!r} output), {n} example{'s' * (n != 1)}; "
        f"score: the {e.score} of the explained class"
    )
    gap = e.completeness_gap
    if gap is not None:
        worst = float(np.max(gap))
        judged = "trustworthy" if worst <= COMPLETENESS_TOLERANCE else "approximate: raise `steps`"
        text += f"; completeness: attributions sum to score - baseline score within {worst:.1%} ({judged})"
    if e.modality == "table" and n > 1:
        mean = {c: float(np.mean([abs(a[c]) for a in e.attributions])) for c in e.attributions[0]}
        ranked = sorted(mean.items(), key=lambda item: -item[1])
        text += "; columns by mean |attribution|: " + ", ".join(f"{c} {v:.3g}" for c, v in ranked[:8])
    return text


def advice(explanation, notes):
    """The strongest evidence of each example shown (a caption and what pushed it), then what to do."""
    e = explanation
    n = len(e.attributions)
    items = [f"{e.caption(i)}: {_evidence(e, i, notes)}" for i in range(min(n, MAX_SHOWN))]
    if n > MAX_SHOWN:
        items.append(f"... {n - MAX_SHOWN} more in `attributions`")
    items.append(ACTIONS[e.modality])
    return items


def _evidence(e, i, notes):
    if e.modality in ("text", "table"):
        items = e.attributions[i]
        items = list(items.items()) if isinstance(items, dict) else list(items)
        positive = sorted((t for t in items if t[1] > 0), key=lambda t: -t[1])[:4]
        negative = sorted((t for t in items if t[1] < 0), key=lambda t: t[1])[:3]
        parts = []
        if positive:
            parts.append("for: " + ", ".join(f"{name!r} {value:+.3g}" for name, value in positive))
        if negative:
            parts.append("against: " + ", ".join(f"{name!r} {value:+.3g}" for name, value in negative))
        return "; ".join(parts) or "no token or column moves the score"
    heat = np.asarray(e.attributions[i])
    peak = np.unravel_index(np.argmax(np.abs(heat)), heat.shape)
    if e.modality == "audio":
        text = f"strongest at frame {peak[0]} of {heat.shape[0]}, feature {peak[1]}"
        if notes:
            share = notes[i]
            text += f"; {share:.0%} of the attribution on quiet frames"
            if share > SILENCE_SHARE:
                text += " (the model listens to the silence: check the recordings' offsets and padding)"
        return text
    weights = np.abs(heat)
    if not weights.any():
        return (
            "the map is all zero (no positive evidence at this layer): try method='saliency' or 'integrated_gradients'"
        )
    total = weights.sum()
    rows, columns = np.indices(heat.shape)
    centre = (float((rows * weights).sum() / total), float((columns * weights).sum() / total))
    return (
        f"heat peaks at row {peak[0]}, column {peak[1]} of {heat.shape[0]}x{heat.shape[1]}, "
        f"centre of mass ({centre[0]:.1f}, {centre[1]:.1f})"
    )

"""`Explanation`: what `explain` returns."""

import dataclasses

import numpy as np

from recipes._markdown import markdown_table
from recipes.debug.explanations.plots import plot as draw
from recipes.debug.explanations.advice import MAX_SHOWN
from recipes.report import Report


@dataclasses.dataclass(frozen=True, kw_only=True)
class Explanation(Report):
    """What `explain` returns (a `recipes.report.Report`).

    Attributes:
        verdict: `"info"`: an explanation judges nothing.
        summary: What was explained with which method, on which layer, and how complete the attributions are.
        advice: The strongest evidence per example shown (what pushed it towards or away from its class),
            then what to do about a shortcut.
        modality: `"text"`, `"image"`, `"audio"` or `"table"`.
        method: The attribution method used (see `METHODS`).
        layer: Name of the layer whose output was attributed (`"embedding"`, `"mfcc"`,
            `"feature_space"`, the last convolution for Grad-CAM, or the input).
        score: `"logit"` (the output activation was switched off) or `"output"` (the model output as is).
        class_names: Class names in label order.
        explained: Array with the class id explained for each example.
        predicted: Array with the predicted class of each example.
        probabilities: Array `(examples, classes)` of the model's probabilities.
        attributions: One entry per example. Text: list of `(token, score)`, in text order for token
            sequences (unknown words read `"word [UNK]"`), largest first for bag-of-words n-grams.
            Audio: array `(frames, features)`. Image: heat map array `(height, width)` (Grad-CAM and
            saliency normalised to [0, 1]; integrated gradients signed). Table: dict from column to score.
        x: The examples as given (texts, waveforms, images, or a dict of columns), for `plot`.
        scores: Array with the explained score of each example, or `None` (Grad-CAM, saliency).
        baseline_scores: Array with the score of the baseline (integrated gradients), else `None`.
    """

    modality: str
    method: str
    layer: str
    score: str
    class_names: list
    explained: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray
    attributions: list
    x: object = dataclasses.field(repr=False)
    scores: np.ndarray | None
    baseline_scores: np.ndarray | None

    @property
    def completeness_gap(self):
        """Integrated gradients only: per example, |sum of attributions - (score - baseline score)| relative
        to |score - baseline score| (floored at 1e-3). Above 0.05, raise `steps`. `None` for other methods."""
        if self.baseline_scores is None:
            return None
        totals = np.array([_total(a) for a in self.attributions])
        change = self.scores - self.baseline_scores
        return np.abs(totals - change) / np.maximum(np.abs(change), 1e-3)

    def top(self, index=0, k=5):
        """The `k` tokens or columns of example `index` with the largest attribution, largest first.

        Returns:
            A list of `(name, score)`.
        """
        if self.modality not in ("text", "table"):
            raise ValueError(f"`top` lists tokens or columns; this explanation's modality is {self.modality!r}")
        items = self.attributions[index]
        items = list(items.items()) if isinstance(items, dict) else list(items)
        return sorted(items, key=lambda item: -item[1])[:k]

    def caption(self, i):
        """`"[i] predicted 'class' (probability)"`, and the class explained when it is another."""
        predicted, explained = self.class_names[self.predicted[i]], self.class_names[self.explained[i]]
        caption = f"[{i}] predicted {predicted!r} ({self.probabilities[i, self.predicted[i]]:.2f})"
        return caption if explained == predicted else caption + f", explaining {explained!r}"

    def markdown_details(self):
        """A table per example (text and table) of the largest attributions."""
        if self.modality not in ("text", "table"):
            return ""
        import pandas as pd

        parts = []
        for i in range(min(len(self.attributions), MAX_SHOWN)):
            items = self.attributions[i]
            items = list(items.items()) if isinstance(items, dict) else list(items)
            items = sorted(items, key=lambda item: -abs(item[1]))[:10]
            name = "token" if self.modality == "text" else "column"
            parts.append(f"### Example {i}: {self.caption(i)}")
            parts.append(markdown_table(pd.DataFrame(items, columns=[name, "attribution"]), digits=3))
        return "\n\n".join(parts)

    def plot(self, path):
        """Writes a PNG of the first examples (at most 6): tokens highlighted by their score (green for
        the class, red against it), the heat map over the image or the time-frequency plane, or a bar
        chart of the columns.

        Args:
            path: File to write, e.g. `"explanation.png"`.

        Returns:
            `path`, as a string.
        """
        return draw(self, path)


def _total(attribution):
    if isinstance(attribution, dict):
        return float(sum(attribution.values()))
    if isinstance(attribution, list):
        return float(sum(value for _, value in attribution))
    return float(np.sum(attribution))

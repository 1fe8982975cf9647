"""An explanation's figure: highlighted tokens, heat maps over images or the time-frequency plane, column bars."""

import os

import numpy as np

from recipes.debug.explanations.advice import MAX_SHOWN, METHOD_NAMES


def plot(explanation, path):
    """Writes a PNG of the first examples (at most `MAX_SHOWN`) of `explanation` to `path`; returns `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    e = explanation
    shown = min(len(e.attributions), MAX_SHOWN)
    if e.modality == "image":
        columns = min(shown, 3)
        rows = -(-shown // columns)
        figure = Figure(figsize=(3.2 * columns, 3.4 * rows), layout="constrained")
    elif e.modality == "text":
        figure = Figure(figsize=(10, 1.2 + 1.1 * shown), layout="constrained")
        rows, columns = shown, 1
    else:
        figure = Figure(figsize=(8, 2.6 * shown + 0.4), layout="constrained")
        rows, columns = shown, 1
    FigureCanvasAgg(figure)
    for i in range(shown):
        axes = figure.add_subplot(rows, columns, i + 1)
        DRAW[e.modality](e, axes, i)
        axes.set_title(e.caption(i), fontsize="small", loc="left")
    figure.suptitle(f"{METHOD_NAMES[e.method]} on {e.layer!r} ({e.score})", fontsize="medium")
    path = os.fspath(path)
    figure.savefig(path, dpi=100)
    return path


def _draw_text(e, axes, i):
    axes.set_axis_off()
    tokens = e.attributions[i]
    largest = max((abs(s) for _, s in tokens), default=0.0) or 1.0
    x, y, width = 0.0, 0.75, 0.0118  # axes fraction per character, for a 10-inch figure at small font
    for token, value in tokens:
        extent = (len(token) + 1) * width
        if x + extent > 1.0 and x > 0:
            x, y = 0.0, y - 0.35
        strength = min(abs(value) / largest, 1.0)
        colour = (
            (1 - strength * 0.8, 1.0, 1 - strength * 0.8)
            if value > 0
            else (1.0, 1 - strength * 0.8, 1 - strength * 0.8)
        )
        axes.text(
            x,
            y,
            token,
            transform=axes.transAxes,
            fontsize="small",
            family="monospace",
            bbox=dict(facecolor=colour, edgecolor="none", pad=1.5),
        )
        x += extent


def _draw_image(e, axes, i):
    image = np.asarray(e.x[i], dtype=np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    image = (image - image.min()) / max(float(image.max() - image.min()), 1e-6)
    axes.imshow(image, cmap="gray" if image.ndim == 2 else None)
    heat = e.attributions[i]
    if e.method in ("integrated_gradients", "gradient_x_input"):
        limit = float(np.abs(heat).max()) or 1.0
        axes.imshow(heat, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.55)
    else:
        axes.imshow(heat, cmap="jet", vmin=0.0, vmax=1.0, alpha=0.45)
    axes.set_xticks([])
    axes.set_yticks([])


def _draw_audio(e, axes, i):
    heat = np.asarray(e.attributions[i]).T  # features up, time along
    limit = float(np.abs(heat).max()) or 1.0
    image = axes.imshow(heat, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes.set_xlabel("frame")
    axes.set_ylabel("coefficient" if e.layer != "mel_spectrogram" else "bin")
    axes.figure.colorbar(image, ax=axes, label="attribution", shrink=0.9)


def _draw_table(e, axes, i):
    names = list(e.attributions[i])
    values = np.array([e.attributions[i][n] for n in names])
    axes.barh(names, values, color=np.where(values >= 0, "tab:green", "tab:red"))
    axes.axvline(0, color="black", linewidth=0.8)
    axes.invert_yaxis()
    axes.set_xlabel("attribution")


DRAW = {"text": _draw_text, "image": _draw_image, "audio": _draw_audio, "table": _draw_table}

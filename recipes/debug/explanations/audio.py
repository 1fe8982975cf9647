"""Audio: attributions to the time-frequency features the model computes (MFCC, mel or STFT spectrogram)."""

import numpy as np

from recipes.debug.explanations.integrated_gradients import attribute
from recipes.debug.explanations.modalities import audio_layer
from recipes.debug.explanations.splitting import run_in_batches, split

# A frame quieter than this, relative to the loudest frame of the clip, counts as silence.
QUIET_DB = -40.0


def explain_audio(model, waveforms, class_ids, *, method, steps, batch_size, **_):
    """`(attributions, layer name, scores, baseline scores, notes)`: per clip an array `(frames, features)`;
    the notes are each clip's share of the attribution on quiet frames."""
    import keras

    layer = audio_layer(model)
    front, back, _ = split(model, layer)
    features, *extras = run_in_batches(front, waveforms.astype(np.float32), batch_size)
    values, scores, baseline = attribute(
        back, features, class_ids, extras=extras, method=method, steps=steps, batch_size=batch_size
    )
    transposed = isinstance(layer, (keras.layers.MelSpectrogram, keras.layers.STFTSpectrogram))
    maps = [v.T if transposed else v for v in values]  # always (frames, features)
    config = layer.get_config()
    frame_length = config.get("frame_length", config.get("sequence_length"))
    frame_step = config.get("frame_step", config.get("sequence_stride"))
    notes = []
    if frame_length and frame_step:
        for i, heat in enumerate(maps):
            quiet = _quiet_frames(waveforms[i], frame_length, frame_step, heat.shape[0])
            mass = np.abs(heat).sum(axis=1)
            notes.append(float(mass[quiet].sum() / max(mass.sum(), 1e-12)))
    return maps, layer.name, scores, baseline, notes


def _quiet_frames(waveform, frame_length, frame_step, num_frames):
    """Frames (centred at `t * frame_step`, as Keras's spectrogram layers frame) below `QUIET_DB` of the loudest."""
    padded = np.pad(np.asarray(waveform, dtype=np.float64), frame_length // 2)
    loudness = np.array(
        [
            np.sqrt(np.mean(padded[t * frame_step : t * frame_step + frame_length] ** 2) + 1e-20)
            for t in range(num_frames)
        ]
    )
    return 20 * np.log10(loudness / max(loudness.max(), 1e-10)) < QUIET_DB

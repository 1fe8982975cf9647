"""Audio and spectrogram augmenters from nlpaug, made deterministic, with defaults for short clips.

Waveforms: `"noise"` (white noise added), `"shift"` (time shift, silence filled in), `"speed"` (time
stretch), `"pitch"` (pitch shift in semitones), `"loudness"` (gain), `"mask"` (a stretch set to silence),
`"vtlp"` (vocal tract length perturbation, Jaitly & Hinton 2013: a speaker's voice made longer or shorter).
Speed, pitch and VTLP call librosa. Spectrograms (`(frequency, time)` arrays): `"frequency_mask"` and
`"time_mask"`, the masks of SpecAugment (Park et al., 2019).

nlpaug's defaults were made for long recordings (a 3-second shift, speed x0.5 to x2, pitch +-10 semitones,
effects kept off the first and last fifth of the clip); on a one-second word they erase or garble it, so
the defaults below are milder and cover the whole clip. A speed change or VTLP alters the number of
samples; the result is cut or padded with silence at the end back to the input's length, so that clips
stay the size the model takes.
"""

import nlpaug.augmenter.audio as naa
import nlpaug.augmenter.spectrogram as nas
import numpy as np

from recipes._common import check_int, check_number, check_one_of
from recipes.augment.core import Augmenter, Chain

_WHOLE = {"zone": (0.0, 1.0), "coverage": 1.0}
# name -> (nlpaug class, whether it takes `sampling_rate`, defaults that differ from nlpaug's)
AUDIO_AUGMENTERS = {
    "noise": (naa.NoiseAug, False, {**_WHOLE, "color": "white"}),
    "shift": (naa.ShiftAug, True, {"duration": 0.1, "direction": "random"}),
    "speed": (naa.SpeedAug, False, {**_WHOLE, "factor": (0.85, 1.15)}),
    "pitch": (naa.PitchAug, True, {**_WHOLE, "factor": (-2.0, 2.0)}),
    "loudness": (naa.LoudnessAug, False, {**_WHOLE, "factor": (0.5, 2.0)}),
    "mask": (naa.MaskAug, True, {"zone": (0.0, 1.0), "coverage": 0.1, "mask_with_noise": False}),
    "vtlp": (naa.VtlpAug, True, {**_WHOLE, "factor": (0.9, 1.1)}),
}
SPECTROGRAM_AUGMENTERS = {
    "frequency_mask": (nas.FrequencyMaskingAug, False, {"zone": (0.0, 1.0), "factor": (1, 8), "silence": True}),
    "time_mask": (nas.TimeMaskingAug, False, {"coverage": 0.1, "silence": True}),
}
# Root mean square of the added noise. nlpaug's noise has an RMS that depends on the clip length (an
# inverse FFT of unit Gaussians: about 0.006 on 16,000 samples); it is rescaled to this level. Spoken digits
# peak near 0.3-1.
DEFAULT_NOISE_LEVEL = 0.01


def _fixed_length(original, augmented):
    """`augmented` cut or zero-padded at the end to the length of `original`, in its dtype."""
    original, augmented = np.asarray(original), np.asarray(augmented)
    length = original.shape[0]
    if augmented.shape[0] >= length:
        augmented = augmented[:length]
    else:
        augmented = np.concatenate([augmented, np.zeros(length - augmented.shape[0], augmented.dtype)])
    return augmented.astype(original.dtype, copy=False)


class _ScaledNoise:
    """nlpaug's noise augmenter with the noise rescaled to a root mean square of `level`."""

    def __init__(self, augmenter, level):
        self.augmenter, self.level, self.name = augmenter, level, augmenter.name

    def augment(self, data, n=1):
        data = np.asarray(data)
        noises = self.augmenter.augment(np.zeros(data.shape, dtype=np.float64), n=n)  # the noise alone
        scaled = []
        for noise in noises:
            noise = np.asarray(noise, dtype=np.float64)
            rms = float(np.sqrt(np.mean(noise**2)))
            scaled.append(data + (self.level / rms if rms > 0 else 0.0) * noise)
        return scaled


def _array_check(name, ndim):
    def check(item):
        shape = np.shape(item)
        if len(shape) != ndim or 0 in shape or np.asarray(item).dtype.kind != "f":
            what = "1-D float waveform" if ndim == 1 else "2-D float (frequency, time) spectrogram"
            raise ValueError(
                f"the {name!r} augmenter takes a non-empty {what}. Received shape {shape}, "
                f"dtype {np.asarray(item).dtype}"
            )

    return check


def _build(table, name, family, sample_rate, options):
    cls, takes_rate, defaults = table[name]
    arguments = {**defaults, **options}
    if takes_rate:
        arguments["sampling_rate"] = sample_rate
    try:
        return cls(**arguments)
    except TypeError as error:
        raise ValueError(f"invalid options for the {name!r} {family} augmenter ({cls.__name__}): {error}") from None


def audio_augmenter(name, sample_rate=16000, noise_level=DEFAULT_NOISE_LEVEL, **options):
    """A deterministic waveform augmenter: one of nlpaug's, wrapped in an `Augmenter`.

    Example:

    ```python
    import recipes
    from recipes.augment import audio_augmenter

    waveforms, labels, _ = recipes.datasets.load_spoken_digits(num_per_digit=1)
    faster = audio_augmenter("speed", factor=(1.1, 1.2))
    faster(waveforms[0], seed=0).shape  # (16000,): the clip keeps its length
    ```

    Args:
        name: One of `AUDIO_AUGMENTERS`: `"noise"`, `"shift"`, `"speed"`, `"pitch"`, `"loudness"`,
            `"mask"`, `"vtlp"`.
        sample_rate: Int, defaults to 16000. Used by shift (its `duration` is in seconds), pitch, mask and
            VTLP.
        noise_level: Float, defaults to 0.01. Root mean square of the added noise (`"noise"` only;
            nlpaug's own depends on the clip length).
        **options: Passed to the nlpaug class over the defaults of this module (`factor=(low, high)` for
            speed, pitch, loudness and VTLP; `duration` in seconds for shift; `coverage` for mask).

    Returns:
        An `Augmenter` named `name`: `augmenter(waveform, seed)` returns a waveform of the same length and
        dtype.
    """
    name = check_one_of("name", name, tuple(sorted(AUDIO_AUGMENTERS)))
    sample_rate = check_int("sample_rate", sample_rate, minimum=1000)
    check_number("noise_level", noise_level, minimum=0)
    augmenter = _build(AUDIO_AUGMENTERS, name, "audio", sample_rate, options)
    if name == "noise":
        augmenter = _ScaledNoise(augmenter, noise_level)
    return Augmenter(augmenter, name=name, validate=_array_check(name, 1), postprocess=_fixed_length)


def spectrogram_augmenter(name, **options):
    """A deterministic spectrogram mask (SpecAugment): one of nlpaug's, wrapped in an `Augmenter`.

    Example:

    ```python
    import numpy as np
    from recipes.augment import spectrogram_augmenter

    spectrogram = np.ones((40, 100), dtype="float32")  # (frequency bins, frames)
    masked = spectrogram_augmenter("frequency_mask")(spectrogram, seed=0)
    int((masked == 0).all(axis=1).sum())  # the number of masked frequency bins
    ```

    Args:
        name: `"frequency_mask"` (a band of 1 to 8 consecutive frequency bins set to 0 over the whole
            clip) or `"time_mask"` (a run of frames set to 0, as nlpaug draws it).
        **options: Passed to the nlpaug class (`factor`, `zone`, `coverage`).

    Returns:
        An `Augmenter` named `name`: `augmenter(spectrogram, seed)` returns an array of the same shape.
    """
    name = check_one_of("name", name, tuple(sorted(SPECTROGRAM_AUGMENTERS)))
    augmenter = _build(SPECTROGRAM_AUGMENTERS, name, "spectrogram", None, options)
    return Augmenter(augmenter, name=name, validate=_array_check(name, 2))


# The voices `speaker_augmenter` makes by default, one draw of each per variant (see its docstring).
SPEAKER_AUGMENTATION = {"speed": (0.85, 1.15), "pitch": (-2.0, 2.0), "vtlp": (0.9, 1.1)}


def speaker_augmenter(sample_rate=16000, speed=None, pitch=None, vtlp=None):
    """New voices for speech clips: speed, then pitch, then vocal tract length (VTLP), in one `Chain`.

    Each call draws a speaking rate, a pitch shift and a VTLP warp, so that
    one variant of a clip sounds like another speaker saying the same word.
    On the shipped spoken digits (`recipes.tasks.shipped("audio")`, 30
    passes over the 748 training clips), variants made offline with
    `augment_dataset` take `models.audio.mfcc_cnn_classifier` on the 200
    clips of flite voices never heard in training from 0.829 +- 0.037 (no
    augmentation, 5 seeds) to 0.858 +- 0.025 (3 variants per clip, 5 seeds)
    and 0.896 +- 0.035 (6 variants per clip, 5 seeds). Measured with the CNN
    at Adam 0.003 and 3 variants, wider pitch shifts (+-4 semitones) gave
    0.840 +- 0.009 against 0.838 +- 0.042 with these defaults; speed
    x0.8-1.2, pitch +-3 and VTLP 0.85-1.15 together did worse (0.767 +-
    0.040 against 0.805 +- 0.035, the CNN without per-clip centring).

    Example:

    ```python
    import recipes
    from recipes.augment import augment_dataset, speaker_augmenter

    waveforms, labels, _ = recipes.datasets.load_spoken_digits(num_per_digit=5)
    bigger = augment_dataset((waveforms, labels), speaker_augmenter(), n=6, seed=0)
    bigger.x.shape  # (350, 16000): the 50 clips, then 6 variants of each
    ```

    Args:
        sample_rate: Int, defaults to 16000.
        speed: Optional `(low, high)` time-stretch factors, defaults to
            `SPEAKER_AUGMENTATION["speed"]`, (0.85, 1.15).
        pitch: Optional `(low, high)` shift in semitones, defaults to (-2, 2).
        vtlp: Optional `(low, high)` VTLP warp factors, defaults to (0.9, 1.1).

    Returns:
        A `recipes.augment.Chain` named `"speed+pitch+vtlp"`: `augmenter(waveform, seed)` returns a
        waveform of the same length and dtype.
    """
    factors = {"speed": speed, "pitch": pitch, "vtlp": vtlp}
    steps = []
    for name, factor in factors.items():
        factor = SPEAKER_AUGMENTATION[name] if factor is None else factor
        if np.shape(factor) != (2,) or not factor[0] <= factor[1]:
            raise ValueError(f"`{name}` must be a pair (low, high) with low <= high. Received: {name}={factor!r}")
        steps.append(audio_augmenter(name, sample_rate=sample_rate, factor=tuple(float(f) for f in factor)))
    return Chain(steps)

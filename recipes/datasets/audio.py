"""Spoken digits synthesised on this machine, as raw 16 kHz waveforms.

No speech corpus installs offline, so the words "zero" to "nine" are spoken
by speech synthesisers from Debian's packages: `espeak-ng` (8 English accents
times 16 voice variants, with random speed and pitch) for training, and
`flite` (4 voices espeak never uses) for testing on unseen speakers. The same
settings give byte-identical audio, so a seed fixes the data set; it is
generated once and cached.
"""

import concurrent.futures
import hashlib
import json
import os
import subprocess
import tempfile

import numpy as np
from scipy import signal

from recipes._common import check_int, check_number, check_one_of
from recipes.datasets._common import cache_dir, require_program

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ESPEAK_ACCENTS = (
    "en-us",
    "en-us-nyc",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
)
ESPEAK_VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "croak",
    "klatt",
    "klatt2",
    "klatt3",
)
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
_GENERATOR_VERSION = 1  # bump when the synthesis below changes, to invalidate caches


def _pcm_from_wav(data):
    """Samples and rate of a 16-bit PCM WAV, tolerating the unknown-length header espeak writes to a pipe."""
    rate = int.from_bytes(data[24:28], "little")
    start = data.find(b"data") + 8
    end = start + (len(data) - start) // 2 * 2
    return np.frombuffer(data[start:end], dtype="<i2").astype(np.float32) / 32768.0, rate


def _espeak(word, voice):
    accent, variant, speed, pitch = voice
    command = ["espeak-ng", "-v", f"{accent}+{variant}", "-s", str(speed), "-p", str(pitch)]
    result = subprocess.run([*command, "--stdout", word], capture_output=True, check=True)
    return _pcm_from_wav(result.stdout)


def _flite(word, voice):
    name, stretch, f0_mean = voice
    with tempfile.NamedTemporaryFile(suffix=".wav") as out:
        subprocess.run(
            [
                "flite",
                "-voice",
                name,
                "--setf",
                f"duration_stretch={stretch}",
                "--setf",
                f"int_f0_target_mean={f0_mean}",
                "-t",
                word,
                "-o",
                out.name,
            ],
            capture_output=True,
            check=True,
        )
        with open(out.name, "rb") as f:
            return _pcm_from_wav(f.read())


def _voice_plan(voices, count, rng):
    if voices == "espeak":
        return [
            (
                ESPEAK_ACCENTS[rng.integers(len(ESPEAK_ACCENTS))],
                ESPEAK_VARIANTS[rng.integers(len(ESPEAK_VARIANTS))],
                int(rng.integers(120, 281)),
                int(rng.integers(20, 81)),
            )
            for _ in range(count)
        ]
    return [
        (
            FLITE_VOICES[rng.integers(len(FLITE_VOICES))],
            round(float(rng.uniform(0.8, 1.25)), 2),
            int(rng.integers(90, 181)),
        )
        for _ in range(count)
    ]


def _speaker(voices, voice):
    """The voice without its per-utterance speed and pitch, as a real speaker varies them."""
    return f"espeak:{voice[0]}+{voice[1]}" if voices == "espeak" else f"flite:{voice[0]}"


def _fit_clip(samples, clip_samples, offset_fraction):
    """Trims the silence around the word and places it in a fixed-length clip."""
    loud = np.flatnonzero(np.abs(samples) > 0.05 * np.abs(samples).max())
    word = samples[loud[0] : loud[-1] + 1][:clip_samples]
    clip = np.zeros(clip_samples, dtype=np.float32)
    start = int(offset_fraction * (clip_samples - len(word)))
    clip[start : start + len(word)] = word
    return clip


def load_spoken_digits(num_per_digit=100, voices="espeak", seed=0, sample_rate=16000, clip_seconds=1.0, cache=True):
    """Spoken digits "zero" to "nine" as float waveforms, deterministic for a seed.

    Each clip is one synthesised word with its silence trimmed, placed at a
    random offset in a clip of `clip_seconds`, resampled to `sample_rate` with
    `scipy.signal.resample_poly`. Generating 1,000 clips takes about ten
    seconds on two cores; they are cached under `~/.cache/keras-recipes`
    (or `$KERAS_RECIPES_CACHE`).

    Example:

    >>> import recipes
    >>> waveforms, labels, speakers = recipes.datasets.load_spoken_digits(num_per_digit=2)
    >>> waveforms.shape, waveforms.dtype, labels.tolist()
    ((20, 16000), dtype('float32'), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9])

    Args:
        num_per_digit: Int, defaults to 100. Clips per digit.
        voices: `"espeak"` (8 accents x 16 variants, speed 120-280 words per
            minute, pitch 20-80) or `"flite"` (4 voices with varied duration
            and pitch, never heard in espeak data), defaults to `"espeak"`.
        seed: Int, defaults to 0. Picks the voice, speed, pitch and offset of
            every clip.
        sample_rate: Int, defaults to 16000.
        clip_seconds: Float, defaults to 1.0. Clip length; longer words are cut.
        cache: Bool, defaults to `True`. Read and write the on-disk cache.

    Returns:
        `(waveforms, labels, speakers)`: float32 `(10 * num_per_digit,
        clip_samples)` in [-1, 1], int64 labels 0-9 (ordered by digit), and
        a speaker per clip (`"espeak:en-gb+f3"`, `"flite:slt"`), for splits
        that keep a speaker's clips together.
    """
    voices = check_one_of("voices", voices, ("espeak", "flite"))
    num_per_digit = check_int("num_per_digit", num_per_digit)
    check_number("clip_seconds", clip_seconds, minimum=0, inclusive=False)
    sample_rate = check_int("sample_rate", sample_rate, minimum=1000)
    program = "espeak-ng" if voices == "espeak" else "flite"
    settings = dict(
        voices=voices,
        num_per_digit=num_per_digit,
        seed=seed,
        sample_rate=sample_rate,
        clip_seconds=clip_seconds,
        version=_GENERATOR_VERSION,
    )
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir("spoken_digits"), f"{voices}-{digest}.npz") if cache else None
    if path and os.path.exists(path):
        with np.load(path) as cached:
            return cached["waveforms"], cached["labels"], cached["speakers"]

    require_program(program, f"apt-get install {program}")
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10, dtype=np.int64), num_per_digit)
    plan = _voice_plan(voices, len(labels), rng)
    offsets = rng.uniform(0.0, 1.0, size=len(labels))
    synthesise = _espeak if voices == "espeak" else _flite
    clip_samples = int(round(clip_seconds * sample_rate))
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        spoken = list(pool.map(synthesise, [DIGIT_WORDS[d] for d in labels], plan))
    waveforms = np.stack(
        [
            _fit_clip(_resample(samples, rate, sample_rate), clip_samples, offset)
            for (samples, rate), offset in zip(spoken, offsets)
        ]
    )
    speakers = np.array([_speaker(voices, voice) for voice in plan])
    if path:
        tmp = path + f".{os.getpid()}.tmp.npz"
        np.savez(tmp, waveforms=waveforms, labels=labels, speakers=speakers)
        os.replace(tmp, path)
    return waveforms, labels, speakers


def _resample(samples, rate, target):
    if rate == target:
        return samples
    divisor = np.gcd(rate, target)
    return signal.resample_poly(samples, target // divisor, rate // divisor).astype(np.float32)

"""How often `shift_report` cries wolf, and how often it catches a planted shift.

Inputs: for each modality, `--splits` random splits of the same data into two halves (no shift: every "fail"
verdict is a false alarm), and the same splits with a shift planted in the second half (every "pass" is a
miss):

- tabular: Seattle weather, wind sent in km/h instead of m/s (x 3.6);
- text: Rotten Tomatoes, 1,000 vs 1,000 reviews, a third of the current reviews ending in a spam phrase;
- images: digits, the current half darkened to 60% ("night");
- audio: 50 vs 50 espeak-ng clips; planted: 50 flite clips, voices the reference never has.

Labels: the same random splits with the labels on both sides (every "fail" is a false alarm), then a label
shift planted in the current half (one class undersampled: caught when the report finds a label shift and no
concept shift) and a concept shift (two classes' labels swapped, or a share of a two-class task's labels
flipped, the class mix unchanged: caught when it finds a concept shift):

- tabular: Seattle weather, `weather` from the other columns (the date as its seasonal parts); label: 'rain'
  kept on 1 current day in 5; concept: 'sun' and 'rain' swapped;
- text: Rotten Tomatoes, 1,000 vs 1,000 reviews; label: 'rotten' kept on 1 review in 3; concept: 40% of the
  current labels flipped;
- images: digits; label: '3' kept on 1 image in 10; concept: '1' and '7' swapped;
- audio: 500 vs 500 espeak-ng clips of spoken digits; label: 'three' kept on 1 clip in 20 (with 50 clips a
  class, 1 in 10 leaves the chi-square over ten classes short of Holm's threshold in about one split in ten);
  concept: 'one' and 'seven' swapped.

Prints the rates per modality and the time per report. About 15 minutes for both parts.

Usage: python benchmarks/bench_shift.py [--splits 100] [--part inputs|labels|both]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import recipes  # noqa: E402
from recipes.debug import shift_report  # noqa: E402


def halves(n, seed, size):
    order = np.random.default_rng(seed).permutation(n)
    return order[:size], order[size : 2 * size]


def cases():
    """name -> (data, size per side, take(data, rows), plant(current, seed), modality)."""
    weather = recipes.datasets.load_seattle_weather()

    def km_per_hour(frame, seed):
        frame = frame.copy()
        frame["wind"] = frame["wind"] * 3.6
        return frame

    reviews = recipes.datasets.load_rotten_tomatoes().text.to_numpy()

    def spam(texts, seed):
        texts = texts.copy()
        rows = np.random.default_rng(seed).permutation(len(texts))[: len(texts) // 3]
        texts[rows] = [t + " click here for free tickets now" for t in texts[rows]]
        return texts

    images, _ = recipes.datasets.load_digits()
    espeak, _, _ = recipes.datasets.load_spoken_digits(num_per_digit=10)
    flite, _, _ = recipes.datasets.load_spoken_digits(num_per_digit=5, voices="flite")
    return {
        "tabular (Seattle weather, wind x 3.6)": (
            weather,
            len(weather) // 2,
            lambda d, r: d.iloc[r],
            km_per_hour,
            None,
        ),
        "text (Rotten Tomatoes, spam endings)": (reviews, 1000, lambda d, r: d[r], spam, "text"),
        "images (digits, darkened to 60%)": (
            images,
            len(images) // 2,
            lambda d, r: d[r],
            lambda x, s: (x * 0.6).astype(x.dtype),
            "image",
        ),
        "audio (espeak; planted: flite voices)": (espeak, 50, lambda d, r: d[r], lambda x, s: flite[:50], "audio"),
    }


def undersample(label, keep):
    """`plant(y, seed)` rows: all rows but those of `label`, of which a share `keep` (drawn with the seed)."""

    def rows(y, seed):
        return np.flatnonzero((y != label) | (np.random.default_rng(seed).random(len(y)) < keep))

    return rows


def swap(a, b):
    def relabel(y, seed):
        y = y.copy()
        y[y == a], y[y == b] = b, a
        return y

    return relabel


def flip(share):
    def relabel(y, seed):
        y = y.copy()
        rows = np.random.default_rng(seed).random(len(y)) < share
        y[rows] = 1 - y[rows]
        return y

    return relabel


def labelled_cases():
    """name -> (x, y, size per side, take(x, rows), label rows(y, seed), relabel(y, seed), modality, options)."""
    weather = recipes.datasets.load_seattle_weather()
    weather_x, weather_y = weather.drop(columns="weather"), weather.weather.to_numpy()
    reviews = recipes.datasets.load_rotten_tomatoes()
    images, digits = recipes.datasets.load_digits()
    clips, spoken, _ = recipes.datasets.load_spoken_digits(num_per_digit=100)
    rows = lambda d, r: d[r]  # noqa: E731
    return {
        "tabular (weather; rain 1 in 5; sun<->rain)": (
            weather_x,
            weather_y,
            len(weather) // 2,
            lambda d, r: d.iloc[r],
            undersample("rain", 0.2),
            swap("sun", "rain"),
            "table",
            {},
        ),
        "text (1,000 reviews; rotten 1 in 3; 40% flipped)": (
            reviews.text.to_numpy(),
            reviews.label.to_numpy(),
            1000,
            rows,
            undersample(0, 1 / 3),
            flip(0.4),
            "text",
            {},
        ),
        "images (digits; '3' 1 in 10; 1<->7)": (
            images,
            digits,
            len(digits) // 2,
            rows,
            undersample(3, 0.1),
            swap(1, 7),
            "image",
            {},
        ),
        "audio (500 clips; 'three' 1 in 20; 1<->7)": (
            clips,
            spoken,
            len(spoken) // 2,
            rows,
            undersample(3, 0.05),
            swap(1, 7),
            "audio",
            {"sample_rate": 16000},
        ),
    }


def bench_labels(splits):
    print(f"{'labels':50} {'false alarms':>14} {'label caught':>13} {'concept caught':>15} {'s/report':>9}")
    for name, (x, y, size, take, label_rows, relabel, modality, options) in labelled_cases().items():
        alarms = labels_caught = concepts_caught = 0
        start = time.perf_counter()
        for seed in range(splits):
            a, b = halves(len(y), seed, size)
            reference = (take(x, a), y[a])
            alarms += not shift_report(reference, (take(x, b), y[b]), modality=modality, seed=seed, **options).ok
            kept = b[label_rows(y[b], seed)]
            report = shift_report(reference, (take(x, kept), y[kept]), modality=modality, seed=seed, **options)
            labels_caught += report.label_shift.finding == "shift" and report.concept_shift.finding != "shift"
            report = shift_report(reference, (take(x, b), relabel(y[b], seed)), modality=modality, seed=seed, **options)
            concepts_caught += report.concept_shift.finding == "shift"
        seconds = (time.perf_counter() - start) / (3 * splits)
        print(
            f"{name:50} {alarms:>4} / {splits:<3} {alarms / splits:>5.0%} {labels_caught / splits:>13.0%}"
            f" {concepts_caught / splits:>15.0%} {seconds:>9.2f}",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=100, help="random splits per modality (default: 100)")
    parser.add_argument("--part", choices=("inputs", "labels", "both"), default="both", help="default: both")
    args = parser.parse_args()
    if args.part in ("inputs", "both"):
        bench_inputs(args.splits)
    if args.part in ("labels", "both"):
        bench_labels(args.splits)


def bench_inputs(splits):
    options = {"audio": {"sample_rate": 16000}}
    print(f"{'inputs':42} {'false alarms':>14} {'detected':>10} {'s/report':>9}")
    for name, (data, size, take, plant, modality) in cases().items():
        alarms = detected = 0
        start = time.perf_counter()
        for seed in range(splits):
            reference, current = (take(data, rows) for rows in halves(len(data), seed, size))
            extra = options.get(modality, {})
            alarms += not shift_report(reference, current, modality=modality, seed=seed, **extra).ok
            detected += not shift_report(reference, plant(current, seed), modality=modality, seed=seed, **extra).ok
        seconds = (time.perf_counter() - start) / (2 * splits)
        print(
            f"{name:42} {alarms:>4} / {splits:<3} {alarms / splits:>5.0%} {detected / splits:>9.0%} {seconds:>9.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

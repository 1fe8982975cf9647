"""How often `shift_report` cries wolf, and how often it catches a planted shift.

For each modality, `--splits` random splits of the same data into two halves (no shift: every "fail"
verdict is a false alarm), and the same splits with a shift planted in the second half (every "pass" is a
miss):

- tabular: Seattle weather, wind sent in km/h instead of m/s (x 3.6);
- text: Rotten Tomatoes, 1,000 vs 1,000 reviews, a third of the current reviews ending in a spam phrase;
- images: digits, the current half darkened to 60% ("night");
- audio: 50 vs 50 espeak-ng clips; planted: 50 flite clips, voices the reference never has.

Prints the false-alarm and detection rates per modality and the time per report. About 3 minutes.

Usage: python benchmarks/bench_shift.py [--splits 100]
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
        "tabular (Seattle weather, wind x 3.6)": (weather, len(weather) // 2, lambda d, r: d.iloc[r], km_per_hour, None),
        "text (Rotten Tomatoes, spam endings)": (reviews, 1000, lambda d, r: d[r], spam, "text"),
        "images (digits, darkened to 60%)": (images, len(images) // 2, lambda d, r: d[r],
                                             lambda x, s: (x * 0.6).astype(x.dtype), "image"),
        "audio (espeak; planted: flite voices)": (espeak, 50, lambda d, r: d[r], lambda x, s: flite[:50], "audio"),
    }  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=100, help="random splits per modality (default: 100)")
    args = parser.parse_args()
    options = {"audio": {"sample_rate": 16000}}
    print(f"{'modality':42} {'false alarms':>14} {'detected':>10} {'s/report':>9}")
    for name, (data, size, take, plant, modality) in cases().items():
        alarms = detected = 0
        start = time.perf_counter()
        for seed in range(args.splits):
            reference, current = (take(data, rows) for rows in halves(len(data), seed, size))
            extra = options.get(modality, {})
            alarms += not shift_report(reference, current, modality=modality, seed=seed, **extra).ok
            detected += not shift_report(reference, plant(current, seed), modality=modality, seed=seed, **extra).ok
        seconds = (time.perf_counter() - start) / (2 * args.splits)
        print(f"{name:42} {alarms:>4} / {args.splits:<3} {alarms / args.splits:>5.0%}"
              f" {detected / args.splits:>9.0%} {seconds:>9.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

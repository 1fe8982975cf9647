"""The effect of augmentation: test accuracy with vs without it, trained on a small real subset.

1. Text: Rotten Tomatoes, a few hundred training snippets, a TF-IDF logistic regression
   (`models.text.bag_of_words_classifier`), tested on the reviews of movies kept out of training. One
   row per text augmenter (WordNet synonyms, word swap/delete, typos, a mix).
2. Audio: spoken digits, a few espeak-ng clips per digit for training, an MFCC CNN
   (`models.audio.mfcc_cnn_classifier`), tested on flite voices never heard in training. One row per
   audio augmenter mix.

Each row is `recipes.augment.augmentation_effect`: both arms start from the same seed, take the same
number of steps and are scored on the same untouched test set; `--repeats` runs are averaged and the
effect counts a difference only beyond about two standard errors. About 7 minutes on 2 shared cores.

Usage: python benchmarks/bench_augment.py [--repeats 3] [--text-train 300] [--audio-per-digit 8] [--n 3]
"""

import argparse
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import recipes  # noqa: E402
from recipes.augment import (  # noqa: E402
    AUDIO_AUGMENTERS,
    OneOf,
    audio_augmenter,
    augmentation_effect,
    text_augmenter,
)


def text_split(train_size, test_movies_share=0.4, seed=0):
    """Train and test reviews of disjoint movies: a small training sample, a large test set."""
    reviews = recipes.datasets.load_rotten_tomatoes()
    movies = np.random.default_rng(seed).permutation(sorted(reviews.movie_name.unique()))
    test_movies = set(movies[: int(len(movies) * test_movies_share)])
    is_test = reviews.movie_name.isin(test_movies)
    train = reviews[~is_test].sample(train_size, random_state=seed)
    test = reviews[is_test]
    return (train.text.to_numpy(), train.label.to_numpy()), (test.text.to_numpy(), test.label.to_numpy())


BATCH_SIZE = 32


def passes(count, num_examples):
    """`total_examples` for `count` passes over `num_examples` in whole batches (a last, partial batch counts)."""
    return count * BATCH_SIZE * math.ceil(num_examples / BATCH_SIZE)


def row(name, report, seconds):
    baseline = " ".join(f"{a:.3f}" for a in report.baseline)
    augmented = " ".join(f"{a:.3f}" for a in report.augmented)
    print(
        f"  {name:<26} without {report.baseline_mean:.3f} [{baseline}]  with {report.augmented_mean:.3f} "
        f"[{augmented}]  {report.difference:+.3f} (+-{report.margin:.3f}): {report.effect}  ({seconds:.0f} s)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per arm, seeds 0, 1, ... (default: 3)")
    parser.add_argument("--text-train", type=int, default=300, help="real training reviews (default: 300)")
    parser.add_argument("--audio-per-digit", type=int, default=8, help="real espeak clips per digit (default: 8)")
    parser.add_argument("--n", type=int, default=3, help="synthetic variants per real row (default: 3)")
    parser.add_argument("--skip-text", action="store_true")
    parser.add_argument("--skip-audio", action="store_true")
    args = parser.parse_args()

    from models import audio, text

    if not args.skip_text:
        train, test = text_split(args.text_train)
        print(
            f"Rotten Tomatoes: {len(train[0])} training reviews, {len(test[0])} test reviews of other movies; "
            f"bag of words (TF-IDF, logistic regression), {args.n} synthetic per real row, {args.repeats} repeats"
        )

        def text_model(texts):
            return text.bag_of_words_classifier(texts, 2, learning_rate=1e-2)

        augmenters = {
            "synonym (WordNet)": text_augmenter("synonym", aug_p=0.2),
            "swap | delete": OneOf([text_augmenter("swap", aug_p=0.1), text_augmenter("delete", aug_p=0.1)]),
            "keyboard typos": text_augmenter("keyboard", aug_char_p=0.1, aug_word_p=0.1),
        }
        for name, augmenter in augmenters.items():
            start = time.perf_counter()
            report = augmentation_effect(
                text_model,
                train,
                test,
                augmenter,
                n=args.n,
                total_examples=passes(5, (args.n + 1) * len(train[0])),
                num_checkpoints=5,
                batch_size=BATCH_SIZE,
                repeats=args.repeats,
            )
            row(name, report, time.perf_counter() - start)

    if not args.skip_audio:
        waveforms, labels, _ = recipes.datasets.load_spoken_digits(num_per_digit=args.audio_per_digit, seed=0)
        test_waveforms, test_labels, speakers = recipes.datasets.load_spoken_digits(
            num_per_digit=30, voices="flite", seed=1
        )
        print(
            f"Spoken digits: {len(labels)} espeak-ng training clips, {len(test_labels)} test clips of "
            f"{len(set(speakers))} flite voices never heard in training; MFCC CNN, {args.n} synthetic per real "
            f"clip, {args.repeats} repeats"
        )

        def audio_model():
            return audio.mfcc_cnn_classifier(10, filters=32)

        augmenters = {
            "noise | shift | loudness": OneOf([audio_augmenter(k) for k in ("noise", "shift", "loudness")]),
            "speed | pitch | vtlp": OneOf([audio_augmenter(k) for k in ("speed", "pitch", "vtlp")]),
            "all seven": OneOf([audio_augmenter(k) for k in sorted(AUDIO_AUGMENTERS)]),
        }
        for name, augmenter in augmenters.items():
            start = time.perf_counter()
            report = augmentation_effect(
                audio_model,
                (waveforms, labels),
                (test_waveforms, test_labels),
                augmenter,
                n=args.n,
                total_examples=passes(10, (args.n + 1) * len(labels)),
                num_checkpoints=10,
                batch_size=BATCH_SIZE,
                repeats=args.repeats,
            )
            row(name, report, time.perf_counter() - start)


if __name__ == "__main__":
    main()

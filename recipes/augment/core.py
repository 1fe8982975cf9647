"""`Augmenter`: an nlpaug augmenter made repeatable, one output per input, fixed by a seed.

nlpaug draws from Python's `random` module and NumPy's global generator, so two calls on the same input
give different outputs and any other code touching those generators changes them. `Augmenter` seeds both
generators from the seed it is given right before each call, under a lock (threads and `tf.data` workers
cannot interleave), and restores their previous state afterwards: the same `(input, seed)` always gives the
same output, whatever ran before, and the caller's own random streams are left as they were.
"""

import hashlib
import random
import threading

import numpy as np

from recipes._common import check_int

_RNG_LOCK = threading.RLock()


def derive_seed(seed, *parts):
    """A 32-bit seed from `seed` and any strings or ints, stable across processes and platforms.

    Used to give every row (and every synthetic copy of it) its own seed, so that a row's augmentation
    depends on the row, not on its position in a batch or on which other rows are augmented. SHA-256 of
    the parts, not `hash()`, which Python randomises per process for strings.
    """
    text = "\x1f".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "little")


class Augmenter:
    """Wraps an nlpaug augmenter (or an nlpaug flow) so that each call is deterministic for a seed.

    Calling it with `(item, seed)` returns one augmented item: a string for text augmenters, a NumPy array
    for audio and spectrograms. Before the call, Python's `random` and NumPy's global generator are seeded
    from `seed`; after it, their states are put back. nlpaug returns nothing for empty input: the input is
    returned unchanged then.

    Example:

    ```python
    import nlpaug.augmenter.word as naw
    from recipes.augment import Augmenter

    swap = Augmenter(naw.RandomWordAug(action="swap"), name="swap")
    swap("a dark, dull thriller", seed=3) == swap("a dark, dull thriller", seed=3)  # True
    ```

    Args:
        augmenter: An nlpaug augmenter or flow (anything with `augment(data, n=1)`).
        name: Optional string, defaults to the nlpaug augmenter's `name`.
        validate: Optional callable `(item) -> None` that raises a `ValueError` for an input the augmenter
            cannot take, called before each call.
        postprocess: Optional callable `(original, augmented) -> augmented`, applied after each call (the
            audio augmenters use it to give the clip back its length).

    Attributes:
        augmenter: The wrapped nlpaug object.
        name: The name.
    """

    def __init__(self, augmenter, name=None, validate=None, postprocess=None):
        if not callable(getattr(augmenter, "augment", None)):
            raise ValueError(
                "`augmenter` must be an nlpaug augmenter or flow (an object with an `augment` method). "
                f"Received: {type(augmenter).__name__}"
            )
        self.augmenter = augmenter
        self.name = name or getattr(augmenter, "name", type(augmenter).__name__)
        self.validate, self.postprocess = validate, postprocess

    def __repr__(self):
        return f"Augmenter({self.name!r})"

    def __call__(self, item, seed=0):
        """Returns `item` augmented, the same for the same `seed`."""
        seed = check_int("seed", seed, minimum=0)
        if self.validate is not None:
            self.validate(item)
        with _RNG_LOCK:
            python_state, numpy_state = random.getstate(), np.random.get_state()
            random.seed(seed)
            np.random.seed(seed % 2**32)
            try:
                result = self.augmenter.augment(item, n=1)
            finally:
                random.setstate(python_state)
                np.random.set_state(numpy_state)
        if isinstance(result, list):
            result = result[0] if result else item
        elif isinstance(result, np.ndarray) and result.size == 0:
            result = item
        return self.postprocess(item, result) if self.postprocess else result

    def augment(self, items, seed=0):
        """Augments every item of a sequence; item `i` gets the seed `derive_seed(seed, i)`.

        Args:
            items: Sequence of strings or arrays (a 2-D array is read row by row).
            seed: Non-negative int, defaults to 0.

        Returns:
            A list with one augmented item per input item.
        """
        seed = check_int("seed", seed, minimum=0)
        return [self(item, derive_seed(seed, i)) for i, item in enumerate(items)]


class OneOf:
    """Applies one of several augmenters per call, chosen from the seed (uniformly, or with `weights`).

    Example:

    ```python
    from recipes.augment import OneOf, text_augmenter

    mixed = OneOf([text_augmenter("swap"), text_augmenter("delete")])
    mixed("a dark, dull thriller with a parting shot that misfires", seed=1)
    ```

    Args:
        augmenters: Non-empty sequence of `Augmenter`s (or of callables `(item, seed) -> item`).
        weights: Optional sequence of non-negative numbers, one per augmenter, defaults to equal weights.
        name: Optional string, defaults to the names joined by `"|"`.
    """

    def __init__(self, augmenters, weights=None, name=None):
        augmenters = list(augmenters)
        if not augmenters or not all(callable(a) for a in augmenters):
            raise ValueError(f"`augmenters` must be a non-empty sequence of augmenters. Received: {augmenters!r}")
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (len(augmenters),) or np.any(weights < 0) or weights.sum() <= 0:
                raise ValueError(
                    f"`weights` must hold {len(augmenters)} non-negative numbers, not all 0. Received: "
                    f"weights={weights.tolist()!r}"
                )
            weights = weights / weights.sum()
        self.augmenters, self.weights = augmenters, weights
        self.name = name or "|".join(getattr(a, "name", type(a).__name__) for a in augmenters)

    def __repr__(self):
        return f"OneOf({self.name!r})"

    def __call__(self, item, seed=0):
        seed = check_int("seed", seed, minimum=0)
        choice = np.random.default_rng(derive_seed(seed, "choice")).choice(len(self.augmenters), p=self.weights)
        return self.augmenters[choice](item, derive_seed(seed, "item"))

    augment = Augmenter.augment


class Chain:
    """Applies several augmenters one after the other: each call gives one item that went through them all.

    Augmenter `i` is seeded with `derive_seed(seed, i)`, so the steps draw independently and the same seed
    gives the same output.

    Example:

    ```python
    import recipes
    from recipes.augment import Chain, audio_augmenter

    waveforms, _, _ = recipes.datasets.load_spoken_digits(num_per_digit=1)
    faster_and_higher = Chain([audio_augmenter("speed"), audio_augmenter("pitch")])
    faster_and_higher(waveforms[0], seed=0).shape  # (16000,)
    ```

    Args:
        augmenters: Non-empty sequence of `Augmenter`s (or of callables `(item, seed) -> item`), in order.
        name: Optional string, defaults to the names joined by `"+"`.
    """

    def __init__(self, augmenters, name=None):
        augmenters = list(augmenters)
        if not augmenters or not all(callable(a) for a in augmenters):
            raise ValueError(f"`augmenters` must be a non-empty sequence of augmenters. Received: {augmenters!r}")
        self.augmenters = augmenters
        self.name = name or "+".join(getattr(a, "name", type(a).__name__) for a in augmenters)

    def __repr__(self):
        return f"Chain({self.name!r})"

    def __call__(self, item, seed=0):
        seed = check_int("seed", seed, minimum=0)
        for i, augmenter in enumerate(self.augmenters):
            item = augmenter(item, derive_seed(seed, i))
        return item

    augment = Augmenter.augment

"""Data augmentation for text, audio and images, deterministic for a seed and offline.

- `text_augmenter(name, **options)`: nlpaug's character (keyboard, OCR, random) and word (swap, delete,
  split, spelling, WordNet synonyms) augmenters (`recipes.augment.text`); synonyms come from Debian's
  WordNet with nlpaug's POS tagging replaced (`UntaggedSynonymAug`, `recipes.augment.wordnet`).
- `audio_augmenter(name, sample_rate=16000, **options)`: nlpaug's noise, shift, speed, pitch, loudness,
  mask and VTLP, sized for short clips; `speaker_augmenter()`: speed, pitch and VTLP chained, new voices
  for speech; `spectrogram_augmenter(name)`: frequency and time masks (`recipes.augment.audio`).
- `Augmenter`, `OneOf`, `Chain`: any nlpaug augmenter or flow made repeatable, a per-row choice among
  augmenters, and augmenters applied one after the other (`recipes.augment.core`).
- `augment_dataset(data, augmenter, n=..., seed=...)`: a labelled set multiplied offline, keys and labels
  kept, synthetic rows tagged; `on_the_fly(dataset, augmenter)`: the `tf.data` path
  (`recipes.augment.dataset`).
- `augmentation_check(model, x)`: random image layers on in training, off at inference
  (`recipes.augment.images`).
- `augmentation_effect(model_fn, train_data, test_data, augmenter)`: test accuracy with vs without
  augmentation (`recipes.augment.effect`).

The two checks return a `recipes.report.Report` (`verdict`, `ok`, `summary`, `advice`, `to_markdown()`,
`to_dict()`).

Every augmenter is called as `augmenter(item, seed)`: nlpaug draws from Python's and NumPy's global
generators, which are seeded from `seed` around each call and then restored, so the same seed gives the
same output whatever ran before. Names are imported on first use, as in `recipes`.
"""

from recipes._lazy import lazy_exports

_EXPORTS = {
    "Augmenter": "recipes.augment.core",
    "OneOf": "recipes.augment.core",
    "Chain": "recipes.augment.core",
    "derive_seed": "recipes.augment.core",
    "TEXT_AUGMENTERS": "recipes.augment.text",
    "UntaggedSynonymAug": "recipes.augment.text",
    "text_augmenter": "recipes.augment.text",
    "AUDIO_AUGMENTERS": "recipes.augment.audio",
    "SPECTROGRAM_AUGMENTERS": "recipes.augment.audio",
    "audio_augmenter": "recipes.augment.audio",
    "spectrogram_augmenter": "recipes.augment.audio",
    "SPEAKER_AUGMENTATION": "recipes.augment.audio",
    "speaker_augmenter": "recipes.augment.audio",
    "AugmentedArrays": "recipes.augment.dataset",
    "augment_dataset": "recipes.augment.dataset",
    "on_the_fly": "recipes.augment.dataset",
    "AugmentationCheck": "recipes.augment.images",
    "augmentation_check": "recipes.augment.images",
    "EffectReport": "recipes.augment.effect",
    "augmentation_effect": "recipes.augment.effect",
    "install_wordnet": "recipes.augment.wordnet",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
del lazy_exports

"""Debugging recipes: checks that end in a verdict a person can act on, not a number to interpret.

- `overfit_check(model_fn, x, y, ...)`: can a fresh model learn a small sample by heart? PASS, or FAIL
  with the causes found and the bug checklist in order (`recipes.debug.overfit`).
- `diagnose(history, target=None)`: underfitting, overfitting, good, not converged or diverged, from the
  training and validation curves, with remedies in order and the package call for each
  (`recipes.debug.fitting`).
- `mode_check(model, sample)`: inference that is not deterministic, BatchNormalization statistics that never
  move, a custom training step that calls the model without `training=True`; each finding names the layer
  and the fix (`recipes.debug.modes`).

Names are imported on first use, as in `recipes`.
"""

import importlib

_EXPORTS = {
    "CHECKLIST": "recipes.debug.overfit",
    "OverfitReport": "recipes.debug.overfit",
    "overfit_check": "recipes.debug.overfit",
    "Diagnosis": "recipes.debug.fitting",
    "Remedy": "recipes.debug.fitting",
    "VERDICTS": "recipes.debug.fitting",
    "diagnose": "recipes.debug.fitting",
    "ModeReport": "recipes.debug.modes",
    "mode_check": "recipes.debug.modes",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recipes.debug' has no attribute {name!r}")


def __dir__():
    return __all__

"""Debugging recipes: checks that end in a verdict a person can act on, not a number to interpret.

Every check returns a `recipes.report.Report`: a `verdict` (`"pass"`, `"warn"`, `"fail"`, `"error"` or
`"info"`), `ok`, a one-line `summary`, `advice` naming the calls that fix what was found, `to_markdown()`,
`to_dict()` (JSON) and `plot(path)` where there is a figure.

- `overfit_check(model_fn, data, ...)`: can a fresh model learn a small sample by heart? Pass, or fail
  with the causes found and the bug checklist in order (`recipes.debug.overfit`).
- `diagnose(history, target_score=None)`: underfitting, overfitting, good, not converged or diverged, from the
  training and validation curves, with remedies in order and the package call for each
  (`recipes.debug.fitting`).
- `mode_check(model, x)`: inference that is not deterministic, BatchNormalization statistics that never
  move, a custom training step that calls the model without `training=True`; each finding names the layer
  and the fix (`recipes.debug.modes`).
- `error_analysis(model, data)`: confusion matrix, most confused pairs with the rows to look at,
  largest-loss and confidently wrong rows (`recipes.debug.errors`).
- `explain(model, x)`: which tokens, pixels, time-frequency cells or columns pushed the model towards a
  class (integrated gradients, tf-keras-vis Grad-CAM and saliency), with PNG plots
  (`recipes.debug.explanations`).
- `search_hyperparameters(model_fn, space, train_data, validation_data, ...)`: random, grid, Bayesian or
  Hyperband search over a factory's arguments, every trial trained with virtual epochs (`recipes.debug.search`).
- `shift_report(reference_data, current_data)`: data shift between training, test and serving data of any
  modality, per feature and overall, each shifted feature with what to do (`recipes.debug.shift`).
- `doctor(model_fn, train_data, validation_data, ...)`: a list of checks (`default_checks`, or your own) on
  one model factory and its data, written up as a Markdown and HTML report with the figures, verdicts
  first (`recipes.debug.checkup`, the checks in `recipes.debug.checks`).

Names are imported on first use, as in `recipes`. No name here is also the name of a submodule, so that
importing a submodule never hides a function.
"""

from recipes._lazy import lazy_exports

_EXPORTS = {
    "CHECKLIST": "recipes.debug.overfit",
    "OverfitReport": "recipes.debug.overfit",
    "overfit_check": "recipes.debug.overfit",
    "Diagnosis": "recipes.debug.fitting",
    "FINDINGS": "recipes.debug.fitting",
    "Remedy": "recipes.debug.fitting",
    "diagnose": "recipes.debug.fitting",
    "Finding": "recipes.debug.modes",
    "ModeReport": "recipes.debug.modes",
    "mode_check": "recipes.debug.modes",
    "ErrorReport": "recipes.debug.errors",
    "error_analysis": "recipes.debug.errors",
    "Explanation": "recipes.debug.explanations",
    "explain": "recipes.debug.explanations",
    "SearchResult": "recipes.debug.search",
    "search_hyperparameters": "recipes.debug.search",
    "ShiftReport": "recipes.debug.shift",
    "LabelShift": "recipes.debug.shift.labels",
    "ConceptShift": "recipes.debug.shift.concept",
    "shift_report": "recipes.debug.shift",
    "Case": "recipes.debug.checks",
    "default_checks": "recipes.debug.checks",
    "CheckResult": "recipes.debug.checkup",
    "DoctorReport": "recipes.debug.checkup",
    "doctor": "recipes.debug.checkup",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
del lazy_exports

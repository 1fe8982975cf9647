"""What to do when a feature moved, per family of feature, when the domain classifier tells the sides apart,
and when the labels moved (label shift) or the inputs' labels changed (concept shift)."""

ACTIONS = {
    "numeric": "check the pipeline for a unit, scaling or default-value change in this column; if the change is "
    "real, retrain on recent data (and re-adapt its Normalization layer)",
    "date": "the current data covers another period: retrain on recent data, and let the model see seasonal "
    "parts of the date (recipes.layers.DateFeatures) rather than the absolute date",
    "season": "the two periods hold the seasons or days of the week in other proportions: weight the training rows "
    "to the current mix, or choose split dates that give each side whole years",
    "categorical": "check the pipeline for renamed or new categories; re-adapt the StringLookup vocabulary and "
    "retrain on data with the current mix",
    "missing": "check the pipeline that fills this column (a join, a source or a default that changed); train with "
    "missing values if they are here to stay",
    "text length": "check truncation and concatenation in the pipeline; if real, retrain with such texts and make "
    "sure the sequence length covers them",
    "out-of-vocabulary": "the current texts use words the model never saw: re-adapt TextVectorization on recent "
    "text and retrain",
    "brightness": "check exposure, the camera and the pixel scaling (0-255 vs 0-1) in the serving pipeline; "
    "augment with keras.layers.RandomBrightness or retrain on such images",
    "contrast": "check exposure and the pixel scaling in the serving pipeline; augment with "
    "keras.layers.RandomContrast or retrain on such images",
    "colour": "check the channel order (RGB vs BGR) and white balance; augment colour or retrain on such images",
    "loudness": "normalise loudness (peak or RMS) in preprocessing, or augment the gain in training",
    "duration": "check the sample rate, resampling and clip length in the pipeline; if real, retrain with such clips",
    "voice": "the voices, microphones or noise differ: add recordings like the current ones to training and "
    "retrain; augment with noise",
}
DOMAIN_ACTION = (
    "the sides are easy to tell apart: retrain on data that includes the current distribution, or weight the "
    "training rows by the classifier's odds p/(1-p) that they look current (importance weighting)"
)
# Label shift (the class frequencies moved, each class's inputs did not): what to do, in order.
LABEL_ACTIONS = (
    "reweight the training rows by the class-prior ratio current/reference (smoothed): "
    "model.fit(..., class_weight=shift_report(...).label_shift.class_weight) in Keras, or resample the training "
    "rows to the current mix",
    "or recalibrate the trained model without retraining: shift_report(...).label_shift.correct_probabilities("
    "model.predict(x)) multiplies its probabilities by that ratio and renormalises (prior-shift correction)",
    "if the labelling rules changed rather than the mix (the same inputs now get another class: see the concept "
    "shift), relabel the training data with the current rules, or retrain on recent labelled data",
)
TARGET_ACTIONS = (
    "if the world moved, retrain on recent labelled data, or weight the training rows so that the target's "
    "distribution matches the current one (sample_weight in model.fit)",
    "or recalibrate: fit a linear map from the model's predictions to the current targets on recent labelled data",
    "if the target is measured another way now (units, definition, source), relabel one side to match the other",
)
# Concept shift (the same inputs map to other labels): reweighting cannot fix it.
CONCEPT_ACTIONS = (
    "check the labelling between the two sides (guidelines, annotators, the label pipeline, a changed definition); "
    "where the current labels are right, relabel the training data or retrain on recent labelled data: "
    "reweighting rows or classes cannot fix a change in which label an input gets",
    "read the near-identical pairs with different labels: shift_report(...).concept_shift.pairs",
)

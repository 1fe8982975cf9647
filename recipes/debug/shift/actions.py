"""What to do when a feature moved, per family of feature, and when the domain classifier tells the sides apart."""

ACTIONS = {
    "numeric": "check the pipeline for a unit, scaling or default-value change in this column; if the change is "
    "real, retrain on recent data (and re-adapt its Normalization layer)",
    "date": "the current data covers another period: retrain on recent data, and let the model see seasonal "
    "parts of the date (recipes.layers.DateFeatures) rather than the absolute date",
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
    "duration": "check the sample rate, resampling and clip length in the pipeline; if real, retrain with such "
    "clips",
    "voice": "the voices, microphones or noise differ: add recordings like the current ones to training and "
    "retrain; augment with noise",
}
DOMAIN_ACTION = (
    "the sides are easy to tell apart: retrain on data that includes the current distribution, or weight the "
    "training rows by the classifier's odds p/(1-p) that they look current (importance weighting)"
)

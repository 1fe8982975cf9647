"""Baseline model factories: compiled Keras models whose inputs are raw data.

Feature engineering (tokenising, normalising, feature extraction) is a layer of
each model, so the exported SavedModel takes what clients have: text,
waveforms, image bytes, date strings.
"""

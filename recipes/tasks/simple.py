"""The classic simple model of a task, fitted with scikit-learn: the bar every network must clear.

A linear model on the features practitioners have used for decades: TF-IDF
of words and word pairs for text, the pixels for images, MFCC statistics for
audio, standardised numbers and one-hot categories (and month and weekday
for dates) for tables; logistic regression for classes, ridge regression
for numbers. Its regularisation is chosen on the validation split. A
network that does not beat it is not yet a baseline worth the name.

scikit-learn does the fitting; this module only turns each modality's raw
examples into the classic features (none of the libraries does that for a
task's mix of columns).
"""

import warnings

import numpy as np

# Regularisation strengths tried on the validation split.
LOGISTIC_CS = (0.1, 1.0, 10.0)
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0)
# Pixel models on images larger than this many values see an average-pooled copy: the classic model's
# features, at a size scikit-learn fits in seconds.
MAX_PIXEL_VALUES = 4096
# Pixels are many dense features: one strength, the one validation picks on Fashion-MNIST, and 100 lbfgs
# iterations keep the fit near ten seconds on 12,000 images (a search over LOGISTIC_CS takes a minute).
PIXEL_C = 0.1


class SimpleModel:
    """A fitted scikit-learn model of a task's classic features; see the module docstring.

    Build it with `Task.simple_model()`.

    Example:

    ```python
    from recipes.tasks import shipped

    task = shipped("text")
    simple = task.simple_model()
    print(simple.description, simple.score("test"))    # TF-IDF ... + logistic regression 0.72
    ```

    Attributes:
        description: What the model is, e.g. `"logistic regression on pixels"`.
        hyperparameter: The regularisation chosen on the validation split, as `"C=1"` or `"alpha=10"`.
        metric: The task's metric (`"accuracy"` or `"mean_absolute_error"`).
    """

    def __init__(self, task):
        self._task = task
        self.metric = task.metric
        self._features = _features_for(task)
        self.description = f"{self._features.description} + " + (
            "logistic regression" if task.problem == "classification" else "ridge regression"
        )
        x_train, y_train = task.arrays("train")
        x_validation, y_validation = task.arrays("validation")
        self._features.fit(x_train)
        train, validation = self._features.transform(x_train), self._features.transform(x_validation)
        best = None
        if task.problem == "regression":
            strengths = RIDGE_ALPHAS
        else:
            strengths = (PIXEL_C,) if task.modality == "image" else LOGISTIC_CS
        for value in strengths:
            model = _estimator(task.problem, value, 100 if task.modality == "image" else 300).fit(train, y_train)
            score = _metric(task.problem, model.predict(validation), y_validation)
            if best is None or (score > best[0] if task.problem == "classification" else score < best[0]):
                best = (score, model, value)
        self._model = best[1]
        self.hyperparameter = f"{'C' if task.problem == 'classification' else 'alpha'}={best[2]:g}"

    def predict(self, x):
        """Predictions for raw examples as `Task.arrays` gives them: class positions, or values."""
        return self._model.predict(self._features.transform(x))

    def score(self, split="test"):
        """The model's `metric` on a split of the task."""
        x, y = self._task.arrays(split)
        return _metric(self._task.problem, self.predict(x), y)

    def __repr__(self):
        return f"SimpleModel({self.description!r}, {self.hyperparameter})"


def _estimator(problem, value, max_iter):
    if problem == "classification":
        from sklearn.linear_model import LogisticRegression

        return _Quiet(LogisticRegression(C=value, max_iter=max_iter))
    from sklearn.linear_model import Ridge

    return Ridge(alpha=value)


class _Quiet:
    """A logistic regression whose convergence warnings stay quiet: its iterations are a budget, not a bug."""

    def __init__(self, model):
        self.model = model

    def fit(self, x, y):
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(x, y)
        return self

    def predict(self, x):
        return self.model.predict(x)


def _metric(problem, predictions, y):
    if problem == "classification":
        return float(np.mean(np.asarray(predictions) == y))
    return float(np.mean(np.abs(np.asarray(predictions, dtype="float64") - y)))


def _features_for(task):
    if task.modality == "text":
        return _TextFeatures()
    if task.modality == "image":
        return _PixelFeatures()
    if task.modality == "audio":
        return _MfccFeatures(task.sample_rate)
    return _TableFeatures(task.features, task.column_types)


class _TextFeatures:
    description = "TF-IDF of words and word pairs"

    def fit(self, texts):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1).fit(_texts(texts))

    def transform(self, texts):
        return self.vectorizer.transform(_texts(texts))


def _texts(x):
    """A text task's examples (an array of strings, or a dict holding one text column) as a list of strings."""
    if isinstance(x, dict):
        (x,) = x.values()
    return [str(text) for text in np.asarray(x).reshape(-1)]


class _PixelFeatures:
    description = "pixels"

    def fit(self, images):
        self.pool = 1
        values = int(np.prod(images.shape[1:]))
        while values // (self.pool * self.pool) > MAX_PIXEL_VALUES:
            self.pool += 1

    def transform(self, images):
        x = np.asarray(images, dtype="float32") / 255.0
        if self.pool > 1:
            height, width = (x.shape[1] // self.pool) * self.pool, (x.shape[2] // self.pool) * self.pool
            x = x[:, :height, :width]
            x = x.reshape(len(x), height // self.pool, self.pool, width // self.pool, self.pool, *x.shape[3:])
            x = x.mean(axis=(2, 4))
        return x.reshape(len(x), -1)


class _MfccFeatures:
    """13 MFCCs and their deltas over 25 ms frames every 10 ms, each summarised by its mean and standard
    deviation over the frames within 30 dB of the clip's loudest (the word, not the silence around it),
    then standardised. Computed with `tf.signal` on all clips at once: librosa's clip-by-clip loop takes
    about a minute on a thousand clips."""

    description = "MFCC statistics"

    def __init__(self, sample_rate):
        self.sample_rate = int(sample_rate or 16000)

    def fit(self, waveforms):
        from sklearn.preprocessing import StandardScaler

        self.scaler = StandardScaler().fit(self._statistics(waveforms))

    def transform(self, waveforms):
        return self.scaler.transform(self._statistics(waveforms))

    def _statistics(self, waveforms, batch_size=256):
        return np.concatenate(
            [self._batch_statistics(waveforms[i : i + batch_size]) for i in range(0, len(waveforms), batch_size)]
        )

    def _batch_statistics(self, waveforms):
        import tensorflow as tf

        frame, step = int(0.025 * self.sample_rate), int(0.010 * self.sample_rate)
        fft_length = 1 << (frame - 1).bit_length()
        spectrum = tf.abs(tf.signal.stft(tf.constant(waveforms, "float32"), frame, step, fft_length)) ** 2
        mel = tf.signal.linear_to_mel_weight_matrix(
            40, fft_length // 2 + 1, self.sample_rate, 20.0, self.sample_rate / 2
        )
        mfcc = tf.signal.mfccs_from_log_mel_spectrograms(tf.math.log(tf.tensordot(spectrum, mel, 1) + 1e-6))
        mfcc = mfcc[..., :13].numpy()  # (clips, frames, 13)
        energy = 10 * np.log10(spectrum.numpy().sum(-1) + 1e-10)
        voiced = (energy >= energy.max(axis=1, keepdims=True) - 30.0)[..., None]
        delta = np.gradient(mfcc, axis=1) if mfcc.shape[1] > 1 else np.zeros_like(mfcc)
        parts = []
        for values in (mfcc, delta):
            count = voiced.sum(axis=1)
            mean = (values * voiced).sum(axis=1) / count
            std = np.sqrt((((values - mean[:, None]) ** 2) * voiced).sum(axis=1) / count)
            parts += [mean, std]
        return np.concatenate(parts, axis=1)


class _TableFeatures:
    """Numbers standardised (a missing one is the training mean), categories one-hot (an unseen one all
    zeros), dates as one-hot month and weekday, text columns as TF-IDF of words."""

    def __init__(self, features, column_types):
        self.kinds = {name: column_types[name].split(" ")[0] for name in features}
        self.date_formats = {
            name: column_types[name][len("date (") : -1] for name in features if self.kinds[name] == "date"
        }
        used = sorted(set(self.kinds.values()))
        names = {"number": "standardised numbers", "category": "one-hot categories", "date": "month and weekday"}
        names["text"] = "TF-IDF of text"
        self.description = ", ".join(names[kind] for kind in ("number", "category", "date", "text") if kind in used)

    def fit(self, columns):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        self.means = {}
        for name, kind in self.kinds.items():
            if kind == "number":
                values = np.asarray(columns[name], dtype="float64")
                self.means[name] = float(np.nanmean(values)) if np.isfinite(values).any() else 0.0
        self.parts = {}
        for name, kind in self.kinds.items():
            values = self._values(name, columns[name])
            if kind == "number":
                self.parts[name] = StandardScaler().fit(values)
            elif kind == "text":
                self.parts[name] = TfidfVectorizer(min_df=2, sublinear_tf=True).fit(values)
            else:
                self.parts[name] = OneHotEncoder(handle_unknown="ignore").fit(values)

    def transform(self, columns):
        import scipy.sparse

        blocks = [self.parts[name].transform(self._values(name, columns[name])) for name in self.kinds]
        return scipy.sparse.hstack([scipy.sparse.csr_matrix(block) for block in blocks]).tocsr()

    def _values(self, name, values):
        import pandas as pd

        kind = self.kinds[name]
        if kind == "number":
            values = np.asarray(values, dtype="float64").reshape(-1, 1)
            return np.where(np.isfinite(values), values, self.means[name])
        if kind == "text":
            return [str(value) for value in values]
        if kind == "date":
            from recipes.tasks.columns import STORED_DATE_FORMAT, STORED_DATES

            date_format = self.date_formats[name]
            date_format = STORED_DATE_FORMAT if date_format == STORED_DATES else date_format
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a value that does not parse is a date without month or weekday
                dates = pd.to_datetime(pd.Series([str(v) for v in values]), format=date_format, errors="coerce")
            return np.stack([dates.dt.month.fillna(0).to_numpy(), dates.dt.day_of_week.fillna(-1).to_numpy()], 1)
        return np.asarray([str(value) for value in values], dtype=object).reshape(-1, 1)

"""Text classifiers that take raw strings."""

import keras
import numpy as np


def _check_texts(texts):
    texts = np.asarray(texts)
    if texts.ndim != 1 or texts.size == 0 or texts.dtype.kind not in "USO":
        raise ValueError(
            "`train_texts` must be a non-empty 1-D sequence of strings. "
            f"Received shape {texts.shape} and dtype {texts.dtype}"
        )
    return texts.astype(str)


def bag_of_words_classifier(
    train_texts, num_classes, max_tokens=20_000, ngrams=2, learning_rate=1e-3, name="bag_of_words"
):
    """Logistic regression on TF-IDF of words and word pairs: the baseline to beat.

    The `TextVectorization` layer is adapted on `train_texts` and is part of
    the model, so the model takes raw strings, `model.save` stores the
    vocabulary, and one weight per token and class explains every prediction.

    Example:

    ```python
    import recipes
    from models import text

    reviews = recipes.datasets.load_rotten_tomatoes()
    model = text.bag_of_words_classifier(reviews.text, num_classes=2)
    model.fit(reviews.text.to_numpy(), reviews.label.to_numpy(), epochs=2)
    model.predict(np.array(["A gripping, beautifully shot thriller."]))
    ```

    Args:
        train_texts: 1-D sequence of training strings, to build the vocabulary.
        num_classes: Int >= 2. Labels are ints `0..num_classes - 1`.
        max_tokens: Int, defaults to 20000. Vocabulary size, most frequent first.
        ngrams: Int, defaults to 2. Longest word n-gram in the vocabulary.
        learning_rate: Float, defaults to 0.001 (Adam).
        name: Model name, defaults to `"bag_of_words"`.

    Returns:
        A compiled `keras.Model` from a string input `text` to class
        probabilities, with loss `sparse_categorical_crossentropy` and metric
        `accuracy`.
    """
    train_texts = _check_texts(train_texts)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an int >= 2. Received: num_classes={num_classes!r}")
    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens, ngrams=ngrams, output_mode="tf_idf", name="tfidf"
    )
    vectorizer.adapt(train_texts)
    text = keras.Input(shape=(), dtype="string", name="text")
    probabilities = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(
        vectorizer(text)
    )
    model = keras.Model(text, probabilities, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model

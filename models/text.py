"""Text classifiers that take raw strings.

Every model here starts with a Keras `TextVectorization` layer adapted on the
training texts, so the model, its `.keras` file and its SavedModel take raw
strings and carry their vocabulary.
"""

import keras
import numpy as np

from models.common import classify, dtype_policy, resolve_class_names


def _check_texts(texts):
    texts = np.asarray(texts)
    if texts.ndim != 1 or texts.size == 0 or texts.dtype.kind not in "USO":
        raise ValueError(
            "`train_texts` must be a non-empty 1-D sequence of strings. "
            f"Received shape {texts.shape} and dtype {texts.dtype}"
        )
    return texts.astype(str)


def _vectorizer(train_texts, **kwargs):
    vectorizer = keras.layers.TextVectorization(**kwargs)
    vectorizer.adapt(_check_texts(train_texts))
    return vectorizer


def _text_input(input_name):
    if not isinstance(input_name, str) or not input_name:
        raise ValueError(f"`input_name` must be a non-empty string. Received: input_name={input_name!r}")
    return keras.Input(shape=(), dtype="string", name=input_name)


def _token_ids(train_texts, max_tokens, sequence_length, input_name):
    """The raw string input and its token ids, `sequence_length` per text (padded with 0 or cut)."""
    vectorizer = _vectorizer(train_texts, max_tokens=max_tokens, output_sequence_length=sequence_length, name="tokens")
    text = _text_input(input_name)
    return text, vectorizer(text)


def bag_of_words_classifier(
    train_texts,
    num_classes,
    class_names=None,
    max_tokens=20_000,
    ngrams=2,
    learning_rate=1e-3,
    name="bag_of_words",
    input_name="text",
):
    """Logistic regression on TF-IDF of words and word pairs: the baseline to beat.

    Linear, so it explains itself: `top_tokens(model)` lists the words that
    weigh most for each class.

    Example:

    ```python
    import recipes
    from models import text

    reviews = recipes.datasets.load_rotten_tomatoes()
    model = text.bag_of_words_classifier(reviews.text, 2, class_names=["rotten", "fresh"])
    model.fit(reviews.text.to_numpy(), reviews.label.to_numpy(), epochs=2, verbose=0)
    text.top_tokens(model, k=5)["fresh"]
    ```

    Args:
        train_texts: 1-D sequence of training strings, to build the vocabulary.
        num_classes: Int >= 2. Labels are ints `0..num_classes - 1`.
        class_names: Optional names in label order, defaults to `"0"`, `"1"`, ...
        max_tokens: Int, defaults to 20000. Vocabulary size, most frequent first.
        ngrams: Int, defaults to 2. Longest word n-gram in the vocabulary.
        learning_rate: Float, defaults to 0.001 (Adam).
        name: Model name, defaults to `"bag_of_words"`.
        input_name: String, defaults to `"text"`. The name of the model's
            input, which is also the served input's: a text column's own name.

    Returns:
        A compiled `keras.Model` from a string input `text` to class
        probabilities (loss `sparse_categorical_crossentropy`, metric
        `accuracy`). An empty string is a valid input to the Keras model (all
        zero features) but is refused by the exported signature.
    """
    class_names = resolve_class_names(num_classes, class_names)
    vectorizer = _vectorizer(train_texts, max_tokens=max_tokens, ngrams=ngrams, output_mode="tf_idf", name="tfidf")
    text = _text_input(input_name)
    return classify(vectorizer(text), text, class_names, learning_rate, name)


def top_tokens(model, k=10):
    """The `k` tokens with the largest weight for each class of a `bag_of_words_classifier`.

    Returns:
        A dict from class name to a list of `(token, weight)`, largest first.
    """
    vectorizer, head = model.get_layer("tfidf"), model.get_layer("probabilities")
    vocabulary = np.array(vectorizer.get_vocabulary())
    kernel = head.get_weights()[0]  # (tokens, classes)
    return {
        name: [(str(vocabulary[i]), float(kernel[i, c])) for i in np.argsort(-kernel[:, c])[:k]]
        for c, name in enumerate(head.class_names)
    }


def lstm_classifier(
    train_texts,
    num_classes,
    class_names=None,
    max_tokens=20_000,
    sequence_length=64,
    embedding_dim=64,
    units=64,
    dropout=0.3,
    learning_rate=1e-3,
    name="lstm",
    mixed_precision=False,
    input_name="text",
):
    """Word embeddings read by one bidirectional LSTM layer.

    Args:
        train_texts: 1-D sequence of training strings, to build the vocabulary.
        num_classes: Int >= 2.
        class_names: Optional names in label order.
        max_tokens: Int, defaults to 20000.
        sequence_length: Int, defaults to 64. Tokens kept per text (padded or cut).
        embedding_dim: Int, defaults to 64.
        units: Int, defaults to 64. LSTM units per direction.
        dropout: Float, defaults to 0.3. Active in training only.
        learning_rate: Float, defaults to 0.001.
        name: Model name, defaults to `"lstm"`.
        mixed_precision: `False` (default), `True` or `"mixed_float16"`
            (GPUs), or `"mixed_bfloat16"` (TPUs, recent CPUs): the layers
            between the preprocessing and the output compute in 16 bits with
            float32 variables (`models.common.dtype_policy`).
        input_name: String, defaults to `"text"`. The model's (and the served) input name.

    Returns:
        A compiled `keras.Model` from a string input `text` to class
        probabilities. The exported signature refuses empty strings.
    """
    class_names = resolve_class_names(num_classes, class_names)
    text, tokens = _token_ids(train_texts, max_tokens, sequence_length, input_name)
    with dtype_policy(mixed_precision):
        x = keras.layers.Embedding(max_tokens, embedding_dim, mask_zero=True)(tokens)
        x = keras.layers.Bidirectional(keras.layers.LSTM(units))(x)
        x = keras.layers.Dropout(dropout)(x)
    return classify(x, text, class_names, learning_rate, name, mixed_precision)


@keras.saving.register_keras_serializable(package="recipes")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding of each position to the token embeddings."""

    def __init__(self, sequence_length, **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = sequence_length
        self.supports_masking = True  # the padding mask passes through to attention and pooling

    def build(self, input_shape):
        self.positions = self.add_weight(
            shape=(self.sequence_length, input_shape[-1]), initializer="glorot_uniform", name="positions"
        )

    def call(self, tokens):
        return tokens + self.positions

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length}


def transformer_classifier(
    train_texts,
    num_classes,
    class_names=None,
    max_tokens=20_000,
    sequence_length=64,
    embedding_dim=64,
    num_heads=2,
    feed_forward_dim=128,
    dropout=0.1,
    learning_rate=1e-3,
    name="transformer",
    mixed_precision=False,
    input_name="text",
):
    """One transformer encoder block (self-attention + feed-forward) over word embeddings.

    A small encoder built from Keras layers (`MultiHeadAttention`,
    `LayerNormalization`), mean-pooled over the non-padding tokens.

    Args:
        train_texts: 1-D sequence of training strings, to build the vocabulary.
        num_classes: Int >= 2.
        class_names: Optional names in label order.
        max_tokens: Int, defaults to 20000.
        sequence_length: Int, defaults to 64.
        embedding_dim: Int, defaults to 64.
        num_heads: Int, defaults to 2.
        feed_forward_dim: Int, defaults to 128.
        dropout: Float, defaults to 0.1. Active in training only.
        learning_rate: Float, defaults to 0.001.
        name: Model name, defaults to `"transformer"`.
        mixed_precision: `False` (default), `True` or `"mixed_float16"`
            (GPUs), or `"mixed_bfloat16"` (TPUs, recent CPUs): the layers
            between the preprocessing and the output compute in 16 bits with
            float32 variables (`models.common.dtype_policy`).
        input_name: String, defaults to `"text"`. The model's (and the served) input name.

    Returns:
        A compiled `keras.Model` from a string input `text` to class
        probabilities. The exported signature refuses empty strings.
    """
    class_names = resolve_class_names(num_classes, class_names)
    text, tokens = _token_ids(train_texts, max_tokens, sequence_length, input_name)
    with dtype_policy(mixed_precision):
        x = keras.layers.Embedding(max_tokens, embedding_dim, mask_zero=True)(tokens)
        x = PositionEmbedding(sequence_length)(x)
        attended = keras.layers.MultiHeadAttention(num_heads, embedding_dim // num_heads, dropout=dropout)(x, x)
        x = keras.layers.LayerNormalization()(x + attended)
        hidden = keras.layers.Dense(feed_forward_dim, activation="relu")(x)
        x = keras.layers.LayerNormalization()(x + keras.layers.Dense(embedding_dim)(hidden))
        x = keras.layers.GlobalAveragePooling1D()(x)
        x = keras.layers.Dropout(dropout)(x)
    return classify(x, text, class_names, learning_rate, name, mixed_precision)

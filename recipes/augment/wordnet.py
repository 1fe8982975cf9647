"""WordNet 3.0 for synonym augmentation, from Debian's `wordnet-base` package, read with NLTK offline.

NLTK's downloader needs the network, so the dictionary comes from Debian (`apt-get install wordnet-base
wordnet-sense-index`, in `make setup`). NLTK >= 3.9 reads only files inside its data path (no symlinks out
of it), and it needs a `lexnames` file that Debian does not ship; so on first use the files are *copied*
into `<cache>/nltk_data/corpora/wordnet/` (`recipes.datasets` cache: `$KERAS_RECIPES_CACHE` or
`~/.cache/keras-recipes`) and `lexnames` is written from the table in `man 5 lexnames` (`LEXNAMES` below).
"""

import functools
import os
import shutil
import tempfile
import warnings

from recipes.datasets._common import MissingDataError, cache_dir

DEBIAN_WORDNET_DIR = "/usr/share/wordnet"
_INSTALL = "apt-get install wordnet-base wordnet-sense-index"
# WordNet 3.0's 45 lexicographer files, in file-number order (`man 5 lexnames`, lexnames.5WN); the
# syntactic category (third column of the file) follows from the prefix.
LEXNAMES = (
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
)
_CATEGORIES = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
# What NLTK's reader opens; `index.sense` and `cntlist.rev` serve sense keys and lemma counts.
_FILES = (
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
    "adj.exc",
    "adv.exc",
    "noun.exc",
    "verb.exc",
    "index.sense",
    "cntlist.rev",
)


def lexnames_text():
    """The `lexnames` file: `NN<TAB>name<TAB>category` for each of the 45 lexicographer files."""
    return "".join(f"{i:02d}\t{name}\t{_CATEGORIES[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))


def install_wordnet(source=DEBIAN_WORDNET_DIR, data_dir=None):
    """Copies Debian's WordNet into an NLTK data folder (once) and returns that folder.

    Idempotent and safe when several processes start at once: the files are copied into a temporary
    folder that is then renamed into place.

    Args:
        source: Folder of the Debian files, defaults to `"/usr/share/wordnet"`.
        data_dir: NLTK data root to install into, defaults to `<recipes cache>/nltk_data`.

    Returns:
        The NLTK data root (it holds `corpora/wordnet/`), for `nltk.data.path`.

    Raises:
        MissingDataError: Debian's files are missing; the message says what to install.
    """
    data_dir = os.fspath(data_dir) if data_dir is not None else cache_dir("nltk_data")
    target = os.path.join(data_dir, "corpora", "wordnet")
    if os.path.exists(os.path.join(target, "lexnames")):
        return data_dir
    missing = [name for name in _FILES if not os.path.isfile(os.path.join(source, name))]
    if missing:
        raise MissingDataError(
            f"WordNet is missing from {source} ({', '.join(missing[:3])}...). Install it with: {_INSTALL}  "
            "(or run `make setup` as root)"
        )
    os.makedirs(os.path.dirname(target), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".wordnet-", dir=os.path.dirname(target))
    try:
        for name in _FILES:
            shutil.copyfile(os.path.join(source, name), os.path.join(staging, name))
        with open(os.path.join(staging, "lexnames"), "w", encoding="utf-8") as f:
            f.write(lexnames_text())
        try:
            os.replace(staging, target)
        except OSError:
            if not os.path.exists(os.path.join(target, "lexnames")):  # not another process's finished copy
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return data_dir


@functools.lru_cache(maxsize=None)
def wordnet_reader():
    """NLTK's WordNet 3.0 reader over the copied Debian files (loaded once per process, a few seconds).

    The reader skips NLTK's mapping of older WordNet versions onto the loaded one (`map_wn`): that map
    serves the Open Multilingual WordNet only, which is not installed, and building it parses
    `index.sense` twice, several times the cost of loading WordNet itself.

    Returns:
        An `nltk.corpus.reader.wordnet.WordNetCorpusReader`.
    """
    data_dir = install_wordnet()
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    if data_dir not in nltk.data.path:
        nltk.data.path.insert(0, data_dir)  # NLTK reads corpora only under its data path

    class _EnglishWordNet(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            return None

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions are not available")
        return _EnglishWordNet(nltk.data.find("corpora/wordnet"), None)

"""recipes.augment: seeded, deterministic augmenters that run with no network; datasets keep labels and keys."""

import gzip
import json
import random
import re
import socket

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import recipes
from recipes.augment import (
    AUDIO_AUGMENTERS,
    SPECTROGRAM_AUGMENTERS,
    TEXT_AUGMENTERS,
    Augmenter,
    Chain,
    OneOf,
    audio_augmenter,
    augment_dataset,
    augmentation_check,
    augmentation_effect,
    derive_seed,
    on_the_fly,
    speaker_augmenter,
    spectrogram_augmenter,
    text_augmenter,
)
from recipes.augment import wordnet

SENTENCE = "The only thing worse than your substandard Hollywood picture is an angst-ridden attempt to be profound."


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection attempt, and NLTK's downloader, fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    import nltk

    monkeypatch.setattr(nltk, "download", refuse)
    monkeypatch.setattr(nltk, "pos_tag", refuse)  # nlpaug's tagging step must be replaced


@pytest.fixture(scope="module")
def clip():
    waveforms, _, _ = recipes.datasets.load_spoken_digits(num_per_digit=1)
    return waveforms[3]  # "three"


@pytest.fixture(scope="module")
def reviews():
    return recipes.datasets.load_rotten_tomatoes().head(40)


# -- text --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TEXT_AUGMENTERS))
def test_text_augmenter_is_deterministic_and_changes_the_text(name):
    augmenter = text_augmenter(name)
    first = augmenter(SENTENCE, seed=7)
    assert isinstance(first, str)
    assert augmenter(SENTENCE, seed=7) == first  # same seed, same text, on a fresh call
    assert text_augmenter(name)(SENTENCE, seed=7) == first  # and with a new augmenter object
    outputs = {augmenter(SENTENCE, seed=s) for s in range(5)}
    assert SENTENCE not in outputs
    assert len(outputs) > 1  # the seed matters


def test_augmenters_leave_the_global_random_generators_alone():
    swap = text_augmenter("swap")
    random.seed(1)
    np.random.seed(1)
    swap(SENTENCE, seed=3)
    after = (random.random(), np.random.random())
    random.seed(1)
    np.random.seed(1)
    assert after == (random.random(), np.random.random())


def test_synonyms_come_from_wordnet_and_skip_stop_words():
    reader = wordnet.wordnet_reader()
    synonyms = text_augmenter("synonym", aug_p=1.0, aug_max=None)
    lemmas = {lemma.name().replace("_", " ").lower() for synset in reader.synsets("good") for lemma in synset.lemmas()}
    for seed in range(3):
        changed = synonyms("it is not good", seed=seed).split()  # "good" is the only word not a stop word
        assert changed[:3] == ["it", "is", "not"]
        assert " ".join(changed[3:]) in lemmas - {"good"}


def test_lexnames_match_the_wordnet_manual(tmp_path):
    manual = gzip.open("/usr/share/man/man5/lexnames.5WN.gz", "rt").read()
    table = [re.split(r"\t", line)[:2] for line in manual.splitlines() if re.match(r"^\d\d\t", line)]
    written = [line.split("\t") for line in wordnet.lexnames_text().splitlines()]
    assert [[number, name] for number, name, _ in written] == [[n, name.strip()] for n, name in table]
    data_dir = wordnet.install_wordnet(data_dir=tmp_path)
    assert wordnet.install_wordnet(data_dir=tmp_path) == data_dir  # idempotent
    assert len((tmp_path / "corpora" / "wordnet" / "lexnames").read_text().splitlines()) == 45
    assert not (tmp_path / "corpora" / "wordnet" / "index.noun").is_symlink()


def test_factories_refuse_unknown_names_and_options():
    with pytest.raises(ValueError, match="`name` must be one of .*Received: name='backtranslation'"):
        text_augmenter("backtranslation")
    with pytest.raises(ValueError, match="invalid options for the 'swap'"):
        text_augmenter("swap", colour="red")
    with pytest.raises(ValueError, match="`name` must be one of .*Received: name='reverb'"):
        audio_augmenter("reverb")
    with pytest.raises(ValueError, match="`name` must be one of .*Received: name='pitch'"):
        spectrogram_augmenter("pitch")
    with pytest.raises(ValueError, match="`sample_rate` must be an int >= 1000. Received: sample_rate=800"):
        audio_augmenter("pitch", sample_rate=800)
    with pytest.raises(ValueError, match="1-D float waveform"):
        audio_augmenter("noise")(np.zeros((2, 100), "float32"), seed=0)
    with pytest.raises(ValueError, match="`seed` must be an int >= 0. Received: seed=-1"):
        text_augmenter("swap")(SENTENCE, seed=-1)


def test_augmenter_wraps_an_nlpaug_flow():
    import nlpaug.augmenter.word as naw
    import nlpaug.flow as naf

    flow = Augmenter(naf.Sequential([naw.RandomWordAug(action="swap"), naw.SplitAug()]), name="swap+split")
    assert flow(SENTENCE, seed=4) == flow(SENTENCE, seed=4) != SENTENCE
    outputs = flow.augment([SENTENCE, ""], seed=4)  # row i gets the seed derive_seed(4, i)
    assert outputs == [flow(SENTENCE, seed=derive_seed(4, 0)), ""]  # nlpaug returns nothing for "": kept
    with pytest.raises(ValueError, match="nlpaug augmenter or flow"):
        Augmenter(lambda text: text)


def test_one_of_picks_an_augmenter_per_seed():
    mixed = OneOf([text_augmenter("swap"), text_augmenter("split")])
    outputs = [mixed(SENTENCE, seed=s) for s in range(6)]
    assert outputs == [mixed(SENTENCE, seed=s) for s in range(6)]
    spaced = [len(text.split()) > len(SENTENCE.split()) + 2 for text in outputs]  # split adds words
    assert any(spaced) and not all(spaced)


def test_chain_applies_every_augmenter_in_order_each_seeded_apart(clip):
    louder = audio_augmenter("loudness", factor=(2.0, 2.0))
    shifted = audio_augmenter("shift")
    chain = Chain([louder, shifted])
    assert chain.name == "loudness+shift"
    out = chain(clip, seed=5)
    np.testing.assert_array_equal(chain(clip, seed=5), out)
    np.testing.assert_allclose(out, shifted(louder(clip, derive_seed(5, 0)), derive_seed(5, 1)))
    assert not np.array_equal(out, chain(clip, seed=6))
    with pytest.raises(ValueError, match="non-empty sequence of augmenters"):
        Chain([])


# -- audio -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(AUDIO_AUGMENTERS))
def test_audio_augmenter_is_deterministic_and_keeps_the_clip_length(name, clip):
    augmenter = audio_augmenter(name)
    first = augmenter(clip, seed=1)
    assert first.shape == clip.shape and first.dtype == clip.dtype
    np.testing.assert_array_equal(augmenter(clip, seed=1), first)
    outputs = [augmenter(clip, seed=s) for s in range(1, 4)]
    assert any(not np.allclose(output, clip) for output in outputs)
    assert not all(np.array_equal(outputs[0], output) for output in outputs[1:])
    assert np.all(np.isfinite(first))


def test_speaker_augmenter_chains_speed_pitch_and_vtlp(clip):
    voices = speaker_augmenter()
    assert voices.name == "speed+pitch+vtlp"
    assert [a.augmenter.factor for a in voices.augmenters] == [(0.85, 1.15), (-2.0, 2.0), (0.9, 1.1)]
    out = voices(clip, seed=4)
    assert out.shape == clip.shape and out.dtype == clip.dtype and np.all(np.isfinite(out))
    np.testing.assert_array_equal(voices(clip, seed=4), out)
    assert not np.allclose(out, clip) and not np.allclose(out, voices(clip, seed=5))
    assert speaker_augmenter(pitch=(-4, 4)).augmenters[1].augmenter.factor == (-4.0, 4.0)
    with pytest.raises(ValueError, match=r"`vtlp` must be a pair \(low, high\) with low <= high. Received: vtlp="):
        speaker_augmenter(vtlp=(1.1, 0.9))


@pytest.mark.parametrize("name", sorted(SPECTROGRAM_AUGMENTERS))
def test_spectrogram_masks_zero_a_band(name, clip):
    from scipy import signal

    _, _, stft = signal.stft(clip, fs=16000, nperseg=400, noverlap=240)
    spectrogram = np.abs(stft).astype("float32") + 1e-3  # no zeros before masking
    augmenter = spectrogram_augmenter(name)
    masked = augmenter(spectrogram, seed=2)
    np.testing.assert_array_equal(augmenter(spectrogram, seed=2), masked)
    assert masked.shape == spectrogram.shape
    axis = 1 if name == "frequency_mask" else 0
    assert (masked == 0).all(axis=axis).any()


# -- datasets ----------------------------------------------------------------------------------------------


def test_augment_dataset_keeps_labels_and_keys_and_tags_synthetic_rows(reviews):
    swap = text_augmenter("swap")
    out = augment_dataset(reviews, swap, n=2, seed=0, column="text")
    assert len(out) == 3 * len(reviews)
    assert out["synthetic"].tolist() == [False] * 40 + [True] * 80
    real, synthetic = out[~out.synthetic], out[out.synthetic]
    pd.testing.assert_frame_equal(
        real.drop(columns=["key", "synthetic"]).reset_index(drop=True), reviews.reset_index(drop=True)
    )
    assert synthetic.key.tolist()[:4] == ["0#aug1", "0#aug2", "1#aug1", "1#aug2"]
    origin = synthetic.key.str.split("#").str[0].astype(int)
    assert (synthetic.label.to_numpy() == reviews.label.to_numpy()[origin]).all()
    assert (synthetic.movie_name.to_numpy() == reviews.movie_name.to_numpy()[origin]).all()
    assert (synthetic.text.to_numpy() != reviews.text.to_numpy()[origin]).mean() > 0.9

    pd.testing.assert_frame_equal(out, augment_dataset(reviews, swap, n=2, seed=0, column="text"))
    shuffled = augment_dataset(reviews.sample(frac=1, random_state=1), swap, n=2, seed=0, column="text")
    assert shuffled.set_index("key").text.sort_index().equals(out.set_index("key").text.sort_index())
    other = augment_dataset(reviews, swap, n=2, seed=1, column="text")
    assert (other.text != out.text).sum() > 40


def test_augment_dataset_on_arrays_of_waveforms(clip):
    waveforms = np.stack([clip, clip * 0.5, -clip])
    out = augment_dataset((waveforms, np.array([3, 3, 7]), np.array(["a", "b", "c"])), audio_augmenter("shift"), n=2)
    assert out.x.shape == (9, 16000) and out.x.dtype == np.float32
    assert out.y.tolist() == [3, 3, 7, 3, 3, 3, 3, 7, 7]
    assert out.keys.tolist() == ["a", "b", "c", "a#aug1", "a#aug2", "b#aug1", "b#aug2", "c#aug1", "c#aug2"]
    assert out.synthetic.tolist() == [False] * 3 + [True] * 6
    np.testing.assert_array_equal(out.x[:3], waveforms)


def test_augment_dataset_validates_its_arguments(reviews):
    swap = text_augmenter("swap")
    with pytest.raises(ValueError, match="`n` must be an int >= 1. Received: n=0"):
        augment_dataset(reviews, swap, n=0, column="text")
    with pytest.raises(ValueError, match="pass `column`"):
        augment_dataset(reviews, swap)
    with pytest.raises(ValueError, match="keys must be unique"):
        augment_dataset(reviews.assign(key="same"), swap, column="text")
    with pytest.raises(ValueError, match="already has a 'synthetic' column"):
        augment_dataset(augment_dataset(reviews, swap, column="text"), swap, column="text")
    with pytest.raises(ValueError, match="`label_column` 'stars'"):
        augment_dataset(reviews, swap, column="text", label_column="stars")


def test_augment_dataset_shows_a_progress_bar_or_one_line(reviews, capsys):
    augment_dataset(reviews.head(3), text_augmenter("delete"), n=2, column="text", verbose=1)
    assert "augment (delete)" in capsys.readouterr().err
    augment_dataset(reviews.head(3), text_augmenter("delete"), n=2, column="text")  # auto: 6 rows, no bar
    assert capsys.readouterr().err == ""
    augment_dataset(reviews.head(3), text_augmenter("delete"), n=2, column="text", verbose=2)
    assert capsys.readouterr().err == "augment (delete): 6 synthetic rows from 3\n"
    with pytest.raises(ValueError, match="`verbose` must be 'auto', 0, 1 or 2. Received: verbose=True"):
        augment_dataset(reviews.head(3), text_augmenter("delete"), column="text", verbose=True)


def test_on_the_fly_draws_new_variants_each_pass_and_repeats_a_run(reviews):
    texts, labels = reviews.text.to_numpy()[:4], reviews.label.to_numpy()[:4]
    dataset = tf.data.Dataset.from_tensor_slices((texts, labels)).repeat(2)

    def read(ds):
        return [(x.numpy().decode(), int(y.numpy())) for x, y in ds]

    first = read(on_the_fly(dataset, text_augmenter("swap"), seed=0))
    assert first == read(on_the_fly(dataset, text_augmenter("swap"), seed=0))
    assert [y for _, y in first] == labels.tolist() * 2
    assert [x for x, _ in first[:4]] != [x for x, _ in first[4:]]  # the second pass is augmented anew
    assert sum(x != t for (x, _), t in zip(first, np.tile(texts, 2))) >= 6  # a swap may restore a text
    untouched = read(on_the_fly(dataset, text_augmenter("swap"), probability=0.0))
    assert [x for x, _ in untouched] == np.tile(texts, 2).tolist()
    with pytest.raises(ValueError, match="unbatched"):
        on_the_fly(dataset.batch(2), text_augmenter("swap"))


def test_on_the_fly_runs_keras_image_layers_in_training_mode():
    images, labels = recipes.datasets.load_digits()
    dataset = tf.data.Dataset.from_tensor_slices((images[:8, :, :, None], labels[:8])).batch(4)
    layers = keras.Sequential([keras.layers.RandomRotation(0.2, seed=1)])
    out = list(on_the_fly(dataset, layers))
    assert [x.shape for x, _ in out] == [(4, 8, 8, 1)] * 2
    assert np.concatenate([y for _, y in out]).tolist() == labels[:8].tolist()
    assert not np.allclose(np.concatenate([x for x, _ in out]), images[:8, :, :, None])


# -- images ------------------------------------------------------------------------------------------------


def _digits_model(block):
    image = keras.Input((8, 8), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1 / 255)(keras.layers.Reshape((8, 8, 1))(image))
    if block is not None:
        x = block(x)
    x = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(image, x)


class _AlwaysOn(keras.layers.Layer):
    """A custom augmentation that forgets `training`: it changes images at inference too."""

    def call(self, x, training=None):
        return x * 0.5


def test_augmentation_check_passes_train_only_layers_and_fails_the_others():
    images = recipes.datasets.load_digits()[0][:16]
    good = _digits_model(keras.Sequential([keras.layers.RandomRotation(0.1, seed=0)], name="augmentation"))
    check = augmentation_check(good, images)
    assert (check.verdict, check.ok, check.advice) == ("pass", True, ()), str(check)
    assert check.blocks == ["augmentation"] and check.active_in_training == {"augmentation": True}
    assert json.loads(json.dumps(check.to_dict()))["identity_at_inference"] == {"augmentation": True}

    leaky = _digits_model(keras.Sequential([keras.layers.RandomZoom(0.1, seed=0), _AlwaysOn()], name="aug"))
    check = augmentation_check(leaky, images)
    assert (check.verdict, check.ok) == ("fail", False) and check.identity_at_inference == {"aug": False}
    assert "'aug' changes the images at inference" in check.summary
    assert len(check.advice) == 1 and check.advice[0].startswith("make 'aug' return its input when training is False")
    assert "| `aug` | yes | **no** |" in check.to_markdown()

    check = augmentation_check(_digits_model(None), images)
    assert check.verdict == "fail" and "no Keras random image layer" in check.summary
    assert "models.vision.augmentation(rotation=0.05" in check.advice[0]


# -- the effect recipe -------------------------------------------------------------------------------------


def _bag_of_words(texts):
    vectorize = keras.layers.TextVectorization(max_tokens=2000, output_mode="tf_idf")
    vectorize.adapt(texts)
    head = keras.layers.Dense(2, activation="softmax")
    model = keras.Sequential([keras.Input(shape=(), dtype="string"), vectorize, head])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return model


@pytest.mark.slow
def test_augmentation_effect_compares_both_arms_on_the_same_test_set():
    reviews = recipes.datasets.load_rotten_tomatoes().sample(210, random_state=0)
    train = (reviews.text.to_numpy()[:60], reviews.label.to_numpy()[:60])
    test = (reviews.text.to_numpy()[60:], reviews.label.to_numpy()[60:])
    delete = text_augmenter("delete", aug_p=0.1)
    report = augmentation_effect(
        _bag_of_words, train, test, delete, n=1, total_examples=960, num_checkpoints=2, repeats=2
    )
    assert report.num_train == 60 and report.num_synthetic == 60 and report.num_test == 150
    assert report.steps == 2 * 15  # 960 // (32 * 2) steps per virtual epoch, 2 virtual epochs, in both arms
    assert len(report.baseline) == len(report.augmented) == 2 and report.baseline != report.augmented
    assert report.difference == pytest.approx(np.mean(report.augmented) - np.mean(report.baseline))
    # Seeded: on these 60 reviews, deleting words gains 0.04, within the margin of 2 standard errors (0.05).
    assert 0 < report.difference < report.margin
    assert (report.effect, report.verdict, report.ok) == ("no clear effect", "warn", True)
    assert report.summary.startswith("no clear effect: test accuracy") and "repeats=" in report.advice[0]


def test_augmentation_effect_checks_its_arguments():
    data = (np.array(["a", "b"]), np.array([0, 1]))
    swap = text_augmenter("swap")
    with pytest.raises(ValueError, match="`num_checkpoints` must be an int >= 1. Received: num_checkpoints=0"):
        augmentation_effect(_bag_of_words, data, data, swap, num_checkpoints=0)
    with pytest.raises(ValueError, match="`test_data` must be an"):
        augmentation_effect(_bag_of_words, data, data[0], swap)
    with pytest.raises(ValueError, match="`augmenter` must be callable as augmenter"):
        augmentation_effect(_bag_of_words, data, data, "swap")
    with pytest.raises(ValueError, match="`total_examples` must be at least"):
        augmentation_effect(_bag_of_words, data, data, swap, total_examples=10)


# -- command line ------------------------------------------------------------------------------------------


def test_cli_augments_a_csv_file(tmp_path, reviews, capsys):
    from recipes.cli import main

    source, target = tmp_path / "reviews.csv", tmp_path / "more.jsonl"
    reviews.head(5).to_csv(source, index=False)
    argv = [
        "augment",
        str(source),
        "--output",
        str(target),
        "--column",
        "text",
        "--augmenter",
        "swap,delete",
        "--n",
        "2",
        "--option",
        "aug_p=0.2",
    ]
    assert main(argv) == 0
    assert "wrote 15 rows" in capsys.readouterr().out
    out = pd.read_json(target, lines=True, dtype={"key": str})
    assert out.key.tolist()[5:7] == ["0#aug1", "0#aug2"] and out.synthetic.sum() == 10
    assert out.label.tolist() == reviews.label.head(5).tolist() + np.repeat(reviews.label.head(5), 2).tolist()
    assert main([*argv[:-2], "--option", "colour"]) == 2
    assert "--option must be NAME=VALUE" in capsys.readouterr().err

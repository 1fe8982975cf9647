"""A folder of class folders: Keras's layout for images, audio and text, e.g. `photos/cat/001.jpg`.

As in `keras.utils.image_dataset_from_directory`, `audio_dataset_from_directory`
and `text_dataset_from_directory`: each subfolder is a class (the class names
are their names, sorted), its files at any depth are the examples, and files
of other kinds are ignored: images `.bmp .gif .jpeg .jpg .png` of any size and
colour mode, 16-bit PCM `.wav` clips of any length, UTF-8 `.txt` files.

Only the list of files is held in memory. Every file is read once, before any
training, to check it: an image or WAV that TensorFlow cannot decode, or text
that is not UTF-8, is a `ValueError` naming the file. That pass also gives the
defaults: images are resized to the median size (at most 256 a side), in
grey if every image is grey, else RGB; clips are padded or cropped to the
longest clip. Clips must share one sample rate unless `sample_rate` is given,
in which case every clip at another rate is resampled to it in the input
pipeline (`recipes.tasks.waveforms.resample`).
"""

import concurrent.futures
import math
import os
import re

import numpy as np

from recipes._common import check_int, check_one_of
from recipes.tasks.checks import check_classes, check_splits, label_index
from recipes.tasks.splitting import SPLITS, SplitPlan
from recipes.tasks.tables import check_utf8

EXTENSIONS = {
    "image": (".bmp", ".gif", ".jpeg", ".jpg", ".png"),
    "audio": (".wav",),
    "text": (".txt",),
}
MAX_IMAGE_SIDE = 256  # Keras's default image size; larger medians are scaled down to it
COLOR_MODES = ("grayscale", "rgb")
_TF_ERROR = re.compile(r"^\{\{[^}]*\}\}\s*|\s*\[Op:\w+\].*$", re.S)


def _tf_message(error):
    return _TF_ERROR.sub("", str(getattr(error, "message", error))).strip()


def _listed(items, limit=5):
    items = list(items)
    return "; ".join(items[:limit]) + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _class_files(path):
    """`{class name: [relative paths]}` of the class folders of `path`, files sorted, hidden ones skipped."""
    try:
        entries = sorted(os.listdir(path))
    except OSError as error:
        raise ValueError(f"`path` must be a readable folder. Received: path={path!r} ({error.strerror})") from None
    entries = [e for e in entries if not e.startswith(".")]
    if not entries:
        raise ValueError(
            f"the folder {path} is empty; expected one folder per class holding its examples "
            "(Keras's layout: photos/cat/001.jpg, photos/dog/002.jpg)"
        )
    classes = [e for e in entries if os.path.isdir(os.path.join(path, e))]
    if not classes:
        raise ValueError(
            f"the folder {path} holds files but no class folders ({_listed(entries, 3)}); expected one folder per "
            "class holding its examples (Keras's layout: photos/cat/001.jpg, photos/dog/002.jpg)"
        )
    files = {}
    for name in classes:
        found = []
        for root, folders, names in os.walk(os.path.join(path, name)):
            folders[:] = sorted(f for f in folders if not f.startswith("."))
            found += [os.path.relpath(os.path.join(root, n), path) for n in sorted(names) if not n.startswith(".")]
        files[name] = found
    return files


def _modality_of(files, path):
    counts = {
        modality: sum(f.lower().endswith(extensions) for names in files.values() for f in names)
        for modality, extensions in EXTENSIONS.items()
    }
    if not any(counts.values()):
        raise ValueError(
            f"the class folders of {path} hold no images ({' '.join(EXTENSIONS['image'])}), WAV clips or .txt "
            "files; they are empty or hold files of other kinds"
        )
    return max(counts, key=counts.get)


def _inspect_image(path):
    """`(height, width, grey)` of an image file, decoded as the pipeline decodes it."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=0, expand_animations=False).numpy()
    grey = image.shape[2] <= 2 or (
        np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
    )
    return image.shape[0], image.shape[1], grey


def _inspect_wav(path):
    """`(sample_rate, frames)` of a WAV file, decoded as the pipeline decodes it."""
    import tensorflow as tf

    audio, rate = tf.audio.decode_wav(tf.io.read_file(path))
    if audio.shape[0] == 0:
        raise ValueError("the clip has no samples")
    return int(rate), int(audio.shape[0])


def _inspect_text(path):
    check_utf8(path)
    return os.path.getsize(path)


_INSPECT = {"image": _inspect_image, "audio": _inspect_wav, "text": _inspect_text}
_KIND = {"image": "an image", "audio": "a WAV clip", "text": "a text file"}
_HOW = {
    "image": "TensorFlow decodes JPEG, PNG, GIF and BMP",
    "audio": "TensorFlow decodes 16-bit PCM WAV",
    "text": "text files must be UTF-8",
}


def _inspect_all(modality, root, files):
    """Every file's facts, read in parallel; unreadable files are one error naming them."""
    inspect = _INSPECT[modality]

    def one(relative):
        try:
            return inspect(os.path.join(root, relative)), None
        except Exception as error:  # a decoder's error of any type: reported with the file's name
            if modality == "text":  # check_utf8's message names the file, the byte and the line
                return None, str(error)
            return None, f"{relative}: {_tf_message(error)}"

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(one, files))
    failed = [problem for _, problem in results if problem is not None]
    if failed:
        raise ValueError(
            f"{len(failed)} of {len(files)} files in {root} could not be read as {_KIND[modality]} "
            f"({_HOW[modality]}): {_listed(failed)}"
        )
    return [facts for facts, _ in results]


def _clips(count):
    return f"{count} clip{'' if count == 1 else 's'}"


def _image_size(image_size, sizes):
    if image_size is not None:
        if isinstance(image_size, int) and not isinstance(image_size, bool):
            image_size = (image_size, image_size)
        if not (isinstance(image_size, (tuple, list)) and len(image_size) == 2):
            raise ValueError(f"`image_size` must be an int or (height, width). Received: image_size={image_size!r}")
        return tuple(check_int("image_size", side) for side in image_size)
    height, width = (int(round(float(np.median(side)))) for side in zip(*sizes))
    scale = min(1.0, MAX_IMAGE_SIDE / max(height, width))
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


class FolderExamples:
    """The examples of a folder of class folders (see the module docstring); built by `Task.from_path`."""

    def __init__(
        self,
        path,
        *,
        modality=None,
        group=None,
        fractions=None,
        seed=0,
        class_names=None,
        problem=None,
        image_size=None,
        color_mode=None,
        sample_rate=None,
        num_samples=None,
        sample_size=20_000,
    ):
        self.path = os.fspath(path)
        sample_size = check_int("sample_size", sample_size)
        if problem is not None and check_one_of("problem", problem, ("classification", "regression")) != (
            "classification"
        ):
            raise ValueError(
                "a folder of class folders is a classification; its labels are the folder names. "
                f"Received: problem={problem!r}"
            )
        files_by_class = _class_files(self.path)
        if modality is None:
            modality = _modality_of(files_by_class, self.path)
        elif check_one_of("modality", modality, ("text", "image", "audio", "table")) == "table":
            raise ValueError(
                f"a folder is read as 'image', 'audio' or 'text'; a table is one file. "
                f"Received: modality={modality!r} for the folder {self.path}"
            )
        self.modality = modality.lower()
        extensions = EXTENSIONS[self.modality]
        files_by_class = {
            name: [f for f in names if f.lower().endswith(extensions)] for name, names in files_by_class.items()
        }
        folders = sorted(files_by_class)
        if class_names is not None:
            class_names = [str(n) for n in class_names]
            if sorted(class_names) != folders:
                raise ValueError(
                    f"`class_names` must name the class folders of {self.path}, in any order. Received: "
                    f"class_names={class_names!r}; the folders are {folders}"
                )
        self.class_names = tuple(class_names or folders)
        kind = {"image": "images", "audio": "WAV clips", "text": ".txt files"}[self.modality]
        check_classes(
            {name: len(files_by_class[name]) for name in self.class_names}, f"the folder {self.path} ({kind})"
        )
        index = label_index(self.class_names, folders, self.path)
        self.files = np.array([f for name in folders for f in files_by_class[name]], dtype=object)
        self.labels = np.array([index[name] for name in folders for _ in files_by_class[name]], dtype="int64")
        self.problem, self.target = "classification", None
        self.group = group
        self.plan = SplitPlan.make(group=group, fractions=fractions, seed=seed)
        self.codes = self.plan.assign(self._split_values())
        self.num_examples = {name: int(np.sum(self.codes == code)) for code, name in enumerate(SPLITS)}
        self.class_counts = {
            name: np.bincount(self.labels[self.codes == code], minlength=len(self.class_names))
            for code, name in enumerate(SPLITS)
        }
        facts = _inspect_all(self.modality, self.path, self.files)
        check_splits(self.num_examples, self.plan, f"the folder {self.path}")
        self.image_size = self.color_mode = self.sample_rate = self.num_samples = None
        if self.modality == "image":
            self.image_size = _image_size(image_size, [(h, w) for h, w, _ in facts])
            if color_mode is None:
                color_mode = "grayscale" if all(grey for _, _, grey in facts) else "rgb"
            self.color_mode = check_one_of("color_mode", color_mode, COLOR_MODES)
        elif self.modality == "audio":
            self._audio_settings(facts, sample_rate, num_samples)
        else:
            train = np.flatnonzero(self.codes == 0)[:sample_size]
            self._train_texts = np.array([self._read_text(i) for i in train], dtype=object)

    def _split_values(self):
        if self.group is None:
            return np.array([f.replace(os.sep, "/") for f in self.files], dtype=object)
        try:
            pattern = re.compile(self.group)
        except (re.error, TypeError) as error:
            raise ValueError(
                f"`group` must be a regular expression for a folder (matched against each file's name; "
                f"its first group, or the whole match, is the group). Received: group={self.group!r} "
                f"({error})"
            ) from None
        groups = []
        for relative in self.files:
            found = pattern.search(os.path.basename(relative))
            if found is None:
                raise ValueError(
                    f"the file {relative} of {self.path} does not match the `group` pattern {self.group!r}; every "
                    "file name must hold its group"
                )
            groups.append(found.group(1) if pattern.groups else found.group(0))
        return np.array(groups, dtype=object)

    def _audio_settings(self, facts, sample_rate, num_samples):
        rates = np.array([rate for rate, _ in facts])
        if sample_rate is None:
            distinct = sorted(set(rates.tolist()))
            if len(distinct) > 1:
                described = [
                    f"{rate} Hz ({_clips(np.sum(rates == rate))}, e.g. {', '.join(self.files[rates == rate][:3])})"
                    for rate in distinct
                ]
                common = max(distinct, key=lambda rate: np.sum(rates == rate))
                raise ValueError(
                    f"the clips in {self.path} have different sample rates: {'; '.join(described)}. Pass "
                    f"sample_rate={common} to resample every clip to one rate in the input pipeline"
                )
            sample_rate = distinct[0]
        self.sample_rate = check_int("sample_rate", sample_rate, minimum=1000)
        self.resampled = int(np.sum(rates != self.sample_rate))
        if num_samples is None:
            num_samples = max(math.ceil(frames * self.sample_rate / rate) for rate, frames in facts)
        self.num_samples = check_int("num_samples", num_samples, minimum=400)

    def _read_text(self, i):
        with open(os.path.join(self.path, self.files[i]), encoding="utf-8") as f:
            return f.read()

    # -- what the rest of the task reads ---------------------------------------------------------------------

    def _loader(self):
        import tensorflow as tf

        from recipes.layers.images import decode_image
        from recipes.tasks.waveforms import fit_length, resample

        if self.modality == "text":
            return lambda path, label: (tf.io.read_file(path), label)
        if self.modality == "audio":
            sample_rate, num_samples = self.sample_rate, self.num_samples

            def load_wav(path, label):
                audio, rate = tf.audio.decode_wav(tf.io.read_file(path))
                waveform = tf.reduce_mean(audio, axis=1)
                waveform = tf.cond(
                    tf.equal(rate, sample_rate), lambda: waveform, lambda: resample(waveform, rate, sample_rate)
                )
                return fit_length(waveform, num_samples), label

            return load_wav
        height, width = self.image_size
        channels = 1 if self.color_mode == "grayscale" else 3

        def load_image(path, label):
            return decode_image(tf.io.read_file(path), height, width, channels), label

        return load_image

    def dataset(self, split):
        """The examples of `split` as an unbatched `tf.data.Dataset` of `(x, y)`, each file read as it is iterated.

        The training split comes in a new order each time it is iterated: the
        file names are shuffled, all of them, before any file is decoded, so
        the training pipeline's buffer of decoded examples can stay small
        however many files there are (the order draws from the global seed,
        as `recipes.set_seed` sets it). The other splits keep the folder order.
        """
        import tensorflow as tf

        rows = np.flatnonzero(self.codes == SPLITS.index(split))
        paths = np.array([os.path.join(self.path, f) for f in self.files[rows]], dtype=object)
        data = tf.data.Dataset.from_tensor_slices((paths.astype(str), self.labels[rows]))
        if split == "train":
            data = data.shuffle(len(rows), reshuffle_each_iteration=True)
        return data.map(self._loader(), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def model_arguments(self):
        if self.modality == "text":
            return {"train_texts": self._train_texts}
        if self.modality == "audio":
            return {"num_samples": self.num_samples, "sample_rate": self.sample_rate}
        return {"image_shape": (*self.image_size, 1 if self.color_mode == "grayscale" else 3)}

    def describe_inputs(self):
        if self.modality == "image":
            return {"image": f"{self.color_mode} images resized to {self.image_size[0]}x{self.image_size[1]}"}
        if self.modality == "audio":
            resampled = f", {_clips(self.resampled)} resampled from other rates" if self.resampled else ""
            return {"audio": f"WAV clips as {self.num_samples} samples at {self.sample_rate} Hz{resampled}"}
        return {"text": "UTF-8 text"}

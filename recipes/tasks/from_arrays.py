"""Examples already in memory: image, waveform or text arrays with their labels (the shipped data sets)."""

import dataclasses

import numpy as np

from recipes._common import check_int, check_one_of
from recipes.tasks.checks import check_classes, check_splits, label_index
from recipes.tasks.splitting import SPLITS, SplitPlan


def _labels(y, class_names, name):
    """Integer labels and the class names: `y` holds positions in `class_names`, or the class names themselves."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"`{name}` must hold one label per example (1-D). Received shape {y.shape}")
    if y.dtype.kind in "iu" and class_names is not None:
        if len(y) and (y.min() < 0 or y.max() >= len(class_names)):
            raise ValueError(
                f"`{name}` must hold positions in `class_names` (0..{len(class_names) - 1}). "
                f"Received labels from {y.min()} to {y.max()}"
            )
        return y.astype("int64"), tuple(class_names)
    texts = y.astype(str)
    names = tuple(class_names) if class_names is not None else tuple(sorted(set(texts.tolist())))
    index = label_index(names, set(texts.tolist()), f"`{name}`")
    return np.array([index[t] for t in texts], dtype="int64"), names


def _check_x(x, modality, name):
    x = np.asarray(x)
    if modality == "image" and (
        x.ndim not in (3, 4) or x.dtype != np.uint8 or (x.ndim == 4 and x.shape[3] not in (1, 3))
    ):
        raise ValueError(
            f"`{name}` must be uint8 images (examples, height, width[, 1 or 3 channels]). "
            f"Received shape {x.shape} and dtype {x.dtype}"
        )
    if modality == "audio" and (x.ndim != 2 or x.dtype.kind != "f"):
        raise ValueError(
            f"`{name}` must be float waveforms (examples, samples). Received shape {x.shape} and dtype {x.dtype}"
        )
    if modality == "text" and (x.ndim != 1 or x.dtype.kind not in "USO"):
        raise ValueError(f"`{name}` must be a 1-D array of strings. Received shape {x.shape} and dtype {x.dtype}")
    return x


class ArrayExamples:
    """Examples in memory, split by row, key or group; optionally a separate test set and further test sets."""

    def __init__(
        self,
        x,
        y,
        *,
        modality,
        class_names=None,
        key=None,
        group=None,
        fractions=None,
        seed=0,
        test_data=None,
        extra_test_data=None,
        sample_rate=None,
    ):
        self.modality = check_one_of("modality", modality, ("text", "image", "audio"))
        self.problem, self.target = "classification", None
        self.x = _check_x(x, self.modality, "x")
        self.y, self.class_names = _labels(y, None if class_names is None else [str(n) for n in class_names], "y")
        if len(self.x) != len(self.y):
            raise ValueError(f"`x` and `y` must have one row per example. Received {len(self.x)} and {len(self.y)}")
        values = {"key": key, "group": group}
        for role, value in values.items():
            if value is not None and len(np.asarray(value)) != len(self.y):
                raise ValueError(
                    f"`{role}` must hold one value per example ({len(self.y)}). Received {len(np.asarray(value))}"
                )
        plan = SplitPlan.make(
            key=None if key is None else "key",
            group=None if group is None else "group",
            fractions=fractions,
            seed=seed,
            separate_test=test_data is not None,
        )
        self.plan = dataclasses.replace(plan, column=None)  # the values are arrays, not named columns
        split_values = (
            np.arange(len(self.y)) if key is None and group is None else np.asarray(key if key is not None else group)
        )
        codes = self.plan.assign(split_values)
        self.sets = {name: (self.x[codes == code], self.y[codes == code]) for code, name in enumerate(SPLITS)}
        extra = dict(extra_test_data or {})
        if test_data is not None:
            extra = {"test": test_data, **extra}
        for name, (x_test, y_test) in extra.items():
            x_test = _check_x(x_test, self.modality, f"{name} x")
            if x_test.shape[1:] != self.x.shape[1:]:
                raise ValueError(
                    f"the {name} set's examples must have the shape of `x`'s, {self.x.shape[1:]}. "
                    f"Received {x_test.shape[1:]}"
                )
            self.sets[name] = (x_test, _labels(y_test, self.class_names, f"{name} y")[0])
        self.extra_tests = tuple(name for name in extra if name not in SPLITS)
        self.num_examples = {name: len(labels) for name, (_, labels) in self.sets.items()}
        check_classes({n: int(np.sum(self.y == i)) for i, n in enumerate(self.class_names)}, "`y`")
        check_splits(self.num_examples, self.plan, "the arrays")
        self.class_counts = {
            name: np.bincount(labels, minlength=len(self.class_names)) for name, (_, labels) in self.sets.items()
        }
        self.sample_rate = None
        if self.modality == "audio":
            if sample_rate is None:
                raise ValueError("`sample_rate` must be given with waveforms: the rate they were sampled at")
            self.sample_rate = check_int("sample_rate", sample_rate, minimum=1000)

    def dataset(self, split):
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(self.sets[split])

    def model_arguments(self):
        if self.modality == "text":
            return {"train_texts": self.sets["train"][0]}
        if self.modality == "audio":
            return {"num_samples": self.x.shape[1], "sample_rate": self.sample_rate}
        return {"image_shape": self.x.shape[1:]}

    def describe_inputs(self):
        if self.modality == "image":
            return {"image": f"uint8 images of shape {self.x.shape[1:]}"}
        if self.modality == "audio":
            return {"waveform": f"{self.x.shape[1]} samples at {self.sample_rate} Hz"}
        return {"text": "strings"}

"""The four data sets that install with the package, as tasks: the same split, factories and metric as before.

`shipped("text")` is Rotten Tomatoes split by movie, `"audio"` espeak-ng
spoken digits split by speaker (with unseen flite voices as a further test
set), `"vision"` a fifth of Fashion-MNIST's training images (its official
test set for testing), `"tabular"` Seattle's weather split by date.
"""

from recipes.tasks.task import Task

SHIPPED = ("text", "audio", "vision", "tabular")


def _text(full):
    from recipes import datasets

    return Task.from_frame(
        datasets.load_rotten_tomatoes(full=full),
        target="label",
        group="movie_name",
        class_names=datasets.ROTTEN_TOMATOES_CLASSES,
        column_types={"text": "text"},
        name="text",
    )


def _audio(seed):
    from recipes import datasets

    waveforms, labels, speakers = datasets.load_spoken_digits(num_per_digit=100, seed=seed)
    unseen_x, unseen_y, _ = datasets.load_spoken_digits(num_per_digit=20, voices="flite", seed=seed)
    return Task.from_arrays(
        waveforms,
        labels,
        modality="audio",
        class_names=datasets.DIGIT_WORDS,
        group=speakers,
        sample_rate=16000,
        extra_test_data={"unseen flite voices": (unseen_x, unseen_y)},
        name="audio",
    )


def _vision(full):
    from recipes import datasets

    images, labels = datasets.load_fashion_mnist("train")
    # A fixed fifth of the training images keeps the default run near a minute.
    fractions = {"train": 0.2, "validation": 0.02, "unused": 0.78}
    if full:
        fractions = {"train": 0.98, "validation": 0.02}
    return Task.from_arrays(
        images,
        labels,
        modality="image",
        class_names=datasets.FASHION_MNIST_CLASSES,
        fractions=fractions,
        test_data=datasets.load_fashion_mnist("test"),
        name="vision",
        horizontal_flip=True,
        model_options={"transfer": {"input_size": 32}},
    )


def _tabular(target):
    from recipes import datasets

    return Task.from_frame(
        datasets.load_seattle_weather(),
        target=target,
        date="date",
        split_dates=("2014/07/01", "2015/01/01"),
        name="tabular",
    )


def shipped(name, *, seed=0, target=None, full=False):
    """One of the shipped data sets as a `Task`.

    Example:

    ```python
    from recipes.tasks import shipped

    task = shipped("tabular")                       # weather classes from the other columns and the date
    regression = shipped("tabular", target="temp_max")
    ```

    Args:
        name: One of `SHIPPED`: `"text"`, `"audio"`, `"vision"`, `"tabular"`.
        seed: Int, defaults to 0. Draws the synthesised spoken digits
            (`"audio"`); the other data sets are fixed files.
        target: For `"tabular"`, the column to predict, defaults to
            `"weather"` (a classification); `"temp_max"` (or another number)
            makes it a regression.
        full: Bool, defaults to `False`. For `"text"`, the whole corpus
            (12,808 snippets instead of the standard 4,866); for `"vision"`,
            98% of the 60,000 training images for training and 2% for
            validation, instead of a fifth of them (the test set is the
            official one either way). The benchmarks' full-data rows.

    Returns:
        A `Task`.
    """
    if name not in SHIPPED:
        raise ValueError(f"`name` must be one of {SHIPPED}. Received: name={name!r}")
    if target is not None and name != "tabular":
        raise ValueError(f"`target` applies to the 'tabular' data set only. Received: name={name!r}, target={target!r}")
    if full and name not in ("text", "vision"):
        raise ValueError(f"`full` applies to 'text' and 'vision' (the others are whole). Received: name={name!r}")
    if name == "text":
        return _text(full)
    if name == "audio":
        return _audio(seed)
    if name == "vision":
        return _vision(full)
    return _tabular(target or "weather")

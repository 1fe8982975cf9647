"""Image data sets, as uint8 pixel arrays."""

import gzip
import os

import numpy as np

from recipes._common import check_one_of
from recipes.datasets._common import require_file

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def load_digits():
    """The 1,797 8x8 handwritten digits of scikit-learn, as uint8 images.

    scikit-learn stores grey levels 0-16; they are scaled to 0-255 so that
    every image loader here returns the same range.

    Example:

    >>> import recipes
    >>> images, labels = recipes.datasets.load_digits()
    >>> images.shape, images.dtype, labels.shape
    ((1797, 8, 8), dtype('uint8'), (1797,))

    Returns:
        `(images, labels)`: uint8 array `(1797, 8, 8)` and int64 labels 0-9.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    images, labels = sklearn_digits(return_X_y=True)
    images = np.rint(images.reshape(-1, 8, 8) * (255.0 / 16.0)).astype(np.uint8)
    return images, labels.astype(np.int64)


def _read_idx(path):
    """Reads an IDX file (the MNIST format): a magic number, the dimensions, then the raw bytes."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(subset="train"):
    """Fashion-MNIST (Xiao et al., 2017) from Debian's `dataset-fashion-mnist` package.

    Example:

    >>> import recipes
    >>> images, labels = recipes.datasets.load_fashion_mnist("test")
    >>> images.shape, labels.shape
    ((10000, 28, 28), (10000,))

    Args:
        subset: `"train"` (60,000 images) or `"test"` (10,000), defaults to
            `"train"`.

    Returns:
        `(images, labels)`: uint8 array `(n, 28, 28)` and int64 labels 0-9
        (names in `FASHION_MNIST_CLASSES`).
    """
    subset = check_one_of("subset", subset, tuple(_FASHION_MNIST_FILES))
    install = "apt-get install dataset-fashion-mnist"
    images_file, labels_file = (
        require_file(os.path.join(FASHION_MNIST_DIR, name), install) for name in _FASHION_MNIST_FILES[subset]
    )
    return _read_idx(images_file), _read_idx(labels_file).astype(np.int64)

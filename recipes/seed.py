"""Seed every random number generator a Keras/TensorFlow run touches."""

import os
import random

import keras
import numpy as np
import tensorflow as tf

from recipes._common import check_int


def set_seed(seed, deterministic_ops=False):
    """Seeds Python, NumPy, Keras and TensorFlow so that a run can be repeated.

    Weight initialisation, dropout masks and `tf.data` shuffles all draw from
    these generators, so the same seed gives the same trained weights on the
    same machine.

    Example:

    >>> import recipes
    >>> recipes.set_seed(42)

    Args:
        seed: Non-negative int.
        deterministic_ops: Bool, defaults to `False`. Also makes TensorFlow
            choose deterministic kernels (`tf.config.experimental.
            enable_op_determinism`), which is slower and needed only where ops
            have non-deterministic implementations (mostly on GPUs). It stays
            on for the rest of the process.
    """
    seed = check_int("seed", seed, minimum=0)
    # Only child processes (e.g. data workers) see this; hash randomisation of this
    # process was fixed when it started.
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)  # Python, NumPy, TensorFlow and the Keras SeedGenerator.
    if deterministic_ops:
        tf.config.experimental.enable_op_determinism()

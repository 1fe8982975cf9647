import numpy as np
import pytest
from conftest import blobs, small_classifier

import recipes


def _train(seed):
    recipes.set_seed(seed)
    model = small_classifier()
    recipes.fit(model, blobs(200), batch_size=16, total_examples=16 * 20, num_checkpoints=2, verbose=0)
    return model.get_weights()


def test_same_seed_same_weights():
    first, second, other = _train(7), _train(7), _train(8)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first, other))


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="`seed` must be an int >= 0. Received: seed="):
        recipes.set_seed(seed)

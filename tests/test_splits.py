import numpy as np
import pytest

import recipes


def _split_of(keys, fractions, **kwargs):
    parts = recipes.repeatable_split(keys, fractions, **kwargs)
    names = parts if isinstance(parts, dict) else dict(enumerate(parts))
    return {keys[i]: name for name, rows in names.items() for i in rows}


def test_rows_keep_their_split_when_data_grows_and_is_reordered():
    old = [f"order-{i}" for i in range(5000)]
    before = _split_of(old, (0.8, 0.1, 0.1))
    grown = old + [f"order-{i}" for i in range(5000, 7500)]
    np.random.default_rng(0).shuffle(grown)
    after = _split_of(grown, (0.8, 0.1, 0.1))
    assert all(after[key] == before[key] for key in old)


def test_fractions_are_respected_and_every_row_assigned_once():
    keys = np.arange(20_000)
    train, val, test = recipes.repeatable_split(keys, (0.7, 0.2, 0.1))
    assert sorted(np.concatenate([train, val, test]).tolist()) == keys.tolist()
    assert len(train) / 20_000 == pytest.approx(0.7, abs=0.02)
    assert len(val) / 20_000 == pytest.approx(0.2, abs=0.02)


def test_named_fractions_salt_and_groups():
    keys = [f"movie-{i % 50}" for i in range(1000)]  # 20 rows per movie
    splits = recipes.repeatable_split(keys, {"train": 0.5, "test": 0.5})
    assert set(splits) == {"train", "test"}
    train_movies = {keys[i] for i in splits["train"]}
    assert not train_movies & {keys[i] for i in splits["test"]}  # a movie never straddles splits
    salted = recipes.repeatable_split(keys, {"train": 0.5, "test": 0.5}, salt="v2")
    assert not np.array_equal(salted["train"], splits["train"])
    assert _split_of(keys, (0.5, 0.5), salt="v2") == _split_of(keys, (0.5, 0.5), salt="v2")


@pytest.mark.parametrize(
    "fractions, message",
    [
        ((0.5, 0.4), "add up to 1"),
        ((1.2, -0.2), r"`fractions\[1\]` must be a finite number in \[0, inf\]. Received: fractions\[1\]=-0.2"),
        ({"train": "0.8", "test": 0.2}, r"Received: fractions\['train'\]='0.8'"),
        (0.8, "sequence"),
        ((), "non-empty sequence"),
    ],
)
def test_bad_fractions(fractions, message):
    with pytest.raises(ValueError, match=message):
        recipes.repeatable_split(["a", "b"], fractions)


def test_split_by_date():
    dates = ["10/31/2019", "01/15/2020", "06/30/2020", "12/01/2020", "02/29/2020"]
    train, val, test = recipes.split_by_date(dates, ["01/01/2020", "07/01/2020"], date_format="%m/%d/%Y")
    assert train.tolist() == [0] and val.tolist() == [1, 2, 4] and test.tolist() == [3]
    early, late = recipes.split_by_date(np.array(["2014-01-01", "2015-01-01"], dtype="datetime64[D]"), "2015-01-01")
    assert early.tolist() == [0] and late.tolist() == [1]  # a row on the boundary goes later


def test_split_by_date_names_bad_rows():
    with pytest.raises(ValueError, match=r"first at row 1: '31/10/2019'"):
        recipes.split_by_date(["10/30/2019", "31/10/2019"], ["01/01/2020"], date_format="%m/%d/%Y")
    with pytest.raises(ValueError, match="strictly increasing"):
        recipes.split_by_date(["2020-01-01"], ["2021-01-01", "2020-01-01"])

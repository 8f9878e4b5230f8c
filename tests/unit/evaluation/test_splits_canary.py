"""Canaries (issue 13): what only the test part of a split holds never reaches a model.

A test-only user and a test-only item are planted in the test part of a split; a
``GroupDiscovery`` fitted on ``split.train_dataset()`` must not hold them in any of its
arrays: the user and item vocabularies, the seen matrix, the tables it writes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.data import Dataset, build_dataset
from usergroups.evaluation import Split, cold_split, warm_split
from usergroups.testing import make_planted

CANARY = "canary"


def _config() -> DiscoveryConfig:
    return DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing:64", "use_cache": False},
            "clustering": {"n_groups": 3},
            "align": {"dim": 16, "max_epochs": 5},
            "user_vectors": {"n_components": 8},
            "random_state": 0,
        }
    )


def _planted_with_canaries() -> Dataset:
    """Planted users plus a canary item (u0's last) and a canary user (own items only)."""
    ds = make_planted(n_users=90, n_groups=3, n_items=45, random_state=2).dataset
    t_end = float(ds.interactions["timestamp"].max()) + 1
    inter = pd.DataFrame(
        {
            "user_id": ["u0", *[f"{CANARY}-user"] * 3],
            "item_id": [f"{CANARY}-item", *[f"{CANARY}-own-{k}" for k in range(3)]],
            "rating": [5.0] * 4,
            "timestamp": [t_end, t_end, t_end + 1, t_end + 2],
        }
    )
    texts = pd.DataFrame(
        {
            "user_id": ["u0", f"{CANARY}-user", f"{CANARY}-user"],
            "text": [f"{CANARY}warm review", f"{CANARY}cold first", f"{CANARY}cold second"],
            "item_id": [f"{CANARY}-item", f"{CANARY}-own-0", f"{CANARY}-own-1"],
            "rating": [5.0] * 3,
            "timestamp": [t_end, t_end, t_end + 1],
        }
    )
    return build_dataset(
        pd.concat([ds.interactions, inter], ignore_index=True),
        pd.concat([ds.texts, texts], ignore_index=True),
        ds.items,  # metadata of the planted items only
        name="canaries",
    )


def _assert_absent(gd: GroupDiscovery, split: Split, canaries: set[str]) -> None:
    """None of ``canaries`` (ids and words of the test part) is in any array of ``gd``."""
    train = split.train_dataset()
    state = gd.state_
    assert canaries.isdisjoint(state.user_ids.ids), "a test-only user was fitted"
    assert canaries.isdisjoint(state.item_ids.ids), "a test-only item was fitted"
    assert state.seen.shape == (len(state.user_ids), len(state.item_ids))
    # the seen matrix holds the training interactions, and nothing else
    assert sp.csr_matrix(state.seen).nnz == train.n_interactions
    for name in ("labels", "text_block", "semantic", "behaviour", "user_vectors", "confidence"):
        assert np.asarray(getattr(state, name)).shape[0] == len(state.user_ids), name
    assert canaries.isdisjoint(state.item_titles)
    for table in (gd.assignments_, gd.groups_):
        shown = table.to_string()
        assert not [c for c in canaries if c in shown], "a canary reached an output table"


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return _planted_with_canaries()


@pytest.mark.slow  # a whole fit
def test_issue13_warm_canary_item_never_reaches_a_model_fitted_on_the_training_part(
    dataset: Dataset,
) -> None:
    split = warm_split(dataset)
    u0 = dataset.user_ids.index(["u0"])[0]
    target = dataset.item_ids.index([f"{CANARY}-item"])[0]
    assert split.test[u0, target] == 1  # planted in the test part
    train = split.train_dataset()
    assert f"{CANARY}-item" not in train.item_ids
    assert not train.texts["text"].str.contains(f"{CANARY}warm").any()
    gd = GroupDiscovery(_config()).fit(train)
    _assert_absent(gd, split, {f"{CANARY}-item", f"{CANARY}warm"})
    assert "u0" in gd.user_ids_  # its training part is fitted, its test item is not


@pytest.mark.slow  # a whole fit
def test_issue13_cold_canary_user_never_reaches_a_model_fitted_on_the_training_part(
    dataset: Dataset,
) -> None:
    user = dataset.user_ids.index([f"{CANARY}-user"])[0]
    # the seed that holds the canary user out (the sample is seeded, so this is fixed)
    seed = next(s for s in range(100) if user in cold_split(dataset, random_state=s).test_users)
    split = cold_split(dataset, random_state=seed)
    train = split.train_dataset()
    assert f"{CANARY}-user" not in train.user_ids
    assert not any(CANARY in i for i in train.item_ids.ids)
    gd = GroupDiscovery(_config()).fit(train)
    own = {f"{CANARY}-own-{k}" for k in range(3)}
    _assert_absent(gd, split, {f"{CANARY}-user", f"{CANARY}cold", *own})

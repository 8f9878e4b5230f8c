"""AgglomerativeGroups."""

from __future__ import annotations

import numpy as np
import pytest

from usergroups.clustering import AgglomerativeGroups, GroupClusterer
from usergroups.errors import ConfigError

from .contract import GroupClustererContract
from .planted import planted_groups


class TestAgglomerativeGroups(GroupClustererContract):
    def make(self, n_groups: int | str = "auto", random_state: int | None = 0) -> GroupClusterer:
        return AgglomerativeGroups(n_groups, k_max=8, random_state=random_state)  # type: ignore[arg-type]


def test_auto_finds_the_planted_number_of_groups() -> None:
    X, _ = planted_groups([30, 25, 20, 15, 10], random_state=4)
    model = AgglomerativeGroups(k_min=2, k_max=10, random_state=0).fit(X)
    assert model.n_groups_ == 5
    assert list(model.k_scores_) == list(range(2, 11))


def test_cutting_the_tree_gives_exactly_the_requested_number_of_groups() -> None:
    # duplicated users make tied merge heights, where cutting by height would go wrong
    X = np.repeat(np.eye(4, dtype=np.float32), 5, axis=0)
    for k in range(1, 8):
        assert AgglomerativeGroups(n_groups=k).fit(X).n_groups_ == k


def test_too_many_users_raises_config_error_suggesting_kmeans() -> None:
    X, _ = planted_groups([20, 20])
    with pytest.raises(ConfigError, match=r"max_users=30.*method='kmeans'.*method='minibatch'"):
        AgglomerativeGroups(n_groups=2, max_users=30).fit(X)


def test_k_max_below_k_min_raises_config_error() -> None:
    X, _ = planted_groups([5, 5])
    with pytest.raises(ConfigError, match="k_max=3 is smaller than k_min=4"):
        AgglomerativeGroups(k_min=4, k_max=3).fit(X)

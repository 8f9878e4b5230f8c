"""KMeansGroups and MiniBatchKMeansGroups."""

from __future__ import annotations

import numpy as np
import pytest

from usergroups.clustering import GroupClusterer, KMeansGroups, MiniBatchKMeansGroups
from usergroups.errors import ConfigError

from .contract import GroupClustererContract
from .planted import planted_groups


class TestKMeansGroups(GroupClustererContract):
    def make(self, n_groups: int | str = "auto", random_state: int | None = 0) -> GroupClusterer:
        return KMeansGroups(n_groups, k_max=8, n_init=4, random_state=random_state)  # type: ignore[arg-type]


class TestMiniBatchKMeansGroups(GroupClustererContract):
    def make(self, n_groups: int | str = "auto", random_state: int | None = 0) -> GroupClusterer:
        return MiniBatchKMeansGroups(
            n_groups,  # type: ignore[arg-type]
            k_max=8,
            n_init=3,
            batch_size=64,
            random_state=random_state,
        )


@pytest.fixture(scope="module")
def five_groups() -> tuple[np.ndarray, np.ndarray]:
    return planted_groups([40, 35, 30, 25, 20], random_state=3)


@pytest.mark.parametrize("estimator", [KMeansGroups, MiniBatchKMeansGroups])
def test_auto_finds_the_planted_number_of_groups(estimator: type, five_groups: tuple) -> None:
    X, _ = five_groups
    model = estimator(k_min=2, k_max=10, random_state=0).fit(X)
    assert model.n_groups_ == 5
    assert list(model.k_scores_) == list(range(2, 11))
    assert max(model.k_scores_, key=model.k_scores_.get) == 5


def test_auto_never_tries_more_groups_than_users_minus_one() -> None:
    X, _ = planted_groups([3, 3])
    model = KMeansGroups(k_max=20, random_state=0).fit(X)
    assert list(model.k_scores_) == [2, 3, 4, 5]


def test_auto_with_too_few_users_gives_one_group() -> None:
    X, _ = planted_groups([1, 1])
    model = KMeansGroups(random_state=0).fit(X)
    assert model.n_groups_ == 1
    assert model.k_scores_ == {}


def test_auto_searches_with_few_inits_then_refits_the_winner_with_all(
    five_groups: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, _ = five_groups
    calls: list[tuple[int, int]] = []
    original = KMeansGroups._labels

    def spy(self: KMeansGroups, X: np.ndarray, k: int, n_init: int) -> np.ndarray:
        calls.append((k, n_init))
        return original(self, X, k, n_init)

    monkeypatch.setattr(KMeansGroups, "_labels", spy)
    KMeansGroups(k_min=2, k_max=6, n_init=10, search_n_init=2, random_state=0).fit(X)
    assert calls == [(2, 2), (3, 2), (4, 2), (5, 2), (6, 2), (5, 10)]


def test_predict_on_training_data_equals_labels(five_groups: tuple) -> None:
    X, _ = five_groups
    model = KMeansGroups(n_groups=5, random_state=0).fit(X)
    np.testing.assert_array_equal(model.predict(X), model.labels_)


def test_auto_mode_is_deterministic(five_groups: tuple) -> None:
    X, _ = five_groups
    first = KMeansGroups(k_max=8, random_state=5).fit(X)
    second = KMeansGroups(k_max=8, random_state=5).fit(X)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    assert first.k_scores_ == second.k_scores_


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"k_min": 1}, "k_min=1 must be an integer >= 2"),
        ({"k_min": 6, "k_max": 4}, "k_max=4 is smaller than k_min=6"),
        ({"n_init": 0}, "n_init=0"),
        ({"search_n_init": 0}, "search_n_init=0"),
        ({"max_iter": 0}, "max_iter=0"),
        ({"silhouette_sample": 1}, "silhouette_sample=1"),
        ({"n_groups": 0}, "n_groups=0 is not one of 'auto' or a positive integer"),
        ({"n_groups": 2.5}, "n_groups=2.5"),
    ],
)
def test_bad_parameters_raise_config_error_when_fitting(
    params: dict, message: str, five_groups: tuple
) -> None:
    X, _ = five_groups
    model = KMeansGroups(**params)  # the constructor only stores
    with pytest.raises(ConfigError, match=message):
        model.fit(X)


def test_minibatch_rejects_bad_batch_size(five_groups: tuple) -> None:
    X, _ = five_groups
    with pytest.raises(ConfigError, match="batch_size=0"):
        MiniBatchKMeansGroups(batch_size=0).fit(X)

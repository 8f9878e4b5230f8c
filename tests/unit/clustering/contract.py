"""Contract tests every GroupClusterer mixes in.

Usage::

    class TestKMeansGroups(GroupClustererContract):
        def make(self, n_groups, random_state):
            return KMeansGroups(n_groups, k_max=8, random_state=random_state)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.metrics import adjusted_rand_score

from usergroups.clustering import GroupClusterer
from usergroups.errors import ConfigError, DataError, NotFittedError

from .planted import planted_groups

PLANTED_SIZES = [40, 35, 30, 25, 20]


@st.composite
def user_vectors(draw: st.DrawFn) -> np.ndarray:
    """Small arbitrary user matrices, duplicates and zero rows included."""
    n_users = draw(st.integers(1, 30))
    n_features = draw(st.integers(1, 5))
    elements = st.floats(-10, 10, width=32, allow_subnormal=False)
    return draw(arrays(np.float32, (n_users, n_features), elements=elements))


class GroupClustererContract:
    """What every clusterer promises. Subclasses implement :meth:`make`."""

    #: True for methods that find the number of groups themselves (HDBSCAN)
    chooses_n_groups: ClassVar[bool] = False

    def make(self, n_groups: int | str = "auto", random_state: int | None = 0) -> GroupClusterer:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def planted(cls) -> tuple[np.ndarray, np.ndarray]:
        return planted_groups(PLANTED_SIZES, random_state=11)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, planted: tuple[np.ndarray, np.ndarray]) -> GroupClusterer:
        X, _ = planted
        return cls().make(len(PLANTED_SIZES), 0).fit(X)

    # -- recovering the right answer

    def test_recovers_planted_groups(self, fitted: GroupClusterer, planted: Any) -> None:
        _, y = planted
        assert fitted.n_groups_ == len(PLANTED_SIZES)
        assert adjusted_rand_score(y, fitted.labels_) >= 0.95

    def test_silhouette_is_high_on_separated_groups(self, fitted: GroupClusterer) -> None:
        assert 0.5 < fitted.silhouette_ <= 1.0

    def test_predict_on_training_data_reproduces_labels(
        self, fitted: GroupClusterer, planted: Any
    ) -> None:
        X, _ = planted
        grouped = fitted.labels_ >= 0
        np.testing.assert_array_equal(fitted.predict(X)[grouped], fitted.labels_[grouped])

    def test_scaling_rows_does_not_change_groups(
        self, fitted: GroupClusterer, planted: Any
    ) -> None:
        X, _ = planted
        scales = np.random.default_rng(0).uniform(0.5, 3.0, size=(X.shape[0], 1))
        scaled = self.make(len(PLANTED_SIZES), 0).fit((X * scales).astype(np.float32))
        assert adjusted_rand_score(fitted.labels_, scaled.labels_) == pytest.approx(1.0)

    # -- learned attributes

    def test_learned_attributes_have_documented_types_and_shapes(
        self, fitted: GroupClusterer, planted: Any
    ) -> None:
        X, _ = planted
        assert fitted.labels_.dtype == np.int64
        assert fitted.labels_.shape == (X.shape[0],)
        assert fitted.centroids_.dtype == np.float32
        assert fitted.centroids_.shape == (fitted.n_groups_, X.shape[1])
        assert isinstance(fitted.n_groups_, int)
        assert isinstance(fitted.k_scores_, dict)
        assert isinstance(fitted.silhouette_, float)
        assert fitted.n_features_in_ == X.shape[1]

    def test_every_group_id_is_used(self, fitted: GroupClusterer) -> None:
        used = np.unique(fitted.labels_[fitted.labels_ >= 0])
        np.testing.assert_array_equal(used, np.arange(fitted.n_groups_))

    def test_centroids_are_means_of_members(self, fitted: GroupClusterer, planted: Any) -> None:
        X, _ = planted
        for g in range(fitted.n_groups_):
            np.testing.assert_allclose(
                fitted.centroids_[g], X[fitted.labels_ == g].mean(axis=0), atol=1e-5
            )

    def test_k_scores_empty_when_n_groups_is_given(self, fitted: GroupClusterer) -> None:
        assert fitted.k_scores_ == {}

    def test_fit_predict_equals_labels(self, fitted: GroupClusterer, planted: Any) -> None:
        X, _ = planted
        np.testing.assert_array_equal(
            self.make(len(PLANTED_SIZES), 0).fit_predict(X), fitted.labels_
        )

    # -- determinism

    def test_same_random_state_gives_identical_labels(self, planted: Any) -> None:
        X, _ = planted
        first = self.make(len(PLANTED_SIZES), 7).fit(X)
        second = self.make(len(PLANTED_SIZES), 7).fit(X)
        np.testing.assert_array_equal(first.labels_, second.labels_)
        np.testing.assert_array_equal(first.centroids_, second.centroids_)
        assert first.silhouette_ == second.silhouette_

    # -- the estimator contract

    def test_constructor_only_stores_parameters(self) -> None:
        model = self.make()
        assert not [name for name in vars(model) if name.endswith("_")]

        # nested estimators are cloned, so compare their parameters rather than the objects
        def plain(params: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in params.items() if not isinstance(v, BaseEstimator)}

        assert plain(clone(model).get_params()) == plain(model.get_params())

    def test_fit_returns_self(self, planted: Any) -> None:
        X, _ = planted
        model = self.make(len(PLANTED_SIZES), 0)
        assert model.fit(X) is model

    def test_predict_before_fit_raises_not_fitted_error(self, planted: Any) -> None:
        X, _ = planted
        model = self.make()
        with pytest.raises(NotFittedError, match=rf"{type(model).__name__}.*call fit") as info:
            model.predict(X)
        assert isinstance(info.value.__cause__, SklearnNotFittedError)

    def test_non_finite_vectors_raise_data_error(self, planted: Any) -> None:
        X, _ = planted
        bad = X.copy()
        bad[3, 1] = np.nan
        with pytest.raises(DataError, match="row 3"):
            self.make().fit(bad)

    def test_one_dimensional_input_raises_data_error(self) -> None:
        with pytest.raises(DataError, match="2-D"):
            self.make().fit(np.ones(5, dtype=np.float32))

    def test_predict_with_other_n_features_raises_data_error(
        self, fitted: GroupClusterer, planted: Any
    ) -> None:
        X, _ = planted
        with pytest.raises(DataError, match="features"):
            fitted.predict(X[:, :-1])

    def test_bad_n_groups_raises_config_error_naming_the_choices(self, planted: Any) -> None:
        if self.chooses_n_groups:
            pytest.skip("this method has no n_groups")
        X, _ = planted
        with pytest.raises(ConfigError, match="'auto' or a positive integer"):
            self.make("many").fit(X)

    def test_more_groups_than_users_raises_config_error(self) -> None:
        if self.chooses_n_groups:
            pytest.skip("this method has no n_groups")
        X, _ = planted_groups([2, 2])
        with pytest.raises(ConfigError, match="only 4 users"):
            self.make(5).fit(X)

    # -- properties

    @pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
    @settings(
        max_examples=25,
        deadline=None,
        # the same property runs once per implementing class, by design
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
    )
    @given(X=user_vectors(), data=st.data())
    def test_any_input_gets_valid_groups(self, X: np.ndarray, data: st.DataObject) -> None:
        n_users = X.shape[0]
        n_groups = data.draw(st.one_of(st.just("auto"), st.integers(1, n_users)))
        model = self.make(n_groups, 0).fit(X)
        assert model.labels_.shape == (n_users,)
        assert ((model.labels_ >= -1) & (model.labels_ < model.n_groups_)).all()
        assert model.n_groups_ <= n_users
        assert model.centroids_.shape == (model.n_groups_, X.shape[1])
        assert np.isfinite(model.centroids_).all()
        assert np.isnan(model.silhouette_) or -1.0 <= model.silhouette_ <= 1.0
        predicted = model.predict(X)
        if model.n_groups_:
            assert ((predicted >= 0) & (predicted < model.n_groups_)).all()
        else:
            assert (predicted == -1).all()

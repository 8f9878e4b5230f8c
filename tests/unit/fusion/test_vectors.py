from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from usergroups.data import build_dataset
from usergroups.errors import ConfigError, DataError
from usergroups.fusion import UserVectorBuilder, l2_normalise, pool_rows
from usergroups.testing import make_planted


def _random_text_vectors(n: int, dim: int = 16) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)


def test_behaviour_part_recovers_planted_groups() -> None:
    planted = make_planted(n_users=200, n_groups=4, random_state=1)
    ds = planted.dataset
    b = UserVectorBuilder(n_components=16, text_weight=0.0, random_state=0).fit(
        ds, _random_text_vectors(len(ds.texts))
    )
    labels = KMeans(4, n_init=5, random_state=0).fit_predict(b.vectors_)
    assert adjusted_rand_score(planted.labels_for(ds.user_ids.ids), labels) >= 0.9


def test_fused_vectors_are_unit_norm_with_expected_shape() -> None:
    ds = make_planted(n_users=60, n_groups=2).dataset
    b = UserVectorBuilder(n_components=8, random_state=0).fit(
        ds, _random_text_vectors(len(ds.texts))
    )
    assert b.vectors_.shape == (60, 16 + 8)
    assert np.allclose(np.linalg.norm(b.vectors_, axis=1), 1.0, atol=1e-5)
    assert b.vectors_.dtype == np.float32


def test_users_without_text_or_interactions_still_get_a_vector() -> None:
    inter = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]})
    texts = pd.DataFrame(
        {"user_id": ["a", "talker"], "text": ["hello", "only words"], "item_id": ["x", None]}
    )
    ds = build_dataset(inter, texts)
    b = UserVectorBuilder(n_components=4, random_state=0).fit(ds, _random_text_vectors(2, 4))
    norms = np.linalg.norm(b.vectors_, axis=1)
    assert (norms > 0.99).all(), norms  # b has no text: its items' vectors stand in
    assert b.has_text_.tolist() == [True, False, True]


def test_text_weight_zero_ignores_text_and_one_ignores_behaviour() -> None:
    ds = make_planted(n_users=40, n_groups=2).dataset
    tv = _random_text_vectors(len(ds.texts))
    only_b = UserVectorBuilder(n_components=4, text_weight=0.0, random_state=0).fit(ds, tv)
    assert np.allclose(only_b.vectors_[:, :16], 0)
    only_t = UserVectorBuilder(n_components=4, text_weight=1.0, random_state=0).fit(ds, tv)
    assert np.allclose(only_t.vectors_[:, 16:], 0)


def test_rating_pooling_weights_texts_by_rating() -> None:
    inter = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["x", "y"]})
    texts = pd.DataFrame({"user_id": ["u", "u"], "text": ["a", "b"], "rating": [5.0, 1.0]})
    ds = build_dataset(inter, texts)
    tv = np.array([[1, 0], [0, 1]], dtype=np.float32)
    b = UserVectorBuilder(text_pooling="rating", behaviour="none").fit(ds, tv)
    assert b.semantic_[0, 0] > 4 * b.semantic_[0, 1]


def test_wrong_number_of_text_vectors_is_an_error() -> None:
    ds = make_planted(n_users=20, n_groups=2).dataset
    with pytest.raises(DataError, match="one row per text"):
        UserVectorBuilder().fit(ds, _random_text_vectors(3))


def test_bad_behaviour_choice_lists_choices() -> None:
    ds = make_planted(n_users=20, n_groups=2).dataset
    with pytest.raises(ConfigError, match="'svd', 'item_mean', 'none'"):
        UserVectorBuilder(behaviour="als").fit(ds, _random_text_vectors(len(ds.texts)))  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 20), st.integers(1, 6), st.integers(0, 10_000))
def test_pool_rows_means_match_a_loop(n_rows: int, n_out: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_out, n_rows)
    vecs = rng.normal(size=(n_rows, 3)).astype(np.float32)
    pooled = pool_rows(groups, vecs, n_out)
    for g in range(n_out):
        expect = vecs[groups == g].mean(axis=0) if (groups == g).any() else np.zeros(3)
        assert np.allclose(pooled[g], expect, atol=1e-5)


def test_l2_normalise_keeps_zero_rows() -> None:
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.tolist() == [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]


def test_behaviour_block_is_the_builders_block_and_projects_new_rows() -> None:
    """Issue 21: one behaviour block for the builder, the validation carve and Spark's
    local projection (``fusion.vectors.behaviour_block``)."""
    from usergroups.fusion.vectors import behaviour_block

    planted = make_planted(n_users=120, n_groups=3, random_state=2)
    ds = planted.dataset
    b = UserVectorBuilder(n_components=8, random_state=0).fit(
        ds, _random_text_vectors(len(ds.texts))
    )
    x = ds.interaction_matrix()
    block, comps = behaviour_block(x, "svd", n_components=8, random_state=0)
    np.testing.assert_array_equal(block, b.behaviour_)
    assert comps is not None
    np.testing.assert_array_equal(comps, b.svd_components_)
    projected, _ = behaviour_block(x[:10], "svd", components=comps)
    assert projected.shape == (10, 8)
    np.testing.assert_allclose(np.linalg.norm(projected, axis=1), 1.0, atol=1e-5)
    mean, none = behaviour_block(x, "item_mean", item_vectors=b.item_vectors_)
    assert mean.shape == (ds.n_users, b.item_vectors_.shape[1]) and none is None
    assert behaviour_block(x, "none")[0].shape == (ds.n_users, 0)
    with pytest.raises(ConfigError, match="not one of 'svd', 'item_mean', 'none'"):
        behaviour_block(x, "pca")  # type: ignore[arg-type]

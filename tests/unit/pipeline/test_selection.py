"""Model selection (issue 12): the carve, the grids, the choices and swapped stages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.clustering import AgglomerativeGroups
from usergroups.data import Dataset, build_dataset
from usergroups.embedding import HashingEncoder
from usergroups.errors import ConfigError
from usergroups.evaluation.splits import first_text_per_user
from usergroups.fitted import CHOICE_NAMES
from usergroups.fusion import UserVectorBuilder
from usergroups.selection import BLEND_GRID, Stages, carve_validation, k_grid, select
from usergroups.testing import PlantedData, make_planted


@pytest.fixture(scope="module")
def planted() -> PlantedData:
    return make_planted(n_users=200, n_groups=4, n_items=80, texts_per_user=3, random_state=5)


@pytest.fixture(scope="module")
def text_vectors(planted: PlantedData) -> np.ndarray:
    return HashingEncoder(dim=64).encode(planted.dataset.texts["text"].tolist())


def _config(**sections: dict[str, object]) -> DiscoveryConfig:
    # small enough that the selection specification runs in the fast loop (issue 21)
    base: dict[str, object] = {
        "embedding": {"model": "hashing:64", "use_cache": False},
        "clustering": {"k_max": 6},
        "align": {"dim": 16, "max_epochs": 10},
        "user_vectors": {"n_components": 16},
        "random_state": 0,
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}  # type: ignore[dict-item]
    return DiscoveryConfig.model_validate(base)


def _with_reviews_of_last_items(ds: Dataset) -> Dataset:
    """``ds`` plus, for every user, a review of their last item (the warm validation target).

    Planted users review only their first items, so without these the warm guard below
    would have nothing to drop.
    """
    inter = ds.interactions.assign(_pos=np.arange(ds.n_interactions))
    last = inter.sort_values(["timestamp", "_pos"]).drop_duplicates("user_id", keep="last")
    extra = pd.DataFrame(
        {
            "user_id": last["user_id"].to_numpy(),
            "text": [f"about my last item {i}" for i in last["item_id"]],
            "item_id": last["item_id"].to_numpy(),
            "rating": last["rating"].to_numpy(),
            "timestamp": last["timestamp"].to_numpy(),
        }
    )
    texts = pd.concat([ds.texts, extra], ignore_index=True)
    return build_dataset(ds.interactions, texts, ds.items, name=ds.name)


def test_carve_holds_out_without_leaking(planted: PlantedData) -> None:
    """Issue 13: the guards themselves, not the shapes of the arrays that hold them."""
    ds = _with_reviews_of_last_items(planted.dataset)
    carve = carve_validation(ds, cold_fraction=0.2, random_state=0)
    x = ds.interaction_matrix()
    assert len(carve.cold_rows) > 0 and len(carve.warm_rows) > 0
    assert not set(carve.cold_rows) & set(carve.warm_rows)
    # cold users are gone from training, with their texts
    assert carve.x_train[carve.cold_rows].nnz == 0
    users = ds.user_ids.index(ds.texts["user_id"])
    assert not carve.text_keep[np.isin(users, carve.cold_rows)].any()
    # each warm validation user lost exactly one interaction, which is not in x_train
    assert np.all(carve.held_out[carve.warm_rows].sum(axis=1) == 1)
    assert carve.x_train.multiply(carve.held_out).nnz == 0
    lost = np.asarray((x[carve.warm_rows] > 0).sum(axis=1)).ravel() - np.diff(
        carve.x_train[carve.warm_rows].indptr
    )
    assert np.all(lost == 1)
    # warm: a text about a user's held-out item is not trained on; their other texts are
    items = ds.item_ids.index(ds.texts["item_id"])
    held = np.asarray(carve.held_out[users, items]).ravel() > 0
    assert held.sum() == len(carve.warm_rows)  # one review of each held-out item
    assert not carve.text_keep[held].any()
    others = ~held & ~np.isin(users, carve.cold_rows)
    assert carve.text_keep[others].all()
    # cold: the query review's item is never a target; every other item of the user is
    for j, user in enumerate(carve.cold_rows):
        query_item = items[carve.cold_query[j]]
        targets = set(carve.cold_targets[j].indices.tolist())
        assert query_item not in targets
        assert targets == set(x[user].indices.tolist()) - {query_item}


def test_carve_queries_new_users_by_their_first_text(planted: PlantedData) -> None:
    ds = planted.dataset
    carve = carve_validation(ds, cold_fraction=0.2, random_state=0)
    # the cold protocol's rule: the first text by time (ties: row order)
    np.testing.assert_array_equal(carve.cold_query, first_text_per_user(ds)[carve.cold_rows])
    # the query's own item is never a target
    items = ds.texts["item_id"].to_numpy()[carve.cold_query]
    for j, item in enumerate(items):
        if item in ds.item_ids:
            assert carve.cold_targets[j, ds.item_ids.index([item])[0]] == 0


def test_k_grid_comes_from_the_range() -> None:
    assert k_grid(5, 7, 300) == (5, 6, 7)
    assert k_grid(3, 10, 300)[0] == 3 and k_grid(3, 10, 300)[-1] == 10
    assert len(k_grid(3, 10, 300)) >= 6
    assert k_grid(2, 50, 1000)[-1] == 50
    assert k_grid(2, 50, 30)[-1] == 29  # capped by the users, and reported by select
    with pytest.raises(ConfigError, match="k_min"):
        k_grid(40, 50, 30)
    with pytest.raises(ConfigError, match="k_min"):
        k_grid(6, 5, 300)


def _stages(gd: GroupDiscovery, builder: UserVectorBuilder) -> Stages:
    return gd._stages(builder)


def test_select_makes_its_choices_on_validation(
    planted: PlantedData, text_vectors: np.ndarray
) -> None:
    ds = planted.dataset
    cfg = _config()
    builder = UserVectorBuilder(n_components=16, random_state=0).fit(ds, text_vectors)
    result = select(
        ds, text_vectors, None, builder.semantic_, cfg, _stages(GroupDiscovery(cfg), builder)
    )
    rep = result.report
    assert result.head is not None and result.text_block.shape == (ds.n_users, 16)
    assert result.text_weight in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert result.n_groups in range(2, 7)
    assert {e["k"] for e in rep["grid"]} == set(range(2, 7))
    assert set(result.choices) == set(CHOICE_NAMES)
    # every choice on validation; EASE's pruning does not apply when item-kNN won (issue 24)
    itemknn = result.choices["personal_model"].value == "itemknn"
    assert all(
        c.source == "validation"
        for name, c in result.choices.items()
        if not (itemknn and name == "ease_keep")
    )
    assert not itemknn or result.choices["ease_keep"].value is None
    # a value from the grid, and the one recorded as the choice (a range check could not fail)
    assert result.personal_weight in BLEND_GRID
    assert result.choices["personal_weight"].value == result.personal_weight
    # new users: the best of the 66 mixes of group, ridge and spread on held-out new users
    mixes = rep["cold_mixes"]
    assert len(mixes) == 66
    best = max(mixes, key=lambda m: m["ndcg"])
    assert result.new_users is not None
    assert result.new_users.weights == {k: best[k] for k in ("group", "ridge", "spread")}
    assert result.choices["cold_weight"].value == best["ridge"]
    assert result.choices["cold_spread_weight"].value == best["spread"]


def test_new_user_mix_honours_the_config_and_needs_the_personal_model(
    planted: PlantedData, text_vectors: np.ndarray
) -> None:
    ds = planted.dataset
    builder = UserVectorBuilder(n_components=16, random_state=0).fit(ds, text_vectors)

    def run(cfg: DiscoveryConfig) -> object:
        return select(
            ds, text_vectors, None, builder.semantic_, cfg, _stages(GroupDiscovery(cfg), builder)
        )

    fixed = run(_config(recommend={"cold_weight": 0.3, "cold_spread_weight": 0.5}))
    assert fixed.new_users.weights == {"group": 0.2, "ridge": 0.3, "spread": 0.5}
    assert fixed.choices["cold_spread_weight"].source == "config"
    no_personal = run(_config(recommend={"personal": "none"}))
    assert no_personal.new_users.weights["spread"] == 0.0
    assert "personal" in no_personal.choices["cold_spread_weight"].reason
    with pytest.raises(ConfigError, match="item-item"):
        run(_config(recommend={"personal": "none", "cold_spread_weight": 0.5}))


def test_select_without_alignment_uses_frozen_vectors(
    planted: PlantedData, text_vectors: np.ndarray
) -> None:
    ds = planted.dataset
    cfg = _config(align={"method": "none"})
    builder = UserVectorBuilder(n_components=16, random_state=0).fit(ds, text_vectors)
    result = select(
        ds, text_vectors, None, builder.semantic_, cfg, _stages(GroupDiscovery(cfg), builder)
    )
    assert result.head is None and result.ridge is not None  # new users: text → item ridge
    np.testing.assert_allclose(result.text_block, builder.semantic_, atol=1e-6)


def test_refit_reuses_the_fits_behaviour_block_issue_25(
    planted: PlantedData, text_vectors: np.ndarray
) -> None:
    """Issue 25: the refit on all the data takes the fit's behaviour SVD instead of solving
    it a second time, and that block is the one a second solve would give."""
    ds = planted.dataset
    cfg = _config(align={"method": "none"})
    builder = UserVectorBuilder(n_components=16, random_state=0).fit(ds, text_vectors)
    stages = GroupDiscovery(cfg)._stages(builder)
    assert stages.full_behaviour is builder.behaviour_
    x_full = ds.interaction_matrix()
    np.testing.assert_allclose(stages.behaviour_of(x_full), builder.behaviour_, atol=1e-6)
    calls: list[int] = []

    def counted_behaviour(m: sp.csr_matrix) -> np.ndarray:
        calls.append(m.nnz)
        return stages.behaviour_of(m)

    counted = Stages(
        new_aligner=stages.new_aligner,
        clusterer_at=stages.clusterer_at,
        can_set_k=stages.can_set_k,
        behaviour_of=counted_behaviour,
        full_behaviour=builder.behaviour_,
    )
    result = select(ds, text_vectors, None, builder.semantic_, cfg, counted)
    assert calls == [calls[0]] and calls[0] < x_full.nnz  # the carve's SVD only
    assert result.behaviour is builder.behaviour_


def test_k_range_is_honoured(planted: PlantedData) -> None:
    cfg = _config(clustering={"k_min": 5, "k_max": 7}, align={"method": "none"})
    gd = GroupDiscovery(cfg).fit(planted.dataset)
    assert 5 <= gd.n_groups_ <= 7
    assert {e["k"] for e in gd.metrics_["alignment"]["grid"]} == {5, 6, 7}


def test_too_few_validation_users_fall_back_and_say_so() -> None:
    small = make_planted(n_users=16, n_groups=2, n_items=30, texts_per_user=2, random_state=1)
    gd = GroupDiscovery(_config(align={"method": "none"})).fit(small.dataset)
    choices = gd.metrics_["choices"]
    assert choices["text_weight"]["source"] == "default"
    assert "validation users" in choices["text_weight"]["reason"]
    assert choices["n_groups"]["source"] == "default"
    assert any(line.startswith("text_weight") for line in gd.metrics_["fallbacks"])
    assert gd.state_.choices["text_weight"].source == "default"


def test_a_swapped_clusterer_still_aligns_blends_and_chooses(planted: PlantedData) -> None:
    cfg = _config()
    gd = GroupDiscovery(cfg, clusterer=AgglomerativeGroups(random_state=0)).fit(planted.dataset)
    state = gd.state_
    assert state.head is not None  # aligned
    assert state.personal is not None and state.ridge is not None  # blends and new users
    assert state.choices["n_groups"].source == "validation"
    assert state.choices["text_weight"].source == "validation"
    assert gd.metrics_["k_selection"] == "validation"
    assert 2 <= gd.n_groups_ <= 6


def test_a_swapped_aligner_is_trained_on_the_carve(planted: PlantedData) -> None:
    from usergroups.alignment import AlignmentHead

    aligner = AlignmentHead(dim=8, max_epochs=5, random_state=0)
    gd = GroupDiscovery(_config(), aligner=aligner).fit(planted.dataset)
    assert gd.state_.head is not aligner and gd.state_.head.W_.shape[0] == 8
    assert not hasattr(aligner, "W_")  # cloned, never fitted in place


def test_all_empty_texts_say_that_align_none_works() -> None:
    """Issue 13: a dataset whose every text is empty fails with a message naming the way
    out (--align none), and that way out works."""
    import pandas as pd

    from usergroups import build_dataset
    from usergroups.errors import DataError

    inter = pd.DataFrame(
        {
            "user_id": [f"u{i % 30}" for i in range(300)],
            "item_id": [f"i{i * 7 % 40}" for i in range(300)],
        }
    )
    texts = pd.DataFrame({"user_id": [f"u{i}" for i in range(30)], "text": ["   "] * 30})
    ds = build_dataset(inter, texts)
    with pytest.raises(DataError, match="--align none"):
        GroupDiscovery(_config()).fit(ds)
    gd = GroupDiscovery(_config(align={"method": "none"})).fit(ds)
    assert gd.n_groups_ >= 2


def test_the_chosen_number_of_groups_is_stable(planted: PlantedData) -> None:
    """Issue 14: a K is a candidate only if resampled re-clusterings agree with it."""
    cfg = _config(align={"method": "none"}, clustering={"k_min": 2, "k_max": 6})
    gd = GroupDiscovery(cfg).fit(planted.dataset)
    rep = gd.metrics_["alignment"]
    entries = [e for e in rep["grid"] if e["text_weight"] == rep["text_weight"]]
    assert all(0.0 <= e["stability"] <= 1.0 for e in entries)
    chosen = next(e for e in entries if e["k"] == gd.n_groups_)
    assert chosen["stability"] >= cfg.clustering.min_stability and chosen["within"]
    assert all(not e["within"] for e in entries if e["stability"] < cfg.clustering.min_stability)
    # the fewest stable K within one paired standard error of the best stable one
    assert chosen["k"] == min(e["k"] for e in entries if e["within"])
    assert gd.metrics_["k_stability"] == {str(e["k"]): e["stability"] for e in entries}
    # every final group carries its own stability in its profile and in the metrics
    stability = gd.metrics_["stability"]
    assert set(stability) >= {"ari", "groups", "unstable", "resamples"}
    assert set(gd.groups_["stability"].round(4)) == set(stability["groups"].values())
    flagged = gd.groups_.loc[gd.groups_["unstable"], "group_id"].tolist()
    assert flagged == stability["unstable"]


def test_no_stable_number_of_groups_falls_back_and_says_so(planted: PlantedData) -> None:
    cfg = _config(
        align={"method": "none"}, clustering={"k_min": 9, "k_max": 11, "min_stability": 1.0}
    )
    gd = GroupDiscovery(cfg).fit(planted.dataset)
    reason = gd.state_.choices["n_groups"].reason
    assert "no number of groups reached stability" in reason
    assert any(line.startswith("n_groups: no number") for line in gd.metrics_["fallbacks"])


def test_stability_can_be_switched_off(planted: PlantedData) -> None:
    cfg = _config(
        align={"method": "none"},
        clustering={"k_min": 3, "k_max": 5, "stability_resamples": 0},
        user_vectors={"text_weight": 0.5},
        recommend={"personal": "none"},
    )
    gd = GroupDiscovery(cfg).fit(planted.dataset)
    assert "stability" not in gd.metrics_
    assert all("stability" not in e for e in gd.metrics_["alignment"]["grid"])
    assert gd.groups_["stability"].isna().all() and not gd.groups_["unstable"].any()


def test_the_blend_grid_mixes_prescaled_parts_to_the_same_numbers_issue_25() -> None:
    """Issue 25: the blend grid scales each part once; every entry is still exactly
    ``blend`` of the unscaled scores."""
    from usergroups.recommend.hybrid import blend, personal_weights, row_scaled
    from usergroups.selection import _mix_scaled

    rng = np.random.default_rng(0)
    group = (rng.random((30, 20)) * 3).astype(np.float32)
    personal = (rng.random((30, 20)) * 5 - 1).astype(np.float32)
    personal[3] = 0.0  # a user the personal model cannot score
    seen = sp.random(30, 20, density=0.1, format="csr", random_state=0)
    for weight in BLEND_GRID:
        for shrinkage in (0.0, 2.0, 10.0):
            w = personal_weights(seen, weight, shrinkage)
            np.testing.assert_array_equal(
                _mix_scaled(row_scaled(group), row_scaled(personal), w),
                blend(group, personal, w),
            )


def test_the_blend_grid_ranked_by_blocks_of_rows_on_threads_is_one_call_issue_25(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 25: the grid blends and ranks a block of rows at a time on threads; the
    per-user NDCG is that of one call over all rows."""
    import usergroups.selection as selection
    from usergroups.ranking import ndcg_rows

    rng = np.random.default_rng(3)
    n, m = 90, 40
    group = selection.row_scaled(rng.integers(0, 5, (n, m)).astype(np.float32))
    personal = selection.row_scaled(
        (rng.random((n, m)) * (rng.random((n, m)) < 0.3)).astype(np.float32)
    )
    seen = sp.csr_matrix((rng.random((n, m)) < 0.1).astype(np.float32))
    held = sp.csr_matrix(((rng.random((n, m)) < 0.04) & (seen.toarray() == 0)).astype(np.float32))
    w = selection.personal_weights(seen, 0.5, 2.0)
    expected = ndcg_rows(selection._mix_scaled(group, personal, w), held, seen)
    monkeypatch.setattr(selection, "GRID_CELLS", 7 * m)  # 13 blocks of 7 rows
    np.testing.assert_array_equal(selection._blend_ndcg(group, personal, w, held, seen), expected)
    assert 1 <= selection.grid_threads() <= 4

"""Segments for people, fine groups for predictions (issue 23), end to end on planted data.

Eight planted tastes are forced into two segments (``clustering.n_groups = 2``): the
segments stay coarse and readable, and the fine groups behind them must carry the eight.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.cli.main import cli
from usergroups.testing import make_planted


def _config(**clustering: object) -> DiscoveryConfig:
    return DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing", "use_cache": False},
            "clustering": {"n_groups": 2, **clustering},
            "reuse": False,
        }
    )


def _fixed_config(text_weight: float) -> DiscoveryConfig:
    """Every setting fixed: a fit that carves no validation data."""
    return DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing", "use_cache": False},
            "align": {"method": "none"},
            "user_vectors": {"text_weight": text_weight},
            "clustering": {"n_groups": 2},
            "recommend": {"personal": "none"},
            "reuse": False,
        }
    )


@pytest.fixture(scope="module")
def planted():  # type: ignore[no-untyped-def]
    return make_planted(n_users=320, n_groups=8, n_items=96, purity=0.9, random_state=3)


@pytest.fixture(scope="module")
def fitted(planted) -> GroupDiscovery:  # type: ignore[no-untyped-def]
    return GroupDiscovery(_config()).fit(planted.dataset)


def test_validation_chooses_fine_groups_when_they_predict_better(fitted: GroupDiscovery) -> None:
    state = fitted.state_
    report = fitted.metrics_["alignment"]["fine_groups"]
    assert state.n_groups == 2
    assert state.choices["fine_partitions"].source == "validation"
    assert state.fine is not None
    assert state.fine.n_partitions == state.choices["fine_partitions"].value
    assert state.fine.n_fine == state.choices["fine_k"].value
    # chosen because they beat the segments on the same validation users
    assert report["best_ndcg"] > report["segments_ndcg"]
    assert {(e["n_fine"], e["partitions"]) for e in report["curve"]} >= {(8, 5), (16, 10)}
    # never fewer partitions than the best-scoring candidate at the chosen K: more of them
    # only average out more noise (the most within one paired standard error win)
    at_k = [e for e in report["curve"] if e["n_fine"] == state.fine.n_fine]
    top = max(at_k, key=lambda e: e["ndcg"])
    assert state.fine.n_partitions >= top["partitions"]


def test_every_group_answer_uses_the_fine_groups(fitted: GroupDiscovery) -> None:
    state = fitted.state_
    rows = np.arange(10)
    users = fitted.user_ids_.ids[rows].tolist()
    np.testing.assert_allclose(fitted.user_group_scores(rows), state.fine.user_scores(rows))
    # recommend ranks the blend of that group part with the personal model
    expected = fitted.blend_scores(
        fitted.labels_[rows], fitted.seen_[rows], group_part=state.fine.user_scores(rows)
    )
    np.testing.assert_allclose(fitted.user_scores(users), expected)
    one = fitted.recommend(users, n=5)
    every = fitted.recommend_all(n=5)
    mine = every[every["user_id"].isin(users)].sort_values(["user_id", "rank"])
    assert mine["item_id"].tolist() == one.sort_values(["user_id", "rank"])["item_id"].tolist()


def test_new_users_get_the_fine_groups_by_soft_membership(fitted: GroupDiscovery) -> None:
    texts = ["words of one planted taste", "another text"]
    query = fitted.head_.transform(fitted._text_semantic(texts))
    part = fitted.state_.new_user_group_part(query)
    assert part is not None and part.shape == (2, len(fitted.item_ids_))
    model = fitted.new_users_
    proba, scores = fitted.new_user_scores(texts)
    semantic = fitted._text_semantic(texts)
    rows = fitted.recommender_.group_scores(np.r_[np.arange(proba.shape[1]), -1])
    item_item = None if fitted.personal_ is None else fitted.personal_.weights_
    np.testing.assert_allclose(scores, model.scores(proba, rows, semantic, item_item, part))


def test_segments_show_their_sub_interests_and_users_their_membership(
    fitted: GroupDiscovery,
) -> None:
    subs = fitted.sub_interests_
    assert 2 <= len(subs) <= fitted.state_.fine.n_fine  # empty fine groups have no row
    assert set(subs["group_id"]) <= {0, 1}
    assert subs["stability"].notna().all()
    assert ((subs["share"] > 0) & (subs["share"] <= 1)).all()
    assignments = fitted.assignments_
    membership = np.stack(assignments["membership"].to_numpy())
    np.testing.assert_allclose(membership.sum(axis=1), 1.0, atol=1e-3)
    picked = membership[np.arange(len(membership)), assignments["group_id"]]
    np.testing.assert_allclose(picked, assignments["confidence"], atol=1e-4)
    assert (assignments["runner_up"] != assignments["group_id"]).all()
    sub = fitted.state_.fine.sub_interests()
    np.testing.assert_array_equal(assignments["sub_interest_id"], sub)


def test_the_model_directory_keeps_fine_groups_and_sub_interests(
    fitted: GroupDiscovery, tmp_path: Path
) -> None:
    loaded = GroupDiscovery.load(fitted.save(tmp_path / "m"))
    rows = np.arange(len(fitted.user_ids_))
    np.testing.assert_array_equal(loaded.user_group_scores(rows), fitted.user_group_scores(rows))
    assert loaded.state_.fine.representative_ == fitted.state_.fine.representative_
    assert loaded.sub_interests_[["group_id", "sub_id", "label"]].equals(
        fitted.sub_interests_[["group_id", "sub_id", "label"]]
    )
    texts = ["a new user's words"]
    np.testing.assert_allclose(loaded.text_scores(texts), fitted.text_scores(texts), atol=1e-6)

    out = CliRunner().invoke(cli, ["groups", str(tmp_path / "m"), "--level", "all"])
    assert out.exit_code == 0, out.output
    assert out.output.count("└") == len(fitted.sub_interests_)
    js = CliRunner().invoke(
        cli, ["groups", str(tmp_path / "m"), "--level", "all", "--format", "json"]
    )
    nested = json.loads(js.output)
    assert sum(len(g["sub_interests"]) for g in nested) == len(fitted.sub_interests_)


def test_fine_groups_can_be_turned_off(planted) -> None:  # type: ignore[no-untyped-def]
    gd = GroupDiscovery(_config(fine_partitions=0)).fit(planted.dataset)
    assert gd.state_.fine is None
    assert gd.state_.choices["fine_partitions"].source == "config"
    assert gd.sub_interests_.empty
    rows = np.arange(5)
    # the segments' popularity, or global popularity where validation found it better
    from usergroups.recommend.hybrid import group_rows_for

    expected = gd.recommender_.group_scores(group_rows_for(gd.labels_[rows], gd.group_part_))
    np.testing.assert_allclose(gd.user_group_scores(rows), expected)


def test_fine_groups_the_data_turns_off_are_a_fallback_line() -> None:
    """No silent degradation: too few users for fine groups is said in metrics.json."""
    tiny = make_planted(n_users=16, n_groups=2, n_items=20, random_state=1)
    cfg = _fixed_config(0.5)
    gd = GroupDiscovery(cfg).fit(tiny.dataset)
    choice = gd.state_.choices["fine_partitions"]
    assert gd.state_.fine is None and (choice.value, choice.source) == (0, "data")
    assert f"fine groups: off: {choice.reason}" in gd.metrics_["fallbacks"]


def test_fine_groups_choose_their_own_text_weight_on_validation(fitted: GroupDiscovery) -> None:
    """The segments' text weight is chosen for stable, readable groups; the fine groups'
    for prediction, on the same validation users, and they partition vectors fused at it."""
    from usergroups.selection import TEXT_WEIGHT_GRID

    state = fitted.state_
    choice = state.choices["fine_text_weight"]
    report = fitted.metrics_["alignment"]["fine_groups"]
    assert choice.source == "validation" and choice.value in TEXT_WEIGHT_GRID
    tried = {e["text_weight"]: e["ndcg"] for e in report["weights"]}
    assert set(tried) == set(TEXT_WEIGHT_GRID)
    assert tried[choice.value] == max(tried.values())
    # every known user sits in the fine group nearest to their vector at that weight
    vectors = state.fine_fuse(state.text_block, state.behaviour)
    np.testing.assert_array_equal(state.fine.place(vectors), state.fine.labels_)
    assert fitted.metrics_["choices"]["fine_text_weight"]["value"] == choice.value


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_a_configured_fine_text_weight_is_kept_apart_from_the_segments(planted, weight) -> None:  # type: ignore[no-untyped-def]
    gd = GroupDiscovery(_config(fine_text_weight=weight, fine_k=8, fine_partitions=5)).fit(
        planted.dataset
    )
    state = gd.state_
    assert (state.choices["fine_text_weight"].value, state.choices["fine_text_weight"].source) == (
        weight,
        "config",
    )
    assert state.fine_text_weight == weight
    from usergroups.linalg import fuse_blocks

    vectors = fuse_blocks(state.text_block, state.behaviour, weight)
    np.testing.assert_array_equal(state.fine.place(vectors), state.fine.labels_)
    # a user changed by events is placed the same way (the service's rule)
    rows = np.arange(6)
    np.testing.assert_allclose(
        state.vector_group_part(state.text_block[rows], state.behaviour[rows], state.labels[rows]),
        state.fine.user_scores(rows),
    )


def test_fixed_fits_take_the_segments_text_weight_for_the_fine_groups(planted) -> None:  # type: ignore[no-untyped-def]
    """No validation carve: the fine groups' weight is the segments', said as a default."""
    cfg = _fixed_config(0.25)
    gd = GroupDiscovery(cfg).fit(planted.dataset)
    choice = gd.state_.choices["fine_text_weight"]
    assert (choice.value, choice.source) == (0.25, "default")
    assert "segments' text weight" in choice.reason


def test_models_saved_before_the_fine_text_weight_use_the_segments_weight(
    fitted: GroupDiscovery,
) -> None:
    state = fitted.state_
    older = state.replace(
        choices={k: v for k, v in state.choices.items() if k != "fine_text_weight"}
    )
    assert older.fine_text_weight == state.text_weight

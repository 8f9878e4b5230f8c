"""Issue 24: the personal model chosen on validation, and blends that never lose to a
plain part (popularity, the group part alone, the personal model alone)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from pipeline_configs import fixed_config

from usergroups import GroupDiscovery
from usergroups.fitted import Choice
from usergroups.recommend.hybrid import ItemKNN, PrunedEASE, personal_candidates
from usergroups.selection import BLEND_GRID, SHRINKAGE_GRID, _choose_blend, _choose_personal_model
from usergroups.testing import PlantedData, make_planted

N_USERS, N_ITEMS = 40, 20


def _held_and_seen() -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """User u holds out item u % 18 and has seen item 19."""
    held_items = np.arange(N_USERS) % 18
    held = sp.csr_matrix(
        (np.ones(N_USERS, np.float32), (np.arange(N_USERS), held_items)), shape=(N_USERS, N_ITEMS)
    )
    seen = sp.csr_matrix(
        (np.ones(N_USERS, np.float32), (np.arange(N_USERS), np.full(N_USERS, 19))),
        shape=(N_USERS, N_ITEMS),
    )
    return held, seen, held_items


def _scores(held_items: np.ndarray, held_value: np.ndarray, rival: int = 18) -> np.ndarray:
    """Every item 0.1, the held-out item ``held_value`` and item ``rival`` 1.0 where the
    held-out item is not on top."""
    s = np.full((N_USERS, N_ITEMS), 0.1, dtype=np.float32)
    rows = np.arange(N_USERS)
    s[rows, held_items] = held_value
    s[rows[held_value < 1.0], rival] = 1.0
    return s


def test_issue_24_a_blend_that_cannot_beat_popularity_gives_popularity() -> None:
    """Yelp on main: the blend (personal weight 0.75) fell below popularity on test."""
    held, seen, items = _held_and_seen()
    popularity = _scores(items, np.ones(N_USERS))  # the held-out item on top for everyone
    group = _scores(items, np.full(N_USERS, 0.5))
    personal = _scores(items, np.where(np.arange(N_USERS) % 2 == 0, 1.0, 0.0))
    out = _choose_blend(group, popularity, personal, held, seen, BLEND_GRID, SHRINKAGE_GRID)
    assert (out.group_part, out.weight, out.shrinkage, out.kept) == ("popularity", 0.0, 0.0, False)
    assert out.plain["popularity"] == 1.0
    assert "popularity alone" in out.reason
    # the curve holds both group parts, never a plain part
    assert {e["part"] for e in out.curve} == {"groups", "popularity"}
    assert all(e["weight"] > 0 and (e["weight"], e["shrinkage"]) != (1.0, 0.0) for e in out.curve)


def test_issue_24_a_group_part_that_barely_beats_popularity_gives_popularity() -> None:
    """Yelp (stop 20): the segments edged out popularity on the carve (by less than a paired
    standard error) and fell below it on test; the simplest method wins such a tie."""
    held, seen, items = _held_and_seen()
    top = np.ones(N_USERS)
    popularity = _scores(items, np.where(np.arange(N_USERS) < 30, 1.0, 0.0))
    group = _scores(items, np.where(np.arange(N_USERS) < 31, 1.0, 0.0))  # one user more
    nothing = _scores(items, np.zeros(N_USERS))
    out = _choose_blend(group, popularity, nothing, held, seen, BLEND_GRID, SHRINKAGE_GRID)
    assert out.plain["groups"] > out.plain["popularity"]
    assert (out.group_part, out.weight, out.kept) == ("popularity", 0.0, False)
    # a group part that finds every held-out item beats it clearly, and is used
    out = _choose_blend(
        _scores(items, top), popularity, nothing, held, seen, BLEND_GRID, SHRINKAGE_GRID
    )
    assert (out.group_part, out.weight, out.kept) == ("groups", 0.0, False)


def test_issue_24_the_personal_model_alone_wins_when_no_blend_beats_it() -> None:
    held, seen, items = _held_and_seen()
    popularity = _scores(items, np.zeros(N_USERS))
    group = _scores(items, np.zeros(N_USERS))
    personal = _scores(items, np.ones(N_USERS))
    out = _choose_blend(group, popularity, personal, held, seen, BLEND_GRID, SHRINKAGE_GRID)
    assert (out.group_part, out.weight, out.shrinkage, out.kept) == ("groups", 1.0, 0.0, False)


def test_a_blend_that_beats_every_plain_part_is_kept() -> None:
    # the group finds the even users' items, the personal model the odd users': only a
    # blend finds both
    held, seen, items = _held_and_seen()
    even = np.arange(N_USERS) % 2 == 0
    group = _scores(items, np.where(even, 1.0, 0.6))
    personal = _scores(items, np.where(even, 0.6, 1.0), rival=17)
    popularity = _scores(items, np.zeros(N_USERS))
    out = _choose_blend(group, popularity, personal, held, seen, BLEND_GRID, SHRINKAGE_GRID)
    assert out.kept and out.group_part == "groups" and 0.0 < out.weight < 1.0
    assert out.reason == ""
    best = max(e["ndcg"] for e in out.curve)
    assert best == 1.0 and all(best > v for v in out.plain.values())


def test_a_fixed_personal_weight_is_not_overruled() -> None:
    held, seen, items = _held_and_seen()
    popularity = _scores(items, np.ones(N_USERS))
    group = _scores(items, np.zeros(N_USERS))
    out = _choose_blend(group, popularity, group, held, seen, (0.5,), (0.0,), never_lose=False)
    # the weight stays as the config set it; the group part is still the better one
    assert (out.group_part, out.weight, out.kept) == ("popularity", 0.5, True)
    out = _choose_blend(popularity, group, group, held, seen, (0.5,), (0.0,), never_lose=False)
    assert (out.group_part, out.weight, out.kept) == ("groups", 0.5, True)


def test_the_personal_model_with_the_best_validation_ndcg_is_chosen() -> None:
    assert _choose_personal_model({"ease": np.r_[0.1, 0.2], "itemknn": np.r_[0.2, 0.3]}) == (
        "itemknn"
    )
    assert _choose_personal_model({"ease": np.r_[0.2], "itemknn": np.r_[0.2]}) == "ease"
    assert _choose_personal_model({"itemknn": np.r_[0.0]}) == "itemknn"


def test_auto_means_validated_where_both_fit() -> None:
    assert personal_candidates("auto", 100, 100) == (("ease", "itemknn"), "")
    models, reason = personal_candidates("auto", 101, 100)
    assert models == ("itemknn",) and "ease_max_items=100" in reason
    assert personal_candidates("itemknn", 5, 100) == (("itemknn",), "")
    assert personal_candidates("none", 5, 100) == ((), "")


# ----------------------------------------------------------------------------- end to end
_config = fixed_config


@pytest.fixture(scope="module")
def planted() -> PlantedData:
    return make_planted(n_users=240, n_groups=4, random_state=3)


@pytest.fixture(scope="module")
def model(planted: PlantedData) -> GroupDiscovery:
    return GroupDiscovery(_config()).fit(planted.dataset)


def test_the_fit_reports_its_personal_model_and_group_part(model: GroupDiscovery) -> None:
    choices = model.metrics_["choices"]
    chosen = model.metrics_["personal_model"]
    assert choices["personal_model"] == {
        "value": chosen["model"],
        "source": "validation",
        "reason": "",
    }
    assert [c["model"] for c in chosen["curve"]] == ["ease", "itemknn"]
    assert 0.0 <= chosen["validation_reach"] <= 1.0
    kind = {"ease": PrunedEASE, "itemknn": ItemKNN}[chosen["model"]]
    assert isinstance(model.personal_, kind)
    assert choices["group_part"]["value"] in ("groups", "popularity")
    assert choices["group_part"]["source"] == "validation"
    assert model.group_part_ == choices["group_part"]["value"]
    plain = model.metrics_["alignment"]["plain_parts"]
    assert set(plain) == {"groups", "personal", "popularity"}


def _ranking_by_popularity(model: GroupDiscovery) -> GroupDiscovery:
    """``model`` with the plain popularity part chosen (weight 0, group part popularity)."""
    choices = dict(model.state_.choices)
    choices["group_part"] = Choice("popularity", "validation", "test")
    twin = copy.copy(model)
    twin.state_ = model.state_.replace(choices=choices, personal_weight=0.0)
    return twin


def test_popularity_as_the_plain_part_ranks_by_global_popularity(
    model: GroupDiscovery, tmp_path: Path
) -> None:
    pop = _ranking_by_popularity(model)
    users = pop.user_ids_.ids.tolist()
    recs = pop.recommend(users, n=5)
    popularity = np.asarray(pop.seen_.sum(axis=0)).ravel()
    for user, rows in recs.groupby("user_id", sort=False):
        row = pop.user_ids_.index([user])[0]
        seen = set(pop.seen_[row].indices)
        order = [i for i in np.argsort(-popularity, kind="stable") if i not in seen][:5]
        expected = [str(pop.item_ids_.ids[i]) for i in order]
        got = rows["item_id"].tolist()
        # same items up to ties in popularity
        assert sorted(popularity[pop.item_ids_.index(got)]) == sorted(
            popularity[pop.item_ids_.index(expected)]
        )
    pd.testing.assert_frame_equal(pop.recommend_all(5, batch_size=7), recs)
    # the choice survives a save and load, and the loaded model ranks the same
    directory = pop.save(tmp_path / "pop")
    state = json.loads((directory / "state.json").read_text())
    assert state["choices"]["group_part"]["value"] == "popularity"
    assert state["choices"]["personal_model"]["value"] in ("ease", "itemknn")
    loaded = GroupDiscovery.load(directory)
    assert loaded.group_part_ == "popularity"
    pd.testing.assert_frame_equal(loaded.recommend(users[:20], n=5), recs.iloc[: 20 * 5])

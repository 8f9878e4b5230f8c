"""Anchored refits move only what the data moved (issue 14, part 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.cli.main import main
from usergroups.data import Dataset, build_dataset
from usergroups.errors import DataError
from usergroups.refit import (
    MOVE_REASONS,
    AnchoredGroups,
    RefitReport,
    anchored_labels,
    kept_choices,
    refit,
)
from usergroups.report.refit_dir import save_refit
from usergroups.testing import PlantedData, make_planted

pytestmark = pytest.mark.timeout(300)


def _blobs(n_per: int = 40, n_groups: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit-ish vectors around ``n_groups`` orthogonal directions, and their group."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8)[:n_groups] * 3.0
    labels = np.repeat(np.arange(n_groups), n_per)
    X = centres[labels] + rng.normal(scale=0.5, size=(len(labels), 8))
    return X, labels


@pytest.fixture(scope="module")
def planted() -> PlantedData:
    return make_planted(n_users=150, n_groups=3, n_items=60, random_state=0)


@pytest.fixture(scope="module")
def config() -> DiscoveryConfig:
    return DiscoveryConfig().with_overrides(
        {"embedding.model": "hashing:64", "embedding.use_cache": False, "clustering.n_init": 3}
    )


@pytest.fixture(scope="module")
def fitted(planted: PlantedData, config: DiscoveryConfig) -> GroupDiscovery:
    return GroupDiscovery(config).fit(planted.dataset)


def _events(planted: PlantedData, n_known: int = 4, n_new: int = 3) -> pd.DataFrame:
    """A handful of events: ``n_known`` for existing users, one each for new users."""
    ds = planted.dataset
    users = ds.user_ids.ids[:n_known].tolist() + [f"newcomer-{k}" for k in range(n_new)]
    items = ds.item_ids.ids[: len(users)].tolist()
    return pd.DataFrame(
        {
            "event_id": [f"e{k}" for k in range(len(users))],
            "user_id": users,
            "item_id": items,
            "rating": 5.0,
            "text": ["a new review of this item"] + [None] * (len(users) - 1),
            "timestamp": 1e9,
        }
    )


# ------------------------------------------------------------------ anchored_labels
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_anchored_labels_keep_well_separated_groups(seed: int) -> None:
    X, labels = _blobs(seed=seed)
    got, centroids, folded = anchored_labels(X, labels)
    assert np.array_equal(got, labels)
    assert centroids.shape == (4, 8) and folded == []


def test_anchored_labels_do_not_depend_on_a_rotation_of_the_space() -> None:
    # a refit's SVD and alignment head may rotate the space: the anchors follow it
    X, labels = _blobs(seed=3)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(8, 8)))
    noisy = labels.copy()
    noisy[:5] = 1  # a few users whose old group was not their nearest
    assert np.array_equal(anchored_labels(X, noisy)[0], anchored_labels(X @ q, noisy)[0])


def test_anchored_labels_keep_ids_when_old_ids_have_gaps() -> None:
    X, labels = _blobs()
    ids = np.array([0, 3, 5, 9])[labels]
    got = anchored_labels(X, ids)[0]
    assert np.array_equal(got, ids)


def test_anchored_labels_put_new_users_in_the_nearest_group() -> None:
    X, labels = _blobs()
    anchors = labels.copy()
    anchors[[0, 50, 90]] = -2
    got = anchored_labels(X, anchors)[0]
    assert got[[0, 50, 90]].tolist() == labels[[0, 50, 90]].tolist()


def test_a_group_disappears_only_when_no_member_is_left() -> None:
    X, labels = _blobs()
    # group 3's members left the data: their rows are gone, the id stays unused
    stay = labels != 3
    got = anchored_labels(X[stay], labels[stay])[0]
    assert set(got.tolist()) == {0, 1, 2}
    # one member left keeps the group, and its old neighbours (now new users) join it
    anchors = np.where(labels == 3, -2, labels)
    anchors[np.flatnonzero(labels == 3)[0]] = 3
    got = anchored_labels(X, anchors)[0]
    assert np.array_equal(got, labels)


def test_a_group_that_shrinks_below_the_minimum_is_folded() -> None:
    X, labels = _blobs()
    # all but two of group 3's members left the data
    stay = (labels != 3) | (np.arange(len(labels)) % 40 < 2)
    before = np.bincount(labels)
    got, _, folded = anchored_labels(X[stay], labels[stay], min_group_size=5, sizes_before=before)
    assert folded == [3] and 3 not in set(got.tolist())
    # a group that was already that small is not folded: the old model kept it
    got, _, folded = anchored_labels(X[stay], labels[stay], min_group_size=5)
    assert folded == [] and (got == 3).sum() == 2


def test_anchored_labels_are_deterministic() -> None:
    X, labels = _blobs(seed=5)
    anchors = np.where(np.arange(len(labels)) % 7 == 0, (labels + 1) % 4, labels)
    first = anchored_labels(X, anchors)[0]
    assert all(np.array_equal(first, anchored_labels(X, anchors)[0]) for _ in range(3))


def test_anchored_groups_is_an_estimator_with_the_clusterer_interface() -> None:
    from sklearn.base import clone

    X, labels = _blobs()
    est = clone(AnchoredGroups(labels, n_groups=4))
    est.set_params(n_groups=6)  # the fit sets it; the anchors decide
    assert np.array_equal(est.fit(X).labels_, labels)
    assert est.centroids_.shape == (4, 8)


# ---------------------------------------------------------------------------- refit
def test_refit_keeps_the_old_models_choices(fitted: GroupDiscovery, planted: PlantedData) -> None:
    overrides = kept_choices(fitted)
    assert overrides["clustering.n_groups"] == fitted.state_.choices["n_groups"].value
    new, report = refit(fitted, planted.dataset, _events(planted))
    assert report.mode == "anchored"
    for name in ("text_weight", "n_groups", "personal_weight", "cold_weight", "fine_text_weight"):
        assert new.state_.choices[name].value == fitted.state_.choices[name].value, name
    if new.state_.fine is not None:
        # the fine groups are re-anchored on vectors fused at their own text weight
        state = new.state_
        vectors = state.fine_fuse(state.text_block, state.behaviour)
        np.testing.assert_array_equal(state.fine.place(vectors), state.fine.labels_)


def test_refit_with_a_handful_of_events_keeps_groups_and_reports_moves(
    fitted: GroupDiscovery, planted: PlantedData
) -> None:
    events = _events(planted)
    new, report = refit(fitted, planted.dataset, events)
    assert report.share_kept >= 0.95
    assert report.gone == [] and report.new == []
    assert set(new.groups_["group_id"]) == set(fitted.groups_["group_id"])
    joined = [m for m in report.moves if m["reason"] == "new user"]
    assert sorted(m["user_id"] for m in joined) == ["newcomer-0", "newcomer-1", "newcomer-2"]
    assert all(m["old_group"] is None and m["new_group"] >= 0 for m in joined)
    active = set(events["user_id"])
    for m in report.moves:
        assert m["reason"] in MOVE_REASONS
        if m["old_group"] is not None:
            assert m["old_group"] != m["new_group"]
            assert (m["reason"] == "new events for this user") == (m["user_id"] in active)
    assert report.n_moves == len(report.moves)
    assert sum(report.moves_by_reason.values()) == report.n_moves
    assert not report.reselect_recommended
    assert new.metrics_["refit"]["mode"] == "anchored"


def test_refit_on_unchanged_data_moves_nobody(fitted: GroupDiscovery, planted: PlantedData) -> None:
    new, report = refit(fitted, planted.dataset, random_state=7)
    assert report.share_kept == 1.0 and report.moves == []
    assert np.array_equal(new.labels_, fitted.labels_)


def test_reselect_fits_the_groups_anew(fitted: GroupDiscovery, planted: PlantedData) -> None:
    _, report = refit(fitted, planted.dataset, _events(planted), reselect=True)
    assert report.mode == "reselect"
    assert not report.reselect_recommended
    # planted groups: matching still finds every old group. Re-selection may add a group
    # (on this data it splits one planted group in two, which scores 3 % higher on the new
    # validation carve), so up to half of one group may move
    assert report.gone == []
    assert report.share_kept >= 0.75


def test_a_config_asking_for_another_number_of_groups_reselects(
    fitted: GroupDiscovery, planted: PlantedData
) -> None:
    k = fitted.state_.choices["n_groups"].value
    other = GroupDiscovery.from_state(
        fitted.state_,
        config=fitted.config.with_overrides({"clustering.n_groups": int(k) + 1}),
        groups=fitted.groups_,
        metrics=fitted.metrics_,
    )
    _, report = refit(other, planted.dataset)
    assert report.mode == "reselect"


def test_report_caps_the_moves_in_metrics_but_counts_them_all() -> None:
    moves = [
        {"user_id": f"u{k}", "old_group": 0, "new_group": 1, "reason": "group's centre moved"}
        for k in range(1500)
    ]
    report = RefitReport(moves=moves, n_moves=1500)
    assert len(report.to_dict()["moves"]) == 1000 and report.to_dict()["n_moves"] == 1500
    assert len(report.to_dict(max_moves=None)["moves"]) == 1500


def test_save_refit_writes_report_and_map_with_the_model(
    fitted: GroupDiscovery, planted: PlantedData, tmp_path: Path
) -> None:
    pytest.importorskip("plotly")
    directory = tmp_path / "model"
    fitted.save(directory)
    new, report = refit(fitted, planted.dataset, _events(planted))
    save_refit(new, report, directory)
    names = {p.name for p in directory.iterdir()}
    assert {"report.html", "map.parquet", "refit.json", "metrics.json"} <= names
    assert not [p for p in tmp_path.iterdir() if p.name != "model"]  # no temporary left
    stored = json.loads((directory / "refit.json").read_text())
    assert stored["n_moves"] == report.n_moves == len(stored["moves"])
    loaded = GroupDiscovery.load(directory)
    assert np.array_equal(loaded.labels_, new.labels_)
    from usergroups.report.projection import read_map

    frame, _ = read_map(directory)  # type: ignore[misc]
    by_user = dict(zip(new.user_ids_.ids, new.labels_, strict=True))
    assert all(by_user[u] == g for u, g in zip(frame["user_id"], frame["group_id"], strict=True))


def test_refit_command_prints_moves_and_keeps_the_report(
    fitted: GroupDiscovery, planted: PlantedData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("plotly")
    ds = planted.dataset
    files = {"interactions": tmp_path / "i.parquet", "texts": tmp_path / "t.parquet"}
    ds.interactions.to_parquet(files["interactions"], index=False)
    ds.texts.to_parquet(files["texts"], index=False)
    events = tmp_path / "events.csv"
    _events(planted).to_csv(events, index=False)
    directory = tmp_path / "model"
    fitted.save(directory)
    args = ["refit", str(directory), "--events", str(events)]
    args += ["--interactions", str(files["interactions"]), "--texts", str(files["texts"])]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "users moved or joined" in out and "newcomer-0: new ->" in out
    assert (directory / "report.html").exists() and (directory / "map.parquet").exists()
    assert main([*args, "--reselect", "--no-report", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "reselect"
    assert not (directory / "report.html").exists()


# ------------------------------------------------- anchors by user id (subset fits)
def _without_users(planted: PlantedData, users: set[str]) -> Dataset:
    ds = planted.dataset
    return build_dataset(
        ds.interactions[~ds.interactions["user_id"].isin(users)],
        ds.texts[~ds.texts["user_id"].isin(users)],
        ds.items,
        name=ds.name,
    )


def test_anchored_groups_recluster_a_subset_of_the_users_with_the_fallback() -> None:
    # the fit re-clusters subsets of its users (validation carve, stability resamples)
    # without their ids: they cannot be anchored, the fallback clusters them afresh
    from sklearn.base import clone
    from sklearn.cluster import KMeans

    X, labels = _blobs()
    rows = np.sort(np.random.default_rng(0).choice(len(X), size=128, replace=False))
    with pytest.raises(DataError, match="anchors has shape"):
        AnchoredGroups(labels).fit(X[rows])
    est = clone(AnchoredGroups(labels, fallback=KMeans(4, n_init=3), random_state=0))
    est.set_params(random_state=5)
    sub = est.fit(X[rows]).labels_
    assert len(sub) == len(rows)
    assert adjusted_rand_score(labels[rows], sub) == 1.0
    assert np.array_equal(est.fit(X).labels_, labels)  # all users: anchored as before


def test_refit_maps_anchors_by_user_id_when_users_leave_and_join(
    fitted: GroupDiscovery, planted: PlantedData
) -> None:
    # the data lost some of the model's users and events bring new ones; the fit also
    # re-clusters 80 % resamples of the users (stability), which once failed with
    # "anchors has shape (n,) for 0.8 n users"
    assert fitted.config.clustering.stability_resamples > 0
    left = set(planted.dataset.user_ids.ids[5:15].tolist())
    events = _events(planted)
    new, report = refit(fitted, _without_users(planted, left), events)
    assert report.mode == "anchored" and "stability" in new.metrics_
    assert report.users_left == sorted(left) and report.n_users_left == len(left)
    assert report.to_dict()["users_left"] == sorted(left)
    before = dict(zip(fitted.user_ids_.ids, fitted.labels_.tolist(), strict=True))
    after = dict(zip(new.user_ids_.ids, new.labels_.tolist(), strict=True))
    assert not left & set(after)
    stayed = [u for u in after if u in before]
    assert len(stayed) == len(before) - len(left)
    assert np.mean([after[u] == before[u] for u in stayed]) >= 0.95
    joined = sorted(m["user_id"] for m in report.moves if m["reason"] == "new user")
    assert joined == ["newcomer-0", "newcomer-1", "newcomer-2"]
    assert report.gone == []


def test_a_group_whose_users_all_left_the_data_is_gone(
    fitted: GroupDiscovery, planted: PlantedData
) -> None:
    g = int(fitted.labels_[0])
    left = {u for u, lab in zip(fitted.user_ids_.ids, fitted.labels_, strict=True) if lab == g}
    new, report = refit(fitted, _without_users(planted, left))
    assert report.mode == "anchored"
    assert report.gone == [g] and g not in set(new.labels_.tolist())
    assert report.n_users_left == len(left)
    assert g not in set(new.groups_["group_id"])


def test_issue21_anchored_refit_keeps_choices_in_the_state_not_the_config(
    fitted: GroupDiscovery, planted: PlantedData, tmp_path: Path
) -> None:
    """An anchored refit pinned the kept choices in config.json, so the saved model said
    "config" and a later ``--reselect`` could never choose them again (issue 21)."""
    old = fitted.state_.choices
    assert old["n_groups"].source == "validation" and old["text_weight"].source == "validation"
    new, report = refit(fitted, planted.dataset, _events(planted))
    assert report.mode == "anchored"
    assert new.config.model_dump() == fitted.config.model_dump()
    for name in ("text_weight", "n_groups"):
        assert new.state_.choices[name] == old[name], name
        assert new.metrics_["choices"][name] == old[name].to_dict(), name
    out = save_refit(new, report, tmp_path / "model", with_report=False)
    saved = json.loads((out / "config.json").read_text())
    assert saved["user_vectors"]["text_weight"] == "auto"
    assert saved["clustering"]["n_groups"] == "auto"
    loaded = GroupDiscovery.load(out)
    assert loaded.state_.choices["n_groups"].source == "validation"
    again, again_report = refit(loaded, planted.dataset, reselect=True)
    assert again_report.mode == "reselect"
    assert again.state_.choices["n_groups"].source == "validation"
    assert again.state_.choices["text_weight"].source == "validation"
    assert again.metrics_["k_selection"] == "validation"

"""Refits keep group ids: unchanged data keeps every user's id; a planted group is new."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from service_support import ADMIN_KEY, load_base, newcomers, refit_settings

from usergroups import GroupDiscovery
from usergroups.cli.main import main
from usergroups.refit import compare_groups, match_groups, refit, stable_ids
from usergroups.testing import PlantedData

pytestmark = pytest.mark.timeout(600)


def _newcomer_events(planted: PlantedData) -> pd.DataFrame:
    """The left-out planted group's interactions and texts, as events."""
    ds = planted.dataset
    users = set(newcomers(planted))
    inter = ds.interactions[ds.interactions["user_id"].isin(users)]
    texts = ds.texts[ds.texts["user_id"].isin(users)].set_index(["user_id", "item_id"])["text"]
    return pd.DataFrame(
        {
            "event_id": [f"n{k}" for k in range(len(inter))],
            "user_id": inter["user_id"].to_numpy(),
            "item_id": inter["item_id"].to_numpy(),
            "rating": inter["rating"].to_numpy(),
            "text": [
                texts.get((u, i)) for u, i in zip(inter["user_id"], inter["item_id"], strict=True)
            ],
            "timestamp": inter["timestamp"].to_numpy(),
        }
    )


def test_match_groups_undoes_a_permutation() -> None:
    rng = np.random.default_rng(0)
    old = rng.integers(0, 5, size=500)
    perm = rng.permutation(5)
    assert match_groups(old, perm[old]) == {int(perm[g]): g for g in range(5)}


def test_match_groups_leaves_a_group_without_overlap_unmatched() -> None:
    old = np.array([0, 0, 0, 1, 1, 1])
    new = np.array([1, 1, 1, 0, 0, 2])
    assert match_groups(old, new) == {1: 0, 0: 1}
    ids = stable_ids(np.array([0, 0, 0, 1, 1, 1, -2]), np.array([1, 1, 1, 0, 0, 2, 2]))
    assert ids == {0: 1, 1: 0, 2: 2}


def test_compare_groups_names_splits_merges_and_new_groups() -> None:
    old = np.array([0] * 10 + [1] * 10 + [2] * 10 + [-2] * 5)
    new = np.array([0] * 5 + [3] * 5 + [1] * 10 + [1] * 10 + [4] * 5)
    report = compare_groups(old, new)
    assert {"group_id": 0, "into": [0, 3]} in report.split
    assert {"group_id": 1, "from": [1, 2]} in report.merged
    assert [g["group_id"] for g in report.new] == [3, 4]
    assert report.new[1]["from"] == {"new_users": 5}
    assert report.gone == [2]


@pytest.mark.parametrize("seed", [1, 7])
def test_refit_on_unchanged_data_keeps_every_users_group(
    fitted_model_dir, base_files, seed: int
) -> None:
    old = GroupDiscovery.load(fitted_model_dir)
    new, report = refit(old, load_base(base_files), random_state=seed)
    assert report.share_kept == 1.0
    assert report.new == [] and report.gone == [] and report.split == []
    before = dict(zip(old.user_ids_.ids, old.labels_, strict=True))
    after = dict(zip(new.user_ids_.ids, new.labels_, strict=True))
    assert after == before
    assert sorted(new.groups_["group_id"]) == sorted(old.groups_["group_id"])


def test_refit_reports_a_planted_group_as_new(
    fitted_model_dir, base_files, planted: PlantedData, tmp_path
) -> None:
    old = GroupDiscovery.load(fitted_model_dir)
    events = _newcomer_events(planted)
    # the operator expects one more group: refit with n_groups = 4
    new, report = refit(_with_groups(old, 4), load_base(base_files), events)
    assert len(report.new) == 1
    fresh = report.new[0]
    assert fresh["group_id"] == 3  # a fresh id, never one of the old ones
    assert fresh["from"].get("new_users", 0) >= 0.9 * fresh["size"]
    assert report.gone == []
    assert report.share_kept >= 0.95
    users = set(newcomers(planted))
    labels = dict(zip(new.user_ids_.ids, new.labels_, strict=True))
    share = np.mean([labels[u] == 3 for u in users])
    assert share >= 0.9
    new.save(tmp_path / "refitted")
    again = GroupDiscovery.load(tmp_path / "refitted")
    assert again.metrics_["refit"]["new"][0]["group_id"] == 3


def _with_groups(model: GroupDiscovery, n_groups: int) -> GroupDiscovery:
    """The same fitted model, configured to find ``n_groups`` at the next refit."""
    model.config = model.config.with_overrides({"clustering.n_groups": n_groups})
    return model


def test_refit_command_reads_the_event_store_and_keeps_ids(
    model_dir, base_files, planted: PlantedData, capsys
) -> None:
    from usergroups.service.events import NewEvent, open_event_store
    from usergroups.service.settings import default_events_url

    store = open_event_store(default_events_url(model_dir))
    ev = _newcomer_events(planted).head(20)
    store.append(
        [
            NewEvent(r.event_id, r.user_id, r.item_id, r.rating, r.text, r.timestamp)
            for r in ev.itertuples()
        ]
    )
    store.close()
    code = main(
        [
            "refit",
            str(model_dir),
            "--interactions",
            str(base_files["interactions"]),
            "--texts",
            str(base_files["texts"]),
            "--items",
            str(base_files["items"]),
            "--format",
            "json",
        ]
    )
    assert code == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["events_seq"] == 20 and report["n_events"] == 20
    assert report["share_kept"] >= 0.95
    assert (model_dir / "refit.json").exists()
    assert GroupDiscovery.load(model_dir).metrics_["refit"]["events_seq"] == 20


def test_refit_endpoint_swaps_the_model_and_keeps_ids(
    model_dir, base_files, start_server, planted: PlantedData
) -> None:
    server = start_server(model_dir, refit_settings(base_files))
    old = GroupDiscovery.load(model_dir)
    ev = _newcomer_events(planted).head(10)
    with server.client() as c:
        payload = [
            {k: v for k, v in r.items() if v is not None and v == v}
            for r in ev.to_dict(orient="records")
        ]
        assert c.post("/events", json=payload).json()["stored"] == 10
        version = c.get("/health").json()["model"]["version"]
    with server.client(ADMIN_KEY) as c:
        started = c.post("/refit")
        assert started.status_code == 202 and started.json()["state"] == "running"
        deadline = time.monotonic() + 240
        status = c.get("/refit").json()
        while status["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
            status = c.get("/refit").json()
        assert status["state"] == "done", status
        assert status["report"]["events_seq"] == 10
        health = c.get("/health").json()
        assert health["model"]["version"] != version
        assert health["model"]["events_seq"] == 10
        assert health["events"]["applied"] == 0  # all stored events are in the model now
        user = str(old.user_ids_.ids[0])
        assert c.get(f"/users/{user}").json()["group_id"] == int(old.labels_[0])
        newcomer = str(ev["user_id"].iloc[0])
        assert c.get(f"/users/{newcomer}").json()["known_to_model"] is True

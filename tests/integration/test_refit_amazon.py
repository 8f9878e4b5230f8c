"""A refit with a handful of new events keeps Amazon MI's groups (issue 14, part 2).

Before issue 14 a refit with 9 new events kept 47 % of users in their group and lost 5 of
16 groups. An anchored refit keeps the old choices and clusters on the old groups.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared_data import require_dataset
from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.data import Dataset

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]


def ten_events(dataset: Dataset, random_state: int = 0) -> pd.DataFrame:
    """10 events: 6 for existing users (one with a review text), 4 for 3 new users.

    Items are drawn from the 200 most popular, each new to its user.
    """
    rng = np.random.default_rng(random_state)
    inter = dataset.interactions
    popular = inter["item_id"].value_counts().index[:200].to_numpy()
    users = rng.choice(np.asarray(dataset.user_ids.ids), size=6, replace=False)
    seen = inter.groupby("user_id")["item_id"].agg(set)
    rows = []
    for k, u in enumerate(users):
        item = next(i for i in rng.permutation(popular) if i not in seen.get(u, set()))
        text = (
            "Great clip-on tuner: accurate, bright display, stays on the headstock."
            if k == 0
            else None
        )
        rows.append((str(u), str(item), 5.0, text))
    for k, n in enumerate((2, 1, 1)):
        for item in rng.choice(popular, size=n, replace=False):
            rows.append((f"new-user-{k}", str(item), 4.0, None))
    t0 = float(pd.to_numeric(inter["timestamp"], errors="coerce").max())
    return pd.DataFrame(
        {
            "event_id": [f"e{k}" for k in range(len(rows))],
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "rating": [r[2] for r in rows],
            "text": [r[3] for r in rows],
            "timestamp": [t0 + 60.0 * (k + 1) for k in range(len(rows))],
        }
    )


def test_issue14_refit_with_ten_events_keeps_amazon_groups(data_dir: Path, tmp_path: Path) -> None:
    from usergroups.datasets import load_dataset
    from usergroups.refit import refit
    from usergroups.report.refit_dir import save_refit

    require_dataset(data_dir, "amazon2014-musical-instruments-5core")
    dataset = load_dataset("amazon2014:musical-instruments", data_dir)
    # the cheap encoder keeps this test near a minute; the default encoder's figure is in
    # the issue's report
    cfg = DiscoveryConfig().with_overrides({"embedding.model": "hashing:256"})
    old = GroupDiscovery(cfg).fit(dataset)
    events = ten_events(dataset)
    assert len(events) == 10 and events["text"].notna().sum() == 1
    new, report = refit(old, dataset, events)

    assert report.mode == "anchored"
    assert report.share_kept >= 0.95
    assert report.gone == [] and report.new == []
    assert set(new.groups_["group_id"]) == set(old.groups_["group_id"])
    joined = {m["user_id"] for m in report.moves if m["reason"] == "new user"}
    assert joined == {"new-user-0", "new-user-1", "new-user-2"}
    assert new.state_.choices["n_groups"].value == old.state_.choices["n_groups"].value
    assert new.state_.text_weight == old.state_.text_weight

    directory = tmp_path / "model"
    old.save(directory)
    save_refit(new, report, directory)
    assert {"report.html", "map.parquet", "refit.json"} <= {p.name for p in directory.iterdir()}
    again = GroupDiscovery.load(directory)
    assert again.metrics_["refit"]["n_moves"] == report.n_moves

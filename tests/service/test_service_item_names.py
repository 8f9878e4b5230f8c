"""The service names items without titles by their reviews, marked as derived (issue 14)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service_support import model_config

from usergroups import GroupDiscovery
from usergroups.data import build_dataset
from usergroups.testing import PlantedData


def _untitled_model(planted: PlantedData, out: Path) -> Path:
    ds = planted.dataset
    assert ds.items is not None
    items = ds.items.copy()
    items.loc[items.index[3:], "title"] = ""  # three titled items, the rest without titles
    data = build_dataset(ds.interactions, ds.texts, items, name="untitled")
    GroupDiscovery(model_config()).fit(data).save(out)
    return out


def test_recommendations_and_groups_carry_item_names(
    planted: PlantedData, tmp_path: Path, start_server: Any
) -> None:
    model_dir = _untitled_model(planted, tmp_path / "model")
    model = GroupDiscovery.load(model_dir)
    user = str(model.user_ids_.ids[0])
    server = start_server(model_dir)
    with server.client() as c:
        recs = c.get(f"/users/{user}", params={"n": 10}).json()["recommendations"]
        assigned = c.post("/assign", json={"texts": ["hello"], "n": 10}).json()
        groups = c.get("/groups").json()["groups"]
        one = c.get("/groups/0").json()
    for rec in [*recs, *assigned["recommendations"]]:
        assert (rec["name"], rec["name_source"]) == model.state_.item_name(rec["item_id"])
        assert rec["name_source"] in {"title", "reviews", ""}
        assert rec["title"] == model.item_titles_.get(rec["item_id"], "")
    assert "reviews" in {r["name_source"] for r in recs}
    for g in [*groups, one]:
        assert len(g["top_item_names"]) == len(g["top_item_name_sources"]) == len(g["top_items"])
    assert "reviews" in {s for g in groups for s in g["top_item_name_sources"]}

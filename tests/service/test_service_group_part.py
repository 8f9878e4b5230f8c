"""Issue 24: a model whose plain part is global popularity is served as it ranks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from usergroups import GroupDiscovery
from usergroups.fitted import Choice

pytestmark = pytest.mark.timeout(300)


def test_issue_24_the_service_ranks_by_popularity_when_the_fit_chose_it(
    fitted_model_dir: Path, tmp_path: Path, start_server: Any
) -> None:
    model = GroupDiscovery.load(fitted_model_dir)
    choices = dict(model.state_.choices)
    choices["group_part"] = Choice("popularity", "validation", "popularity alone is used")
    model.state_ = model.state_.replace(choices=choices, personal_weight=0.0)
    directory = model.save(tmp_path / "popularity")
    loaded = GroupDiscovery.load(directory)
    assert loaded.group_part_ == "popularity"
    users = [str(u) for u in loaded.user_ids_.ids[:12]]
    by_groups = GroupDiscovery.load(fitted_model_dir)
    by_groups.state_ = by_groups.state_.replace(personal_weight=0.0)
    server = start_server(directory)
    differ = 0
    with server.client() as c:
        for user in users:
            body = c.get(f"/users/{user}", params={"n": 5}).json()
            got = [r["item_id"] for r in body["recommendations"]]
            assert got == loaded.recommend([user], n=5)["item_id"].tolist()
            differ += got != by_groups.recommend([user], n=5)["item_id"].tolist()
    assert differ > 0  # the planted groups rank otherwise than global popularity

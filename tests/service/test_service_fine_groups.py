"""Issue 23 over HTTP: fine groups behind the answers, membership and sub-interests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.testing import make_planted

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def fine_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    planted = make_planted(n_users=240, n_groups=6, n_items=72, purity=0.9, random_state=4)
    cfg = DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing", "use_cache": False},
            "clustering": {"n_groups": 2, "fine_k": 6, "fine_partitions": 3},
            "align": {"max_epochs": 5},
            "reuse": False,
        }
    )
    out = tmp_path_factory.mktemp("fine") / "model"
    GroupDiscovery(cfg).fit(planted.dataset).save(out)
    return out


def test_issue_23_the_service_answers_with_the_fine_groups(
    fine_model_dir: Path, start_server: Any
) -> None:
    gd = GroupDiscovery.load(fine_model_dir)
    assert gd.state_.fine is not None and len(gd.sub_interests_)
    server = start_server(fine_model_dir)
    users = [str(u) for u in gd.user_ids_.ids[:8]]
    with server.client() as c:
        for user in users:
            body = c.get(f"/users/{user}", params={"n": 5}).json()
            want = gd.recommend([user], n=5)
            assert [r["item_id"] for r in body["recommendations"]] == want["item_id"].tolist()
            row = gd.user_ids_.index([user], what="user_id")[0]
            np.testing.assert_allclose(body["membership"], gd.state_.membership[row], atol=1e-4)
            assert sum(body["membership"]) == pytest.approx(1.0, abs=1e-3)
            assert body["runner_up"] not in (-1, body["group_id"])
        for group_id in range(gd.n_groups_):
            profile = c.get(f"/groups/{group_id}").json()
            mine = gd.sub_interests_[gd.sub_interests_["group_id"] == group_id]
            assert [s["sub_id"] for s in profile["sub_interests"]] == mine["sub_id"].tolist()
        text = "a new user writes about one planted taste"
        answer = c.post("/assign", json={"texts": [text], "n": 5}).json()
        assert [r["item_id"] for r in answer["recommendations"]] == gd.assign([text], n=5)["items"][
            0
        ]

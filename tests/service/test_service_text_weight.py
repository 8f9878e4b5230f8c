"""Issue 12: the service reads the text weight from the fitted state, never from vectors.

Before, the service inferred the weight from the stored fused vectors and, at a weight of
0 (a value on the search grid), guessed 1.0: every user touched by an event landed in
group 0 without an error.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from service_support import load_base, model_config

from usergroups import GroupDiscovery
from usergroups.service.events import StoredEvent
from usergroups.service.online import OnlineModel


@pytest.fixture(scope="module", params=[0.0, 0.5, 1.0], ids=lambda w: f"w{w}")
def weighted_model_dir(
    request: pytest.FixtureRequest,
    base_files: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    cfg = model_config().with_overrides({"user_vectors.text_weight": request.param})
    out = tmp_path_factory.mktemp("weighted") / "model"
    GroupDiscovery(cfg).fit(load_base(base_files)).save(out)
    return out


def test_online_blocks_rebuild_the_models_vectors(weighted_model_dir: Path) -> None:
    model = GroupDiscovery.load(weighted_model_dir)
    assert model.state_.text_weight == float(model.config.user_vectors.text_weight)
    online = OnlineModel(model)
    users = model.user_ids_.ids[:40]
    states = [online._new_state(str(u)) for u in users]
    sem = np.stack([s.semantic_sum for s in states])
    beh = np.stack([s.behaviour_sum for s in states])
    np.testing.assert_allclose(online.fuse(sem, beh), model.user_vectors_[:40], atol=1e-5)


def test_an_event_repeating_a_users_item_keeps_their_group(weighted_model_dir: Path) -> None:
    model = GroupDiscovery.load(weighted_model_dir)
    online = OnlineModel(model)
    seen = model.seen_
    events = []
    for row in range(60):
        own = seen.indices[seen.indptr[row] : seen.indptr[row + 1]]
        if len(own):
            item = str(model.item_ids_.ids[own[0]])
            user = str(model.user_ids_.ids[row])
            events.append(
                StoredEvent(row + 1, f"e{row}", user, item, None, None, None, time.time())
            )
    moved = online.apply(events, {})
    before = {str(u): int(g) for u, g in zip(model.user_ids_.ids, model.labels_, strict=True)}
    kept = np.mean([moved[u][0] == before[u] for u in moved])
    assert kept >= 0.9, f"only {kept:.0%} of users kept their group after repeating an item"
    assert len({g for g, _ in moved.values()}) > 1


def test_users_endpoint_answers_as_the_python_model(
    weighted_model_dir: Path, start_server, tmp_path: Path
) -> None:
    import shutil

    target = tmp_path / "model"
    shutil.copytree(weighted_model_dir, target)
    model = GroupDiscovery.load(target)
    users = [str(u) for u in model.user_ids_.ids[:5]]
    expected = model.recommend(users, n=5)
    server = start_server(target)
    with server.client() as c:
        for u in users:
            body = c.get(f"/users/{u}", params={"n": 5}).json()
            want = expected[expected["user_id"] == u]
            assert body["group_id"] == int(model.labels_[model.user_ids_.index([u])[0]])
            assert [r["item_id"] for r in body["recommendations"]] == want["item_id"].tolist()

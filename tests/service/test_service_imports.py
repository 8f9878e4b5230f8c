"""The service answers without importing scikit-learn (issue 21: README and docs/speed.md
promise it; ``service/online.py`` imported it through ``usergroups.fusion``)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.testing import make_planted

_PROBE = """
import json, sys
from usergroups.service.app import create_app
from usergroups.service.settings import ServiceSettings
from usergroups.service.state import ServiceState

settings = ServiceSettings.model_validate({"auth": {"anonymous": True}})
state = ServiceState(sys.argv[1], settings).open()
try:
    create_app(state)
    online = state.online
    first_item = str(online.model.item_ids_.ids[0])
    answer, _ = online.assign(["a short review of a good book"], [first_item], 3)
    text_only, _ = online.assign(["a short review of a good book"], [], 3)
finally:
    state.close()
print(json.dumps({
    "sklearn": sorted(m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")),
    "group": answer["group_id"],
    "text_only_group": text_only["group_id"],
}))
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    planted = make_planted(n_users=90, n_groups=3, n_items=40, random_state=0)
    cfg = DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing:64", "use_cache": False},
            "clustering": {"n_groups": 3, "n_init": 2},
            "random_state": 0,
        }
    )
    out = tmp_path_factory.mktemp("service-imports") / "model"
    GroupDiscovery(cfg).fit(planted.dataset).save(out)
    return out


def test_issue21_service_loads_and_assigns_without_sklearn(
    model_dir: Path, fresh_python: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    done = fresh_python(_PROBE, str(model_dir))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["group"] in (0, 1, 2)
    assert result["sklearn"] == [], f"the service imported {result['sklearn'][:5]}"

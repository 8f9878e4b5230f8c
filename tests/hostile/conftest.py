"""The hostile suite: the real command line (a subprocess) against careless or hostile input.

Every test here gets the ``hostile`` marker from its folder (tests/conftest.py). Models are
fitted once per session on generated data with the hashing encoder, then copied for each
test to damage.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.testing import make_planted


@pytest.fixture(scope="session")
def planted_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small interactions and reviews CSV files with two planted groups."""
    root = tmp_path_factory.mktemp("hostile-inputs")
    ds = make_planted(n_users=60, n_groups=2, n_items=30, random_state=0).dataset
    ds.texts.to_csv(root / "reviews.csv", index=False)
    ds.interactions.to_csv(root / "ratings.csv", index=False)
    return {"interactions": root / "ratings.csv", "texts": root / "reviews.csv"}


@pytest.fixture(scope="session")
def fitted_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A model directory (with an alignment head) and one of its user ids; do not modify."""
    planted = make_planted(n_users=80, n_groups=2, n_items=30, texts_per_user=1, random_state=5)
    cfg = DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing:32", "use_cache": False},
            "clustering": {"n_groups": 2},
            "align": {"method": "head", "dim": 8, "max_epochs": 2},
        }
    )
    out = tmp_path_factory.mktemp("hostile-model") / "model"
    GroupDiscovery(cfg).fit(planted.dataset).save(out)
    return out, str(planted.dataset.user_ids.ids[0])


@pytest.fixture
def model_copy(fitted_model: tuple[Path, str], tmp_path: Path) -> Callable[[], Path]:
    """A fresh copy of the fitted model directory, to damage."""

    def copy() -> Path:
        return Path(shutil.copytree(fitted_model[0], tmp_path / "model"))

    return copy


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    """Start real servers on loopback (``start(model_dir, settings)``); all stopped after
    the test. Needs the serve extra (``service_support`` lives in tests/service)."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
    from service_support import Server

    servers: list[Any] = []

    def start(model_dir: Path, settings: dict[str, Any]) -> Any:
        server = Server(model_dir, settings, tmp_path).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()

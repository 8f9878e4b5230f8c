"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The directory of the shared real datasets: ``$USERGROUPS_DATA``, else ../shared/datasets.

    Tests that need a dataset folder skip when it is not there (see the datasets README).
    """
    return Path(os.environ.get("USERGROUPS_DATA", str(SHARED_DATA))).expanduser()


# the real encoder loads from the installed package; never reach for a model hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def require_dataset(data_dir: Path, folder: str) -> Path:
    """The dataset folder, or skip the test with the reason."""
    path = data_dir / folder
    if not path.is_dir():
        pytest.skip(f"{path} not found: set USERGROUPS_DATA to the shared datasets directory")
    return path

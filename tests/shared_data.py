"""Helpers for tests that read ../shared/datasets (importable by name from any test folder:
a module called ``conftest`` is ambiguous once several folders have one)."""

from __future__ import annotations

from pathlib import Path

import pytest


def require_dataset(data_dir: Path, folder: str) -> Path:
    """The dataset folder, or skip the test with the reason."""
    path = data_dir / folder
    if not path.is_dir():
        pytest.skip(f"{path} not found: set USERGROUPS_DATA to the shared datasets directory")
    return path

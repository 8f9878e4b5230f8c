"""Unit-test fixtures shared by every unit test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _maps_use_pca() -> Iterator[None]:
    """Report maps use PCA in unit tests: UMAP's first numba compile takes tens of seconds.

    Session-scoped so that module-scoped fixtures (a CLI `discover`) see it too. UMAP itself
    is exercised once, in tests/integration/test_report.py.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("usergroups.report.projection.has_umap", lambda: False)
        yield

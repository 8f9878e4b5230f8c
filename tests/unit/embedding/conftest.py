"""Shared fixtures for the embedding tests."""

from __future__ import annotations

import pytest
from embedding_fakes import CountingEncoder


@pytest.fixture
def counting() -> CountingEncoder:
    return CountingEncoder()

"""Shared settings of the clustering tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="package")
def _one_openmp_thread() -> Iterator[None]:
    # The test data are tiny: scikit-learn's OpenMP workers cost more than the work, and on a
    # busy 2-core machine their spin-waiting made the suite ~20x slower (measured).
    with threadpool_limits(limits=1, user_api="openmp"):
        yield

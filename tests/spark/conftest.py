"""Fixtures of the Spark engine tests: one local[2] SparkSession for the whole session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local[2] SparkSession with few shuffle partitions; skips without PySpark or Java.

    Under CI (``CI=true``), where ``.ci/run`` installs Java, a missing runtime fails.
    """
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    if shutil.which("java") is None:
        # .ci/run installs Java: under CI=true a missing runtime fails, never skips (issue 13)
        missing = pytest.fail if os.environ.get("CI") == "true" else pytest.skip
        missing("no Java runtime: install openjdk-17-jre-headless")
    from usergroups.spark import spark_session

    session = spark_session(
        "local[2]",
        {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()

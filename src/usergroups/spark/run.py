"""``usergroups discover --engine spark``: read, fit and save in one call (the CLI's entry)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from usergroups.config import DiscoveryConfig

__all__ = ["discover"]

logger = logging.getLogger(__name__)


def discover(
    config: DiscoveryConfig,
    out: str | Path,
    *,
    dataset_name: str | None = None,
    interactions: str | None = None,
    texts: str | None = None,
    items: str | None = None,
    users: str | None = None,
    mapping: str | None = None,
    encoding: str | None = None,
    on_bad_lines: str = "error",
    data_dir: str | None = None,
    master: str | None = "local[2]",
    conf: dict[str, str] | None = None,
    fit_sample: float | None = None,
) -> tuple[Any, Path]:
    """Read the input with Spark, fit :class:`SparkGroupDiscovery`, write the model directory.

    A registered ``dataset_name`` is loaded by its local loader (they are small public
    datasets) and handed to Spark; files are read by Spark itself.

    Returns
    -------
    (GroupDiscovery, Path)
        The fitted model, as ``GroupDiscovery.load(path)`` returns it, and the directory.
    """
    from usergroups.spark.data import from_dataset, read_files
    from usergroups.spark.engine import SparkGroupDiscovery
    from usergroups.spark.session import spark_session

    spark = spark_session(master, conf)
    if dataset_name:
        from usergroups import datasets

        data = from_dataset(spark, datasets.load_dataset(dataset_name, data_dir=data_dir))
    else:
        # the four paths in load_files' order, then its options
        data = read_files(
            spark,
            interactions,
            texts,
            items,
            users,
            mapping=mapping,
            encoding=encoding,
            on_bad_lines=on_bad_lines,  # type: ignore[arg-type]
        )
    engine = SparkGroupDiscovery(config, spark=spark, fit_sample=fit_sample).fit(data)
    path = engine.save(out)
    return engine.model_, path

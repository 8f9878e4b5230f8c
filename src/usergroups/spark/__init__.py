"""The Spark engine: the same discovery on Apache Spark, the same model directory out.

Needs the ``spark`` extra (``pip install 'usergroups[spark]'``) and a Java runtime.

Examples
--------
>>> from usergroups.spark import SparkGroupDiscovery, read_files, spark_session  # doctest: +SKIP
>>> spark = spark_session("local[2]")  # doctest: +SKIP
>>> data = read_files(spark, interactions="logs.parquet", texts="reviews.parquet")  # doctest: +SKIP
>>> SparkGroupDiscovery(spark=spark).fit(data).save("runs/big")  # doctest: +SKIP
"""

from __future__ import annotations

from usergroups.spark.data import SparkDataset, build_spark_dataset, from_dataset, read_files
from usergroups.spark.engine import SparkGroupDiscovery
from usergroups.spark.local import assign_users, frozen_config, postprocess_summary, project_users
from usergroups.spark.run import discover
from usergroups.spark.session import parse_conf, spark_session

__all__ = [
    "SparkDataset",
    "SparkGroupDiscovery",
    "assign_users",
    "build_spark_dataset",
    "discover",
    "from_dataset",
    "frozen_config",
    "parse_conf",
    "postprocess_summary",
    "project_users",
    "read_files",
    "spark_session",
]

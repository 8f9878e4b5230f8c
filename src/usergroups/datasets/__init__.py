"""Datasets: generic file readers, public-format loaders and a registry of public datasets.

Generic files (CSV / TSV / Parquet / JSON lines, optionally gzip) with a column mapping:

>>> from usergroups.datasets import parse_mapping
>>> parse_mapping("user_id=reviewerID,item_id=asin")
{'user_id': 'reviewerID', 'item_id': 'asin'}

Registered public datasets, read from the data directory (``$USERGROUPS_DATA``):

>>> ds = load_dataset("ml-100k")  # doctest: +SKIP
"""

from __future__ import annotations

from usergroups.datasets.fetch import fetch
from usergroups.datasets.movielens import (
    load_movielens_1m,
    load_movielens_100k,
    load_movielens_latest,
)
from usergroups.datasets.readers import (
    MAPPING_TARGETS,
    TABLE_COLUMNS,
    TableKind,
    dedupe_texts,
    interactions_from_texts,
    load_files,
    parse_mapping,
    read_table,
)
from usergroups.datasets.registry import (
    DATA_ENV,
    DatasetSpec,
    FileSpec,
    data_dir,
    dataset_path,
    get_spec,
    list_datasets,
    load_dataset,
    sha256_file,
    verify,
)
from usergroups.datasets.reviews import (
    load_amazon_reviews,
    load_douban_comments,
    load_yelp_reviews,
)

__all__ = [
    "DATA_ENV",
    "MAPPING_TARGETS",
    "TABLE_COLUMNS",
    "DatasetSpec",
    "FileSpec",
    "TableKind",
    "data_dir",
    "dataset_path",
    "dedupe_texts",
    "fetch",
    "get_spec",
    "interactions_from_texts",
    "list_datasets",
    "load_amazon_reviews",
    "load_dataset",
    "load_douban_comments",
    "load_files",
    "load_movielens_1m",
    "load_movielens_100k",
    "load_movielens_latest",
    "load_yelp_reviews",
    "parse_mapping",
    "read_table",
    "sha256_file",
    "verify",
]

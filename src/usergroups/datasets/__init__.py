"""Datasets: generic file readers, public-format loaders and a registry of public datasets.

Generic files (CSV / TSV / Parquet / JSON lines, optionally gzip) with a column mapping:

>>> from usergroups.datasets import parse_mapping
>>> parse_mapping("user_id=reviewerID,item_id=asin")
{'user_id': 'reviewerID', 'item_id': 'asin'}

Registered public datasets, read from the data directory (``$USERGROUPS_DATA``):

>>> ds = load_dataset("ml-100k")  # doctest: +SKIP

Where the data is, as one value that front ends share (the CLI's input options, the
service's ``[refit]`` settings):

>>> ds = DataSource(dataset_name="ml-100k").load()  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from usergroups.datasets.source import BadLinePolicy, DataSource, SourceKeys

__all__ = [
    "DATA_ENV",
    "MAPPING_TARGETS",
    "TABLE_COLUMNS",
    "BadLinePolicy",
    "DataSource",
    "DatasetSpec",
    "FileSpec",
    "SourceKeys",
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

if TYPE_CHECKING:
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

_LAZY_MODULES = ("readers", "registry", "movielens", "reviews", "fetch")
"""Where the other public names live, imported on first use (PEP 562): they pull in pandas,
and the CLI declares its input options from :class:`DataSource` at start (issue 25)."""


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for module in (import_module(f"{__name__}.{m}") for m in _LAZY_MODULES):
        if name in vars(module):
            # `fetch` is also a submodule's name: importing it bound the module here
            globals()[name] = value = vars(module)[name]
            return value
    raise AttributeError(f"{__name__}.{name} is listed in __all__ but defined nowhere")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

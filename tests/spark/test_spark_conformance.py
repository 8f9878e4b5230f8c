"""The data-cleaning rules give the same tables through the local and the Spark reader
(issue 21, item 2): one small file per rule, read by ``load_files`` and ``read_files``.

The Spark reader runs the local rule functions (``usergroups.data.model``) on buckets of
users, so the kept rows, their values, the report and the error messages must be equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from usergroups.datasets import load_files
from usergroups.errors import DataError

NBSP = "\u00a0"

CASES: dict[str, dict[str, Any]] = {
    "duplicates keep the latest, no time earliest, ties the last in file order": {
        "interactions": pd.DataFrame(
            {
                "user_id": ["a", "a", "a", "b", "b", "b", "c", "c"],
                "item_id": ["x", "x", "x", "y", "y", "z", "x", "x"],
                "rating": [1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0, 3.0],
                "timestamp": [5.0, 9.0, 9.0, np.nan, 1.0, 2.0, np.nan, np.nan],
            }
        ),
    },
    "ids with surrounding whitespace are the same id": {
        "interactions": pd.DataFrame(
            {"user_id": ["a", " a ", "b"], "item_id": ["x", "x ", "y"], "timestamp": [1, 2, 3]}
        ),
        "texts": pd.DataFrame({"user_id": [" b", "a"], "text": ["hello", "there"]}),
    },
    "blank ids and blank texts are dropped and counted": {
        "interactions": pd.DataFrame(
            {"user_id": ["a", "", "b", NBSP, "c"], "item_id": ["x", "y", " ", "z", "x"]}
        ),
        "texts": pd.DataFrame(
            {
                "user_id": ["a", " ", "b", "c", "a"],
                "text": ["fine", "nobody", "  ", f"{NBSP}\t", "also fine"],
            }
        ),
    },
    "exact duplicate texts keep the first": {
        "interactions": pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]}),
        "texts": pd.DataFrame(
            {
                "user_id": ["a", "a", "a", "b", "b"],
                "item_id": ["x", "x", "y", "y", "y"],
                "text": ["same", "same", "same", "other", "Other"],
                "rating": [1, 5, 3, 2, 2],
            }
        ),
    },
    "orphan texts are dropped": {
        "interactions": pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}),
        "texts": pd.DataFrame({"user_id": ["a", "z", "z", "y"], "text": ["t1", "t2", "t3", "t4"]}),
        "orphan_texts": "drop",
    },
    "interactions derived from reviews, blank items add none": {
        "texts": pd.DataFrame(
            {
                "user_id": ["a", "a", "b", "c"],
                "item_id": ["x", "x", "", "y"],
                "text": ["one", "two", "three", "four"],
                "rating": [1.0, 4.0, 2.0, 5.0],
                "timestamp": [2.0, 1.0, 3.0, 4.0],
            }
        ),
    },
}

ERRORS: dict[str, dict[str, Any]] = {
    "duplicates='error' names the count and the first pair": {
        "interactions": pd.DataFrame(
            {"user_id": ["b", "a", "b", "a", "b"], "item_id": ["y", "x", "y", "x", "y"]}
        ),
        "duplicates": "error",
    },
    "a bad rating names the value and the row": {
        "interactions": pd.DataFrame(
            {"user_id": ["a", "b", "c"], "item_id": ["x", "y", "z"], "rating": ["4", "", "x5"]}
        ),
    },
    "orphan texts refused": {
        "interactions": pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}),
        "texts": pd.DataFrame({"user_id": ["a", "q", "r"], "text": ["t1", "t2", "t3"]}),
        "orphan_texts": "error",
    },
}


def _files(tmp: Path, case: dict[str, Any]) -> dict[str, Any]:
    kwargs = {k: v for k, v in case.items() if not isinstance(v, pd.DataFrame)}
    for table in ("interactions", "texts"):
        if table in case:
            path = tmp / f"{table}.csv"
            case[table].to_csv(path, index=False)
            kwargs[table] = path
    return kwargs


def _table(df: pd.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    """Rows as tuples, NaN and None alike, in file order."""
    return [
        tuple(None if (isinstance(v, float) and np.isnan(v)) else v for v in row)
        for row in df[columns].itertuples(index=False)
    ]


@pytest.mark.parametrize("name", list(CASES))
def test_issue_21_spark_cleans_like_local(spark: Any, tmp_path: Path, name: str) -> None:
    from usergroups.spark import read_files

    kwargs = _files(tmp_path, dict(CASES[name]))
    local = load_files(**kwargs)
    sds = read_files(spark, **kwargs)
    assert sds.report.to_records() == local.report.to_records()
    inter = sds.interactions.orderBy("_pos").toPandas()
    columns = ["user_id", "item_id", "rating", "timestamp"]
    assert _table(inter, columns) == _table(local.interactions, columns)
    texts = sds.texts.orderBy("_pos").toPandas()
    columns = ["user_id", "text", "item_id", "rating", "timestamp"]
    assert _table(texts, columns) == _table(local.texts, columns)


@pytest.mark.parametrize("name", list(ERRORS))
def test_issue_21_spark_refuses_like_local(spark: Any, tmp_path: Path, name: str) -> None:
    from usergroups.spark import read_files

    kwargs = _files(tmp_path, dict(ERRORS[name]))
    with pytest.raises(DataError) as local_err:
        load_files(**kwargs)
    with pytest.raises(DataError) as spark_err:
        read_files(spark, **kwargs)
    assert str(spark_err.value) == str(local_err.value)

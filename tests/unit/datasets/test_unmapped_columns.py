"""Columns the user forgot to map are said out loud (issue 13).

Before: ``--texts`` on an Amazon file with only user, item and text mapped loaded
``overall`` and ``unixReviewTime`` as nothing, without a word, and leave-last-out quietly
took the last review in file order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from usergroups.datasets import load_files, read_table
from usergroups.datasets.readers import unmapped_lookalikes

THREE = "user_id=reviewerID,item_id=asin,text=reviewText"
FIVE = f"{THREE},rating=overall,timestamp=unixReviewTime"


def _reviews() -> list[dict[str, Any]]:
    return [
        {"reviewerID": "u1", "asin": "a", "reviewText": "good", "overall": 5.0,
         "unixReviewTime": 300, "reviewTime": "01 1, 1970", "summary": "ok"},
        {"reviewerID": "u1", "asin": "b", "reviewText": "bad", "overall": 1.0,
         "unixReviewTime": 100, "reviewTime": "01 1, 1970", "summary": "no"},
    ]  # fmt: skip


def test_issue13_unmapped_rating_and_time_of_an_amazon_file_are_reported(
    tmp_path: Path, jsonl_writer: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    path = jsonl_writer(tmp_path / "Appliances_5.json.gz", _reviews())
    with caplog.at_level(logging.WARNING):
        ds = load_files(texts=path, mapping=THREE)
    lines = [r.getMessage() for r in caplog.records if "not mapped" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "'overall'" in lines[0] and "'unixReviewTime'" in lines[0]
    assert "--map rating=overall,timestamp=unixReviewTime" in lines[0]
    assert "file order" in lines[0]
    # in the report, so in metrics.json's "dropped" (GroupDiscovery stores to_records())
    records = ds.report.to_records()
    assert any(
        r["source"] == "Appliances_5.json.gz"
        and r["count"] == 2
        and "rating=overall,timestamp=unixReviewTime" in str(r["reason"])
        for r in records
    )
    assert "rating=overall" in str(ds.report)
    assert ds.report.total == 0  # nothing was dropped: the rows were kept without them
    assert ds.interactions["rating"].isna().all()


def test_issue13_mapping_all_five_loads_them_without_a_warning(
    tmp_path: Path, jsonl_writer: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    path = jsonl_writer(tmp_path / "r.jsonl", _reviews())
    with caplog.at_level(logging.WARNING):
        ds = load_files(texts=path, mapping=FIVE)
    assert "not mapped" not in caplog.text
    assert ds.report.notes == []
    assert ds.interactions["rating"].tolist() == [5.0, 1.0]
    assert ds.interactions["timestamp"].tolist() == [300.0, 100.0]


def test_issue13_an_unmapped_csv_stars_column_alone_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "log.csv"
    path.write_text("user,item,Stars,timestamp\nu1,i1,5,10\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        df = read_table(path, kind="interactions", mapping={"user_id": "user", "item_id": "item"})
    assert df["timestamp"].tolist() == [10.0]  # named like ours: taken without a mapping
    assert "column 'Stars' looks like rating" in caplog.text
    assert "--map rating=Stars" in caplog.text and "file order" not in caplog.text


def test_columns_named_like_ours_or_used_elsewhere_are_not_reported() -> None:
    assert unmapped_lookalikes("interactions", {"rating": "rating"}, ["rating", "date"]) == {
        "timestamp": "date"
    }
    # a column already used for another of our columns is not a forgotten one
    assert unmapped_lookalikes("texts", {"text": "score"}, ["score"]) == {}
    # items and users take no rating or timestamp
    assert unmapped_lookalikes("items", {"item_id": "asin"}, ["asin", "overall"]) == {}
    assert unmapped_lookalikes("users", {"user_id": "u"}, ["u", "time"]) == {}


def test_the_best_lookalike_is_suggested() -> None:
    found = unmapped_lookalikes("texts", {}, ["reviewTime", "unixReviewTime", "overall"])
    assert found == {"rating": "overall", "timestamp": "unixReviewTime"}


def test_issue13_parquet_files_are_checked_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.parquet"
    pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "date": ["2011-01-26"]}).to_parquet(path)
    with caplog.at_level(logging.WARNING):
        read_table(path, kind="interactions")
    assert "--map timestamp=date" in caplog.text

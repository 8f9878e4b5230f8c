"""Ids read from files follow the data model's one rule, whatever the format (issue 13)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from usergroups.datasets import load_files, read_table
from usergroups.evaluation import warm_split


def test_issue13_json_numbers_and_strings_give_the_same_ids(
    tmp_path: Path, jsonl_writer: Callable[..., Path]
) -> None:
    records = [
        {"user": 1, "item": 12, "text": "int"},
        {"user": "1", "item": 12.0, "text": "float"},
        {"user": 2, "item": "12", "text": "str"},
        {"user": 2, "item": None, "text": "none"},
    ]
    path = jsonl_writer(tmp_path / "r.jsonl", records)
    df = read_table(path, kind="texts", mapping={"user_id": "user", "item_id": "item"})
    assert df["user_id"].tolist() == ["1", "1", "2", "2"]
    assert df["item_id"].tolist() == ["12", "12", "12", None]


def test_issue13_parquet_interactions_and_reviews_link_across_dtypes(tmp_path: Path) -> None:
    """Interactions with int64 item ids, reviews whose ids are float64 (one missing)."""
    inter = tmp_path / "inter.parquet"
    pd.DataFrame(
        {"user_id": [1, 1, 1], "item_id": [10, 11, 12], "timestamp": [1.0, 2.0, 3.0]}
    ).to_parquet(inter)
    texts = tmp_path / "texts.parquet"
    pd.DataFrame({"user_id": [1, 1], "item_id": [12, np.nan], "text": ["on 12", "bio"]}).to_parquet(
        texts
    )
    ds = load_files(interactions=inter, texts=texts)
    assert ds.texts["item_id"].tolist() == ["12", None]
    # 12 is user 1's last item: its review must not be trained on
    assert warm_split(ds).train_dataset().texts["text"].tolist() == ["bio"]


def test_csv_ids_stay_as_written(tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    path.write_text("user_id,item_id\n007,12.0\n007,12\n", encoding="utf-8")
    df = read_table(path, kind="interactions")
    assert df["user_id"].tolist() == ["007", "007"]
    assert df["item_id"].tolist() == ["12.0", "12"]

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from usergroups.datasets import load_files
from usergroups.errors import DataError

AMAZON_MAP = (
    "user_id=reviewerID,item_id=asin,text=reviewText,rating=overall,timestamp=unixReviewTime"
)


def _review(user: str, item: str, text: str, rating: float = 5.0, t: int = 100) -> dict[str, Any]:
    return {"reviewerID": user, "asin": item, "reviewText": text, "overall": rating,
            "unixReviewTime": t}  # fmt: skip


@pytest.fixture
def four_files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "inter.csv").write_text(
        "user,item,stars,time\nu1,i1,5,10\nu1,i2,3,20\nu2,i1,4,30\nu3,i3,1,40\n",
        encoding="utf-8",
    )
    (tmp_path / "texts.tsv").write_text(
        "user\titem\tbody\nu1\ti1\tloved it\nu2\t\tnice shop\nu9\ti1\twho am I\n",
        encoding="utf-8",
    )
    (tmp_path / "items.csv").write_text(
        'item,name,genres\ni1,"One, the first",A|B\ni2,Two,B\ni3,Three,\ni4,Four,C\n',
        encoding="utf-8",
    )
    (tmp_path / "users.csv").write_text("user,age\nu1,30\nu2,40\nu3,50\n", encoding="utf-8")
    return {p.stem: p for p in tmp_path.iterdir()}


MAP = {
    "user_id": "user",
    "item_id": "item",
    "rating": "stars",
    "timestamp": "time",
    "text": "body",
    "title": "name",
    "categories": "genres",
}


def test_four_files_build_a_dataset(four_files: dict[str, Path]) -> None:
    ds = load_files(
        four_files["inter"],
        four_files["texts"],
        four_files["items"],
        four_files["users"],
        mapping=MAP,
        name="shop",
    )
    assert ds.name == "shop"
    assert (ds.n_interactions, len(ds.texts), ds.n_items) == (4, 3, 4)
    assert ds.n_users == 4  # u9 has a text only: kept by the default orphan policy
    assert ds.item_titles()["i1"] == "One, the first"
    assert ds.items is not None and ds.items["categories"].tolist() == ["A|B", "B", "", "C"]
    assert ds.users is not None and ds.users["age"].tolist() == [30, 40, 50]
    # a text without an item keeps a missing item_id (NaN under pandas 3's str dtype)
    assert ds.texts["item_id"].isna().tolist() == [False, True, False]
    assert ds.texts["item_id"].iloc[0] == "i1"


def test_the_name_defaults_to_the_first_file(four_files: dict[str, Path]) -> None:
    assert load_files(four_files["inter"], mapping=MAP).name == "inter"


def test_orphan_policy_passes_through_and_is_counted(four_files: dict[str, Path]) -> None:
    ds = load_files(four_files["inter"], four_files["texts"], mapping=MAP, orphan_texts="drop")
    assert len(ds.texts) == 2
    assert ("texts", 1, "dropped: user has no interactions") in ds.report.entries
    with pytest.raises(DataError, match="whose user has no interactions"):
        load_files(four_files["inter"], four_files["texts"], mapping=MAP, orphan_texts="error")


def test_texts_alone_derive_the_interactions(
    tmp_path: Path, jsonl_writer: Callable[..., Path]
) -> None:
    path = jsonl_writer(
        tmp_path / "reviews.jsonl.gz",
        [
            _review("u1", "a", "great", 5, 100),
            _review("u1", "b", "meh", 3, 200),
            _review("u2", "a", "", 4, 300),  # a rating without text is still an interaction
        ],
    )
    ds = load_files(texts=path, mapping=AMAZON_MAP)
    assert ds.name == "reviews"
    assert ds.interactions.to_dict("records") == [
        {"user_id": "u1", "item_id": "a", "rating": 5.0, "timestamp": 100.0},
        {"user_id": "u1", "item_id": "b", "rating": 3.0, "timestamp": 200.0},
        {"user_id": "u2", "item_id": "a", "rating": 4.0, "timestamp": 300.0},
    ]
    assert ds.texts["text"].tolist() == ["great", "meh"]
    assert ("texts", 1, "dropped: empty text") in ds.report.entries


def test_duplicates_are_merged_and_exact_duplicate_texts_dropped(
    tmp_path: Path, jsonl_writer: Callable[..., Path]
) -> None:
    path = jsonl_writer(
        tmp_path / "r.jsonl",
        [
            _review("u1", "a", "same", 4, 100),
            _review("u1", "a", "same", 4, 100),
            _review("u1", "a", "edited later", 2, 500),
            _review("u2", "a", "fine", 5, 100),
        ],
    )
    ds = load_files(texts=path, mapping=AMAZON_MAP)
    assert ds.n_interactions == 2
    row = ds.interactions[ds.interactions["user_id"] == "u1"].iloc[0]
    assert (row.rating, row.timestamp) == (2.0, 500.0)  # the latest is kept
    assert sorted(ds.texts["text"]) == ["edited later", "fine", "same"]
    entries = {(s, r): c for s, c, r in ds.report.entries}
    assert entries[("interactions", "merged: duplicate (user_id, item_id), kept the latest")] == 2
    assert entries[("texts", "dropped: exact duplicate text (same user, item and text)")] == 1

    kept = load_files(texts=path, mapping=AMAZON_MAP, drop_duplicate_texts=False)
    assert len(kept.texts) == 4
    with pytest.raises(DataError, match="duplicate"):
        load_files(texts=path, mapping=AMAZON_MAP, duplicates="error")


def test_skipped_lines_land_in_the_dataset_report(
    tmp_path: Path, jsonl_writer: Callable[..., Path]
) -> None:
    path = jsonl_writer(
        tmp_path / "r.jsonl", [_review("u1", "a", "ok")], extra_lines=["{broken", "{broken"]
    )
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        load_files(texts=path, mapping=AMAZON_MAP)
    ds = load_files(texts=path, mapping=AMAZON_MAP, on_bad_lines="skip")
    assert ds.n_interactions == 1
    assert ds.report.entries[0][:2] == ("r.jsonl", 2)


def test_neither_interactions_nor_texts_is_an_error() -> None:
    with pytest.raises(DataError, match="needs interactions= or texts="):
        load_files()


def test_texts_alone_without_item_ids_cannot_give_interactions(tmp_path: Path) -> None:
    path = tmp_path / "bios.csv"
    path.write_text("user_id,text\nu1,I like jazz\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no item_id column.*--map item_id="):
        load_files(texts=path)


def test_mapping_string_with_a_bad_entry_is_rejected(four_files: dict[str, Path]) -> None:
    with pytest.raises(DataError, match="OURS=THEIRS"):
        load_files(four_files["inter"], mapping="user_id:user")


def test_text_rows_without_item_are_logged_not_dropped(
    four_files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="usergroups.datasets.readers"):
        ds = load_files(
            texts=four_files["texts"],
            mapping={"user_id": "user", "item_id": "item", "text": "body"},
        )
    assert ds.n_interactions == 2 and len(ds.texts) == 3
    assert "1 text row(s) name no item" in caplog.text
    assert np.isnan(ds.interactions["rating"]).all()


def test_a_mapping_entry_that_matches_no_file_is_an_error(four_files: dict[str, Path]) -> None:
    # rating=stars is fine while some file it applies to has "stars" (here: inter.csv) ...
    load_files(four_files["inter"], four_files["texts"], mapping=MAP)
    # ... but a typo that matches nowhere is named, with the columns of every file
    with pytest.raises(DataError) as info:
        load_files(four_files["inter"], four_files["texts"], mapping={**MAP, "rating": "star"})
    msg = str(info.value)
    assert "the mapping rating=star matches no column" in msg
    assert "inter.csv' has ['user', 'item', 'stars', 'time']" in msg
    assert "texts.tsv' has ['user', 'item', 'body']" in msg

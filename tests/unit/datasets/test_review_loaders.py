from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from usergroups.datasets import load_amazon_reviews, load_douban_comments, load_yelp_reviews
from usergroups.errors import DataError


def _amazon(
    user: str, item: str, text: str | None, summary: str | None, rating: float, t: int
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "reviewerID": user,
        "asin": item,
        "overall": rating,
        "unixReviewTime": t,
        "reviewTime": "02 28, 2014",
        "helpful": [0, 0],
    }
    if text is not None:
        rec["reviewText"] = text
    if summary is not None:
        rec["summary"] = summary
    return rec


AMAZON_ROWS = [
    _amazon("A1", "B001", "Works as it should.", "good", 5.0, 1393545600),
    _amazon("A1", "B002", "Broke in a week.", "", 1.0, 1393545700),
    _amazon("A2", "B001", "Great tone", "Wow!", 4.0, 1393545800),
    _amazon("A2", "B003", None, "Just the summary", 3.0, 1393545900),
    # the 2018 files repeat a review once per product variant
    {**_amazon("A2", "B001", "Great tone", "Wow!", 4.0, 1393545800), "style": {"Size:": "6"}},
]


def test_amazon_reviews_become_interactions_texts_and_item_ids(
    tmp_path: Path, jsonl_writer: Callable[..., Path]
) -> None:
    path = jsonl_writer(tmp_path / "reviews_Musical_Instruments_5.json.gz", AMAZON_ROWS)
    ds = load_amazon_reviews(path)
    assert ds.name == "reviews_Musical_Instruments_5"
    assert ds.n_interactions == 4 and ds.n_users == 2 and ds.n_items == 3
    assert ds.items is not None and sorted(ds.items["item_id"]) == ["B001", "B002", "B003"]
    assert ds.items["title"].eq("").all()  # no metadata in review files
    pairs = zip(ds.texts["user_id"], ds.texts["item_id"], strict=True)
    texts = dict(zip(pairs, ds.texts["text"], strict=True))
    assert texts[("A1", "B001")] == "good. Works as it should."
    assert texts[("A1", "B002")] == "Broke in a week."  # empty summary: review text only
    assert texts[("A2", "B001")] == "Wow! Great tone"  # summary ends a sentence already
    assert texts[("A2", "B003")] == "Just the summary"
    assert ds.texts["rating"].tolist() == [5.0, 1.0, 4.0, 3.0]


def test_amazon_duplicates_are_merged_and_counted(
    tmp_path: Path, jsonl_writer: Callable[..., Path]
) -> None:
    ds = load_amazon_reviews(jsonl_writer(tmp_path / "Appliances_5.json.gz", AMAZON_ROWS))
    assert ds.report.to_records() == [
        {"source": "texts", "count": 1,
         "reason": "dropped: exact duplicate text (same user, item and text)"},
        {"source": "interactions", "count": 1,
         "reason": "merged: duplicate (user_id, item_id), kept the latest"},
    ]  # fmt: skip


def test_amazon_accepts_a_folder_with_one_file(
    tmp_path: Path, jsonl_writer: Callable[..., Path]
) -> None:
    jsonl_writer(tmp_path / "Appliances_5.json.gz", AMAZON_ROWS)
    assert load_amazon_reviews(tmp_path, name="apps").name == "apps"
    jsonl_writer(tmp_path / "Other_5.json.gz", AMAZON_ROWS)
    with pytest.raises(DataError, match=r"2 candidate files.*pass the path"):
        load_amazon_reviews(tmp_path)


def test_amazon_rejects_another_layout(tmp_path: Path, jsonl_writer: Callable[..., Path]) -> None:
    path = jsonl_writer(tmp_path / "x.jsonl", [{"user": "u", "item": "i"}])
    with pytest.raises(DataError, match=r"no field\(s\) \['reviewerID', 'asin'\].*load_files"):
        load_amazon_reviews(path)


def test_amazon_bad_line_is_named_or_skipped_and_counted(
    tmp_path: Path, jsonl_writer: Callable[..., Path]
) -> None:
    path = jsonl_writer(tmp_path / "r.json.gz", AMAZON_ROWS[:2], extra_lines=['{"reviewerID": '])
    with pytest.raises(DataError, match="line 3 is not valid JSON"):
        load_amazon_reviews(path)
    ds = load_amazon_reviews(path, on_bad_lines="skip")
    assert ds.n_interactions == 2 and ds.report.entries[0][:2] == ("r.json.gz", 1)


YELP_CSV = (
    "business_id,date,review_id,stars,text,type,user_id,cool,useful,funny\n"
    '9yKz,2011-01-26,r1,5,"Great brunch.\n\nGet the Bloody Mary, really.",review,uA,2,5,0\n'
    'ZRJw,2011-07-27,r2,4,"I have no idea why ""some"" people complain",review,uB,0,0,0\n'
    "9yKz,2012-06-14,r3,2,Meh,review,uB,0,1,0\n"
)


@pytest.mark.parametrize("name", ["yelp.csv", "yelp.csv.gz"])
def test_yelp_csv_with_multiline_text(tmp_path: Path, name: str) -> None:
    data = YELP_CSV.encode("utf-8")
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    ds = load_yelp_reviews(tmp_path)
    assert ds.name == "yelp"
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (3, 2, 2)
    assert ds.texts["text"].iloc[0] == "Great brunch.\n\nGet the Bloody Mary, really."
    assert ds.texts["text"].iloc[1] == 'I have no idea why "some" people complain'
    assert ds.interactions["timestamp"].iloc[0] == 1296000000.0  # 2011-01-26 00:00 UTC
    assert ds.interactions["rating"].tolist() == [5.0, 4.0, 2.0]


def test_yelp_official_json_reviews_load_too(
    tmp_path: Path, jsonl_writer: Callable[..., Path]
) -> None:
    rows = [{"review_id": "r1", "user_id": "uA", "business_id": "b1", "stars": 4,
             "text": "Tasty", "date": "2018-07-07 22:09:11"}]  # fmt: skip
    path = jsonl_writer(tmp_path / "yelp_academic_dataset_review.json", rows)
    ds = load_yelp_reviews(path)
    assert ds.interactions["timestamp"].iloc[0] == pd.Timestamp("2018-07-07 22:09:11Z").timestamp()


DOUBAN_HEADER = (
    '"comment_time","content","created_at","douban_comment_id","douban_id",'
    '"douban_user_avatar","douban_user_nickname","douban_user_url","id","rating",'
    '"updated_at","votes","user_id","user_md5"'
)


def _douban_row(time: str, content: str, movie: str, rating: str, uid: str, md5: str) -> str:
    return (
        f'"{time}","{content}","2019-09-06 19:36:59","1","{movie}","http://a","nick",'
        f'"http://u","9","{rating}","2019-09-06 19:36:59","0","{uid}","{md5}"'
    )


def test_douban_comments_with_bom_empty_ratings_and_beijing_time(tmp_path: Path) -> None:
    lines = [
        DOUBAN_HEADER,
        _douban_row("2018-09-05 19:42:07", "480p，画质不高，黑白", "5113101", "2", "1504", "0ab7"),
        _douban_row(
            "2010-06-20 02:12:50", "上海国际电影节\n观摩片", "3718526", "", "e.a.t", "35d3"
        ),
    ]
    (tmp_path / "comments.csv").write_bytes(("\n".join(lines) + "\n").encode("utf-8-sig"))
    (tmp_path / "movies.csv").write_text("not joined", encoding="utf-8")
    ds = load_douban_comments(tmp_path)
    assert ds.name == "douban"
    assert ds.interactions["user_id"].tolist() == ["0ab7", "35d3"]  # user_md5, not user_id
    assert ds.interactions["item_id"].tolist() == ["5113101", "3718526"]
    assert ds.texts["text"].tolist() == ["480p，画质不高，黑白", "上海国际电影节\n观摩片"]
    assert ds.texts["rating"].iloc[0] == 2.0 and np.isnan(ds.texts["rating"].iloc[1])
    # 19:42:07 in Beijing (UTC+8) is 11:42:07 UTC
    assert ds.interactions["timestamp"].iloc[0] == pd.Timestamp("2018-09-05 11:42:07Z").timestamp()
    assert ds.items is None


def test_douban_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"file not found: '.*comments\.csv'"):
        load_douban_comments(tmp_path)

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from usergroups.data import DataReport
from usergroups.datasets import MAPPING_TARGETS, parse_mapping, read_table
from usergroups.errors import ConfigError, DataError

REVIEW_MAP = {
    "user_id": "reviewerID",
    "item_id": "asin",
    "text": "reviewText",
    "rating": "overall",
    "timestamp": "unixReviewTime",
}
ROWS = [
    {"reviewerID": "u1", "asin": "007", "reviewText": "Great strings", "overall": 5.0,
     "unixReviewTime": 1393545600},
    {"reviewerID": "u2", "asin": "008", "reviewText": "NA", "overall": 3.0,
     "unixReviewTime": 1363392000},
]  # fmt: skip


def _write(path: Path, df: pd.DataFrame) -> Path:
    name = path.name.removesuffix(".gz")
    gz = path.name.endswith(".gz")
    if name.endswith(".parquet"):
        data = df.to_parquet()
        path.write_bytes(gzip.compress(data) if gz else data)
        return path
    if name.endswith((".jsonl", ".json", ".ndjson")):
        text = "".join(json.dumps(r) + "\n" for r in df.to_dict("records"))
    else:
        text = df.to_csv(index=False, sep="\t" if name.endswith(".tsv") else ",")
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# ---------------------------------------------------------------- parse_mapping


def test_parse_mapping_reads_the_cli_form() -> None:
    assert parse_mapping("user_id=reviewerID,item_id=asin,text=reviewText") == {
        "user_id": "reviewerID",
        "item_id": "asin",
        "text": "reviewText",
    }


def test_parse_mapping_ignores_whitespace_and_empty_entries() -> None:
    assert parse_mapping(" user_id = reviewerID , ,") == {"user_id": "reviewerID"}
    assert parse_mapping("") == {}


@pytest.mark.parametrize("spec", ["user_id:reviewerID", "user_id=", "=asin", "user_id"])
def test_parse_mapping_rejects_bad_syntax_with_an_example(spec: str) -> None:
    with pytest.raises(DataError, match=r"OURS=THEIRS.*user_id=reviewerID"):
        parse_mapping(spec)


def test_parse_mapping_rejects_unknown_targets_and_lists_the_valid_ones() -> None:
    with pytest.raises(DataError, match=r"\['userid'\] are not known.*user_id, item_id, text"):
        parse_mapping("userid=reviewerID")


def test_parse_mapping_rejects_a_repeated_target() -> None:
    with pytest.raises(DataError, match="maps 'user_id' twice"):
        parse_mapping("user_id=a,user_id=b")


_names = st.text(
    alphabet=st.characters(blacklist_characters=",=", blacklist_categories=("Cs", "Z", "C")),
    min_size=1,
    max_size=12,
)


@given(
    st.dictionaries(st.sampled_from(MAPPING_TARGETS), _names, max_size=len(MAPPING_TARGETS)).filter(
        lambda m: len(set(m.values())) == len(m)
    )
)
def test_parse_mapping_round_trips_any_mapping(mapping: dict[str, str]) -> None:
    spec = ",".join(f"{k}={v}" for k, v in mapping.items())
    assert parse_mapping(spec) == mapping


def test_issue22_parse_mapping_refuses_two_targets_on_one_column() -> None:
    with pytest.raises(ConfigError, match="maps user_id and item_id to the same column 'x'"):
        parse_mapping("user_id=x,item_id=x")


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize(
    "name",
    [
        "r.csv",
        "r.csv.gz",
        "r.tsv",
        "r.tsv.gz",
        "r.parquet",
        "r.parquet.gz",
        "r.jsonl",
        "r.jsonl.gz",
        "r.json",
        "r.ndjson.gz",
    ],
)
def test_every_format_reads_to_the_same_table(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / name, pd.DataFrame(ROWS))
    df = read_table(path, kind="texts", mapping=REVIEW_MAP)
    assert list(df.columns) == ["user_id", "text", "item_id", "rating", "timestamp"]
    assert df["user_id"].tolist() == ["u1", "u2"]
    assert df["item_id"].tolist() == ["007", "008"]
    assert df["rating"].dtype == np.float64 and df["rating"].tolist() == [5.0, 3.0]
    assert df["timestamp"].tolist() == [1393545600.0, 1363392000.0]
    assert df["text"].tolist() == ["Great strings", "NA"]  # "NA" is text, not missing


def test_csv_ids_keep_leading_zeros(tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    path.write_text("user,item\n007,0042\n", encoding="utf-8")
    df = read_table(path, kind="interactions", mapping={"user_id": "user", "item_id": "item"})
    assert df["user_id"].tolist() == ["007"] and df["item_id"].tolist() == ["0042"]


def test_json_array_file_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(ROWS), encoding="utf-8")
    df = read_table(path, kind="interactions", mapping=REVIEW_MAP)
    assert df["item_id"].tolist() == ["007", "008"]


def test_mapping_targets_of_other_tables_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    path.write_text("user_id,item_id\nu1,i1\n", encoding="utf-8")
    df = read_table(path, kind="interactions", mapping={"text": "reviewText", "title": "name"})
    assert list(df.columns) == ["user_id", "item_id"]


def test_columns_already_named_like_ours_need_no_mapping(tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    path.write_text("user_id,item_id,rating,other\nu1,i1,4\n", encoding="utf-8")
    df = read_table(path, kind="interactions", mapping={"user_id": "reviewerID"})
    assert list(df.columns) == ["user_id", "item_id", "rating"]


def test_sep_overrides_the_default(tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    path.write_text("user_id|item_id\nu1|i1\n", encoding="utf-8")
    assert read_table(path, kind="interactions", sep="|")["item_id"].tolist() == ["i1"]


def test_format_overrides_an_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "u.data"
    path.write_text("user_id\titem_id\n1\t2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"cannot tell the format.*format='csv'"):
        read_table(path, kind="interactions")
    assert read_table(path, kind="interactions", format="tsv")["item_id"].tolist() == ["2"]


def test_date_strings_become_unix_seconds(tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    path.write_text("user_id,item_id,date\nu1,i1,2011-01-26\nu2,i1,\n", encoding="utf-8")
    df = read_table(path, kind="interactions", mapping={"timestamp": "date"})
    assert df["timestamp"].iloc[0] == 1296000000.0 and np.isnan(df["timestamp"].iloc[1])


def test_parquet_datetimes_and_integer_ids_are_converted(tmp_path: Path) -> None:
    path = tmp_path / "i.parquet"
    pd.DataFrame(
        {"u": [1, 2], "i": [10.0, np.nan], "t": pd.to_datetime(["1970-01-02", "1970-01-01"])}
    ).to_parquet(path)
    df = read_table(path, kind="interactions", mapping={"user_id": "u", "item_id": "i",
                                                        "timestamp": "t"})  # fmt: skip
    assert df["user_id"].tolist() == ["1", "2"]
    assert df["item_id"].iloc[0] == "10" and pd.isna(df["item_id"].iloc[1])
    assert df["timestamp"].tolist() == [86400.0, 0.0]


def test_list_valued_categories_are_joined_with_bars(tmp_path: Path) -> None:
    path = tmp_path / "meta.jsonl"
    path.write_text(
        json.dumps({"asin": "a1", "title": "Strings", "categories": [["Music", "Guitar"]]}) + "\n",
        encoding="utf-8",
    )
    df = read_table(path, kind="items", mapping={"item_id": "asin"})
    assert df.to_dict("records") == [{"item_id": "a1", "title": "Strings",
                                      "categories": "Music|Guitar"}]  # fmt: skip


def test_users_tables_keep_every_attribute(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("uid,age,gender\n1,24,M\n2,53,F\n", encoding="utf-8")
    df = read_table(path, kind="users", mapping={"user_id": "uid"})
    assert list(df.columns) == ["user_id", "age", "gender"]
    assert df["age"].tolist() == [24, 53]


def test_a_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes("user_id,item_id,text\nu1,i1,好看\n".encode("utf-8-sig"))
    df = read_table(path, kind="texts")
    assert df["text"].tolist() == ["好看"]


def test_utf16_with_bom_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes("user_id,item_id\nü,i1\n".encode("utf-16"))
    assert read_table(path, kind="interactions")["user_id"].tolist() == ["ü"]


# ---------------------------------------------------------------- bad input


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=rf"file not found: '{missing}'"):
        read_table(missing, kind="interactions")


@pytest.mark.parametrize("name", ["e.csv", "e.jsonl", "e.parquet", "e.csv.gz"])
def test_empty_file_is_an_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"is empty \(0 bytes\)"):
        read_table(path, kind="interactions")


def test_header_without_rows_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("user_id,item_id\n", encoding="utf-8")
    with pytest.raises(DataError, match="has a header but no rows"):
        read_table(path, kind="interactions")


def test_whitespace_only_jsonl_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text("\n\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match="holds only whitespace"):
        read_table(path, kind="interactions")


def test_missing_mapped_column_names_file_column_columns_and_fix(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.csv", pd.DataFrame(ROWS))
    with pytest.raises(DataError) as info:
        read_table(path, kind="texts", mapping={**REVIEW_MAP, "text": "review_text"})
    msg = str(info.value)
    assert str(path) in msg
    assert "'review_text' (mapped to text)" in msg
    assert "['reviewerID', 'asin', 'reviewText', 'overall', 'unixReviewTime']" in msg
    assert "--map text=reviewText" in msg


def test_missing_required_column_suggests_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.jsonl", pd.DataFrame(ROWS))
    with pytest.raises(DataError, match=r"no 'user_id' column.*--map user_id=reviewerID"):
        read_table(path, kind="interactions")


def test_unparseable_json_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n" + json.dumps(ROWS[1]) + "\n")
    with pytest.raises(DataError, match=rf"'{path}' line 2 is not valid JSON.*on_bad_lines='skip'"):
        read_table(path, kind="texts", mapping=REVIEW_MAP)


def test_json_line_that_is_not_an_object_is_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n[1, 2]\n")
    with pytest.raises(DataError, match="line 2 is JSON but not an object"):
        read_table(path, kind="texts", mapping=REVIEW_MAP)


def test_skipped_json_lines_are_counted_in_the_report(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.gz"
    body = "\n".join([json.dumps(ROWS[0]), "{oops", "42", json.dumps(ROWS[1])])
    path.write_bytes(gzip.compress(body.encode()))
    report = DataReport()
    df = read_table(path, kind="texts", mapping=REVIEW_MAP, on_bad_lines="skip", report=report)
    assert len(df) == 2
    assert report.entries == [("r.jsonl.gz", 2, "dropped: line(s) that are not JSON objects "
                               "(first: line 2)")]  # fmt: skip


def test_malformed_csv_row_is_an_error_or_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    path.write_text("user_id,item_id\nu1,i1\nu2,i2,extra\nu3,i3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"could not be parsed.*line 3.*on_bad_lines='skip'"):
        read_table(path, kind="interactions")
    report = DataReport()
    df = read_table(path, kind="interactions", on_bad_lines="skip", report=report)
    assert df["user_id"].tolist() == ["u1", "u3"]
    assert report.total == 1 and "line 3" in report.entries[0][2]


@pytest.mark.parametrize("gz", [False, True])
def test_non_utf8_text_names_file_and_byte_offset_and_suggests_latin1(
    tmp_path: Path, gz: bool
) -> None:
    data = "user_id,item_id,text\nu1,i1,ok\nu2,i2,Mis\xe9rables\n".encode("latin-1")
    path = tmp_path / ("t.csv.gz" if gz else "t.csv")
    path.write_bytes(gzip.compress(data) if gz else data)
    offset = data.index(b"\xe9")
    with pytest.raises(DataError) as info:
        read_table(path, kind="texts")
    msg = str(info.value)
    assert str(path) in msg and f"byte offset {offset}" in msg and "line 3" in msg
    assert "encoding='latin-1'" in msg
    df = read_table(path, kind="texts", encoding="latin-1")
    assert df["text"].tolist() == ["ok", "Misérables"]


def test_non_utf8_jsonl_names_the_offset(tmp_path: Path) -> None:
    data = b'{"user_id": "u1", "item_id": "caf\xe9"}\n'
    path = tmp_path / "t.jsonl"
    path.write_bytes(data)
    offset = data.index(b"\xe9")
    with pytest.raises(DataError, match=rf"byte offset {offset} \(line 1\)"):
        read_table(path, kind="interactions")
    assert read_table(path, kind="interactions", encoding="latin-1")["item_id"].tolist() == ["café"]


def test_unknown_encoding_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.csv", pd.DataFrame(ROWS))
    with pytest.raises(DataError, match="not a known text encoding"):
        read_table(path, kind="texts", mapping=REVIEW_MAP, encoding="klingon")


def test_non_numeric_rating_names_the_column_and_an_example(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("user_id,item_id,stars\nu1,i1,4\nu2,i2,five\nu3,i3,\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_table(path, kind="interactions", mapping={"rating": "stars"})
    msg = str(info.value)
    assert "'stars' (mapped to rating) must be numeric" in msg
    assert "'five' in data row 2" in msg and str(path) in msg


def test_empty_rating_is_nan_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("user_id,item_id,rating\nu1,i1,4\nu2,i2,\n", encoding="utf-8")
    ratings = read_table(path, kind="interactions")["rating"]
    assert ratings.iloc[0] == 4.0 and np.isnan(ratings.iloc[1])


def test_unparseable_timestamp_names_an_example(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("user_id,item_id,timestamp\nu1,i1,2011-01-26\nu2,i2,soon\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"timestamp must hold unix seconds or dates.*'soon'"):
        read_table(path, kind="interactions")


def test_bool_rating_is_rejected(tmp_path: Path, jsonl_writer: Callable[..., Path]) -> None:
    path = jsonl_writer(tmp_path / "r.jsonl", [{"user_id": "u", "item_id": "i", "rating": True}])
    with pytest.raises(DataError, match="rating must be numeric"):
        read_table(path, kind="interactions")


@pytest.mark.parametrize("name", ["r.jsonl.gz", "r.csv.gz"])
@pytest.mark.parametrize("damage", ["truncated", "not gzip"])
def test_damaged_gzip_is_an_error(tmp_path: Path, name: str, damage: str) -> None:
    path = tmp_path / name
    body = b"user_id,item_id\n" + b"u,i\n" * 5000
    if name.endswith(".jsonl.gz"):
        body = b'{"user_id": "u", "item_id": "i"}\n' * 5000
    path.write_bytes(gzip.compress(body)[:60] if damage == "truncated" else body)
    with pytest.raises(DataError, match="not a valid gzip file"):
        read_table(path, kind="interactions")


def test_damaged_parquet_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="could not be read as Parquet"):
        read_table(path, kind="interactions")


def test_bad_kind_and_policy_list_the_choices(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.csv", pd.DataFrame(ROWS))
    with pytest.raises(DataError, match="'interactions', 'texts', 'items', 'users'"):
        read_table(path, kind="reviews")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="'error', 'skip'"):
        read_table(path, kind="texts", on_bad_lines="warn")  # type: ignore[arg-type]


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a file"):
        read_table(tmp_path, kind="interactions")

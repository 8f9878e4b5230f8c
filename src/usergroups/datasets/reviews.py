"""Loaders for public review datasets: Amazon (2014 and 2018 JSON lines), Yelp, Douban.

In all of them the interactions are the review rows themselves (user, item, rating,
time). Duplicate (user, item) reviews are merged by the :func:`build_dataset` policy
(latest kept) and exact duplicate texts (same user, item and text) are dropped; both
counts land in ``dataset.report``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from usergroups.data.model import DataReport, Dataset, build_dataset
from usergroups.datasets._io import (
    BadLinePolicy,
    check_file,
    detect_format,
    read_json_records,
)
from usergroups.datasets.readers import (
    coerce_columns,
    dedupe_texts,
    interactions_from_texts,
    read_table,
)
from usergroups.errors import DataError

__all__ = [
    "AMAZON_FIELDS",
    "load_amazon_reviews",
    "load_douban_comments",
    "load_yelp_reviews",
]

logger = logging.getLogger(__name__)

AMAZON_FIELDS: dict[str, str] = {
    "user_id": "reviewerID",
    "item_id": "asin",
    "rating": "overall",
    "timestamp": "unixReviewTime",
}
"""Our column name to the Amazon 2014 / 2018 review field."""

YELP_FIELDS: dict[str, str] = {
    "user_id": "user_id",
    "item_id": "business_id",
    "rating": "stars",
    "text": "text",
    "timestamp": "date",
}
DOUBAN_FIELDS: dict[str, str] = {
    "user_id": "user_md5",
    "item_id": "douban_id",
    "rating": "rating",
    "text": "content",
    "timestamp": "comment_time",
}
_BEIJING_OFFSET_S = 8 * 3600.0


def _find_file(path: str | Path, patterns: tuple[str, ...], what: str) -> Path:
    """``path`` itself if it is a file, else the one file in the folder matching ``patterns``."""
    p = Path(path).expanduser()
    if p.is_file() or not p.exists():
        return check_file(p)
    found = sorted({f for pat in patterns for f in p.glob(pat) if f.is_file()})
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(
            f"{what}: no file matching {list(patterns)} in {str(p)!r}; pass the file's path"
        )
    raise DataError(
        f"{what}: {len(found)} candidate files in {str(p)!r} ({[f.name for f in found]}); "
        "pass the path of the one to load"
    )


def _join_summary(summary: pd.Series, body: pd.Series) -> np.ndarray:
    """``summary. body``; just one of them when the other is empty.

    A summary that already ends a sentence ("Great!") is joined with a space only.
    """
    summ = summary.fillna("").astype(str).str.strip()
    text = body.fillna("").astype(str).str.strip()
    sep = np.where(summ.str[-1:].isin([".", "!", "?", "…"]), " ", ". ")
    joined = summ.to_numpy(object) + sep.astype(object) + text.to_numpy(object)
    return np.where(summ.eq("").to_numpy(), text, np.where(text.eq("").to_numpy(), summ, joined))


def _reviews_dataset(
    texts: pd.DataFrame,
    *,
    name: str,
    report: DataReport,
    source: str,
    with_items: bool,
) -> Dataset:
    inter = interactions_from_texts(texts, source=source)
    texts = dedupe_texts(texts, report=report)
    items = None
    if with_items:
        items = pd.DataFrame({"item_id": pd.unique(inter["item_id"])})
    return build_dataset(inter, texts, items, None, name=name, report=report)


def load_amazon_reviews(
    path: str | Path,
    *,
    name: str | None = None,
    on_bad_lines: BadLinePolicy = "error",
) -> Dataset:
    """Load an Amazon review file in the 2014 or 2018 JSON-lines format (optionally gzip).

    Parameters
    ----------
    path : str or Path
        The file (e.g. ``reviews_Musical_Instruments_5.json.gz``, ``Appliances_5.json.gz``)
        or a folder holding exactly one ``*.json[l][.gz]`` file.
    name : str, optional
        The dataset name; default the file name without suffixes.
    on_bad_lines : {'error', 'skip'}
        Raise on an unparseable line, or skip it and count it in the report.

    Returns
    -------
    Dataset
        Interactions ``reviewerID, asin, overall, unixReviewTime`` (duplicate pairs merged,
        the latest kept, and counted); texts ``summary + ". " + reviewText`` (only
        ``reviewText`` when the summary is empty), exact duplicates dropped and counted;
        items: the item ids only (the review files carry no metadata).
    """
    file = _find_file(path, ("*.json.gz", "*.json", "*.jsonl", "*.jsonl.gz"), "Amazon reviews")
    report = DataReport()
    _, gz = detect_format(file, "jsonl")
    records = read_json_records(
        file, gz=gz, encoding=None, on_bad_lines=on_bad_lines, report=report
    )
    keys: dict[str, None] = {}
    for rec in records[:1000]:
        keys.update(dict.fromkeys(rec))
    missing = [f for f in ("reviewerID", "asin") if f not in keys]
    if missing:
        raise DataError(
            f"{str(file)!r} has no field(s) {missing}; its fields are {list(keys)}. This is not "
            "the Amazon 2014/2018 review format; for other layouts use load_files(texts=..., "
            "mapping=...)"
        )
    get = {c: [rec.get(c) for rec in records] for c in (*AMAZON_FIELDS.values(), "summary")}
    df = pd.DataFrame(
        {ours: pd.Series(get[theirs], dtype=object) for ours, theirs in AMAZON_FIELDS.items()}
    )
    body = pd.Series([rec.get("reviewText") for rec in records], dtype=object)
    df = coerce_columns(df, file, AMAZON_FIELDS)
    df["text"] = _join_summary(pd.Series(get["summary"], dtype=object), body)
    return _reviews_dataset(
        df,
        name=name or file.name.split(".")[0],
        report=report,
        source=str(file),
        with_items=True,
    )


def load_yelp_reviews(
    path: str | Path,
    *,
    name: str = "yelp",
    on_bad_lines: BadLinePolicy = "error",
) -> Dataset:
    """Load Yelp reviews: the ``yelp.csv[.gz]`` sample or the official review JSON lines.

    Parameters
    ----------
    path : str or Path
        The file, or a folder holding exactly one ``yelp*.csv[.gz]`` or
        ``*review*.json[.gz]`` file.
    name : str
        The dataset name.
    on_bad_lines : {'error', 'skip'}
        Raise on a malformed row, or skip it and count it in the report.

    Returns
    -------
    Dataset
        Interactions (``user_id``, ``business_id`` as item, ``stars``, ``date`` as unix
        seconds at midnight UTC); texts: the review text. Text fields may span lines; they
        are read with a real CSV parser.
    """
    file = _find_file(
        path,
        ("yelp*.csv", "yelp*.csv.gz", "*review*.json", "*review*.json.gz", "*review*.jsonl"),
        "Yelp reviews",
    )
    report = DataReport()
    texts = read_table(
        file, kind="texts", mapping=YELP_FIELDS, on_bad_lines=on_bad_lines, report=report
    )
    return _reviews_dataset(texts, name=name, report=report, source=str(file), with_items=False)


def load_douban_comments(
    path: str | Path,
    *,
    name: str = "douban",
    on_bad_lines: BadLinePolicy = "error",
) -> Dataset:
    """Load Douban movie short comments (``comments.csv`` of moviedata-small / -10M).

    Parameters
    ----------
    path : str or Path
        ``comments.csv`` (UTF-8 with BOM) or the folder holding it.
    name : str
        The dataset name.
    on_bad_lines : {'error', 'skip'}
        Raise on a malformed row, or skip it and count it in the report.

    Returns
    -------
    Dataset
        Interactions and texts from the comments: ``user_md5`` as user, ``douban_id`` as
        item, ``rating`` (NaN where empty), ``comment_time`` (Beijing time, UTC+8) as unix
        seconds, ``content`` as text. ``movies.csv`` of the small sample covers other
        movies than the commented ones, so it is not joined.
    """
    p = Path(path).expanduser()
    file = check_file(p / "comments.csv" if p.is_dir() else p)
    report = DataReport()
    texts = read_table(
        file, kind="texts", mapping=DOUBAN_FIELDS, on_bad_lines=on_bad_lines, report=report
    )
    # comment_time is Beijing local time (UTC+8, no daylight saving since 1991)
    texts["timestamp"] = texts["timestamp"] - _BEIJING_OFFSET_S
    return _reviews_dataset(texts, name=name, report=report, source=str(file), with_items=False)

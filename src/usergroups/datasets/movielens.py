"""Loaders for the MovieLens releases of GroupLens: 100K, 1M and latest / latest-small.

Each takes the directory that holds the unpacked files (as in the official zip) and
returns a :class:`~usergroups.data.Dataset`. MovieLens 100K and 1M are latin-1 text and
are read as such, so titles such as "Misérables" come out right.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from usergroups.data.model import DataReport, Dataset, build_dataset
from usergroups.datasets._io import check_file, decode_text, read_bytes, read_csv
from usergroups.datasets.readers import read_table
from usergroups.errors import DataError

__all__ = ["load_movielens_1m", "load_movielens_100k", "load_movielens_latest"]

logger = logging.getLogger(__name__)

ML100K_GENRES: tuple[str, ...] = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
"""The 19 genre flags of ``u.item`` in order, as listed in ``u.genre``."""

ML1M_OCCUPATIONS: dict[int, str] = {
    0: "other",
    1: "academic/educator",
    2: "artist",
    3: "clerical/admin",
    4: "college/grad student",
    5: "customer service",
    6: "doctor/health care",
    7: "executive/managerial",
    8: "farmer",
    9: "homemaker",
    10: "K-12 student",
    11: "lawyer",
    12: "programmer",
    13: "retired",
    14: "sales/marketing",
    15: "scientist",
    16: "self-employed",
    17: "technician/engineer",
    18: "tradesman/craftsman",
    19: "unemployed",
    20: "writer",
}
"""Occupation codes of ``users.dat`` (ML-1M README)."""

ML1M_AGE_GROUPS: dict[int, str] = {
    1: "Under 18",
    18: "18-24",
    25: "25-34",
    35: "35-44",
    45: "45-49",
    50: "50-55",
    56: "56+",
}
"""Age codes of ``users.dat`` (ML-1M README); each is the lower bound of its range."""


def _dir(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise DataError(
            f"{what} expects the directory that holds its files; {str(p)!r} is "
            f"{'a file' if p.exists() else 'missing'}. Pass the unpacked folder"
        )
    return p


def _empty_texts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.Series([], dtype=object),
            "text": pd.Series([], dtype=object),
            "item_id": pd.Series([], dtype=object),
            "rating": pd.Series([], dtype=np.float64),
            "timestamp": pd.Series([], dtype=np.float64),
        }
    )


def _read_pipe(path: Path, names: list[str], *, encoding: str, sep: str) -> pd.DataFrame:
    return read_csv(
        check_file(path),
        gz=False,
        sep=sep,
        encoding=encoding,
        header=None,
        names=names,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        quoting=csv.QUOTE_NONE,
    )


def _numeric(df: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    for col in columns:
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() & df[col].notna()
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{str(path)!r}: column {col} must be numeric; got {df[col].iloc[first]!r} on "
                f"line {first + 1}. The file looks damaged; download it again"
            )
        df[col] = num.astype(np.float64)
    return df


def _ml100k_genres(folder: Path) -> list[str]:
    path = folder / "u.genre"
    if not path.is_file():
        logger.info("%s not found; using the standard 19 MovieLens 100K genres", path)
        return list(ML100K_GENRES)
    table = _read_pipe(path, ["genre", "index"], encoding="latin-1", sep="|")
    table = table.dropna(subset=["genre"])
    table["index"] = pd.to_numeric(table["index"], errors="coerce")
    return table.sort_values("index")["genre"].astype(str).tolist()


def _join_flags(flags: np.ndarray, genres: list[str]) -> list[str]:
    """``"Action|Comedy"`` per row of a 0/1 matrix; the "unknown" placeholder is left out."""
    names = np.asarray(genres, dtype=object)
    keep = names != "unknown"
    return ["|".join(names[row & keep]) for row in flags.astype(bool)]


def load_movielens_100k(path: str | Path, *, name: str = "ml-100k") -> Dataset:
    """Load MovieLens 100K from the folder holding ``u.data``, ``u.item``, ``u.user``, ``u.genre``.

    Parameters
    ----------
    path : str or Path
        The unpacked ``ml-100k`` folder.
    name : str
        The dataset name.

    Returns
    -------
    Dataset
        100,000 interactions (rating 1-5, unix seconds); items with ``title``,
        ``categories`` (genres joined with ``|``), ``release_date`` and ``imdb_url``;
        users with ``age``, ``gender``, ``occupation``, ``zip_code``; no texts.
    """
    folder = _dir(path, "load_movielens_100k")
    data_path = folder / "u.data"
    inter = _read_pipe(
        data_path, ["user_id", "item_id", "rating", "timestamp"], encoding="latin-1", sep="\t"
    )
    inter = _numeric(inter, data_path, ("rating", "timestamp"))

    genres = _ml100k_genres(folder)
    item_path = folder / "u.item"
    # u.item is ISO-8859-1 (e.g. item 543 "Misérables"), not UTF-8
    raw = _read_pipe(
        item_path,
        ["item_id", "title", "release_date", "video_release_date", "imdb_url", *genres],
        encoding="latin-1",
        sep="|",
    )
    flags = raw[genres].fillna("0").to_numpy() == "1"
    items = pd.DataFrame(
        {
            "item_id": raw["item_id"],
            "title": raw["title"].fillna(""),
            "categories": _join_flags(flags, genres),
            "release_date": raw["release_date"].fillna(""),
            "imdb_url": raw["imdb_url"].fillna(""),
        }
    )

    users = None
    user_path = folder / "u.user"
    if user_path.is_file():
        users = _read_pipe(
            user_path,
            ["user_id", "age", "gender", "occupation", "zip_code"],
            encoding="latin-1",
            sep="|",
        )
        users["age"] = pd.to_numeric(users["age"], errors="raise").astype(np.int64)
    else:
        logger.info("%s not found; the dataset has no user attributes", user_path)
    return build_dataset(inter, _empty_texts(), items, users, name=name, report=DataReport())


def _read_double_colon(path: Path, names: list[str]) -> pd.DataFrame:
    """Read an ML-1M ``.dat`` file: ``::``-separated, latin-1, no quoting."""
    p = check_file(path)
    text = decode_text(p, read_bytes(p, False), "latin-1")
    # the C parser takes one-character separators only; titles never contain a tab
    try:
        df = pd.read_csv(
            io.StringIO(text.replace("::", "\t")),
            sep="\t",
            header=None,
            names=names,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            quoting=csv.QUOTE_NONE,
            on_bad_lines="error",
        )
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{str(p)!r} could not be parsed as '::'-separated MovieLens 1M data: "
            f"{str(exc).strip()}. The file looks damaged; download the dataset again"
        ) from exc
    if len(df) == 0:
        raise DataError(f"{str(p)!r} has no rows; download the dataset again")
    return df


def load_movielens_1m(path: str | Path, *, name: str = "ml-1m") -> Dataset:
    """Load MovieLens 1M from the folder holding ``ratings.dat``, ``movies.dat``, ``users.dat``.

    Parameters
    ----------
    path : str or Path
        The unpacked ``ml-1m`` folder.
    name : str
        The dataset name.

    Returns
    -------
    Dataset
        Interactions from ``ratings.dat``; items with ``title`` and ``categories`` (the
        ``|``-separated genres); users with ``gender``, ``age`` (the age-group code, the
        lower bound of the range), ``age_group`` (e.g. ``"25-34"``), ``occupation`` (the
        name, e.g. ``"programmer"``) and ``zip_code``; no texts.
    """
    folder = _dir(path, "load_movielens_1m")
    rpath = folder / "ratings.dat"
    inter = _read_double_colon(rpath, ["user_id", "item_id", "rating", "timestamp"])
    inter = _numeric(inter, rpath, ("rating", "timestamp"))

    movies = _read_double_colon(folder / "movies.dat", ["item_id", "title", "categories"])
    items = pd.DataFrame(
        {
            "item_id": movies["item_id"],
            "title": movies["title"].fillna(""),
            "categories": movies["categories"].fillna(""),
        }
    )
    users = None
    upath = folder / "users.dat"
    if upath.is_file():
        users = _read_double_colon(upath, ["user_id", "gender", "age", "occupation", "zip_code"])
        users = _numeric(users, upath, ("age", "occupation"))
        age = users["age"].astype(np.int64)
        occ = users["occupation"].astype(np.int64)
        users["age"] = age
        users["age_group"] = age.map(ML1M_AGE_GROUPS).fillna("").astype(str)
        users["occupation"] = occ.map(ML1M_OCCUPATIONS).fillna("other").astype(str)
        users = users[["user_id", "gender", "age", "age_group", "occupation", "zip_code"]]
    else:
        logger.info("%s not found; the dataset has no user attributes", upath)
    return build_dataset(inter, _empty_texts(), items, users, name=name, report=DataReport())


def load_movielens_latest(path: str | Path, *, name: str = "ml-latest-small") -> Dataset:
    """Load MovieLens latest or latest-small from ``ratings.csv``, ``movies.csv``, ``tags.csv``.

    Parameters
    ----------
    path : str or Path
        The unpacked ``ml-latest`` or ``ml-latest-small`` folder.
    name : str
        The dataset name.

    Returns
    -------
    Dataset
        Interactions from ``ratings.csv`` (half-star ratings); items with ``title`` and
        ``categories`` (genres; ``"(no genres listed)"`` becomes empty); texts: one row per
        tag in ``tags.csv`` with its ``item_id`` and ``timestamp`` (no rating). Without
        ``tags.csv`` the texts table is empty.
    """
    folder = _dir(path, "load_movielens_latest")
    report = DataReport()
    ml_map = {"user_id": "userId", "item_id": "movieId", "title": "title", "text": "tag"}
    inter = read_table(folder / "ratings.csv", kind="interactions", mapping=ml_map, report=report)
    items = read_table(
        folder / "movies.csv", kind="items", mapping={**ml_map, "categories": "genres"}
    )
    items["categories"] = items["categories"].fillna("").replace("(no genres listed)", "")
    tags_path = folder / "tags.csv"
    if tags_path.is_file():
        texts = read_table(tags_path, kind="texts", mapping=ml_map, report=report)
    else:
        logger.info("%s not found; the dataset has no texts", tags_path)
        texts = _empty_texts()
    return build_dataset(inter, texts, items, None, name=name, report=report)

"""Generic readers: CSV / TSV / Parquet / JSON-lines files (optionally gzip) with a column map.

A *mapping* maps **our** column names to **their** column names, exactly like the CLI's
``--map user_id=reviewerID,item_id=asin,text=reviewText``. :func:`read_table` reads one
file into a table with our column names and types; :func:`load_files` reads up to four
files and builds a :class:`~usergroups.data.Dataset` through
:func:`~usergroups.data.build_dataset`, so its duplicate and orphan policies apply and
every dropped or merged row is counted in ``dataset.report``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
import pandas as pd

from usergroups.data.model import DataReport, Dataset, build_dataset, id_strings
from usergroups.datasets._io import (
    BadLinePolicy,
    FileFormat,
    check_file,
    check_policy,
    detect_format,
    parquet_columns,
    parquet_frame,
    read_csv,
    read_json_records,
)
from usergroups.errors import ConfigError, DataError, DataWarning

__all__ = [
    "DUPLICATE_TEXTS",
    "LOOKALIKE_COLUMNS",
    "MAPPING_TARGETS",
    "TABLE_COLUMNS",
    "ReadOptions",
    "TableKind",
    "dedupe_texts",
    "duplicate_texts",
    "interactions_from_texts",
    "load_files",
    "parse_mapping",
    "read_table",
    "read_tables",
    "unmapped_lookalikes",
]

logger = logging.getLogger(__name__)

TableKind = Literal["interactions", "texts", "items", "users"]
DuplicatePolicy = Literal["latest", "error"]
OrphanPolicy = Literal["keep", "drop", "error"]

TABLE_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "interactions": (("user_id", "item_id"), ("rating", "timestamp")),
    "texts": (("user_id", "text"), ("item_id", "rating", "timestamp")),
    "items": (("item_id",), ("title", "categories", "description")),
    "users": (("user_id",), ()),
}
"""Per table kind: (required columns, optional columns), in our names."""


class ReadOptions(TypedDict, total=False):
    """The keyword options of :func:`load_files` besides the four paths, for readers that
    take them as they are (the Spark engine's ``read_files``)."""

    mapping: Mapping[str, str] | str | None
    name: str | None
    sep: str | None
    encoding: str | None
    on_bad_lines: BadLinePolicy
    duplicates: DuplicatePolicy
    orphan_texts: OrphanPolicy
    drop_duplicate_texts: bool


MAPPING_TARGETS: tuple[str, ...] = (
    "user_id",
    "item_id",
    "text",
    "rating",
    "timestamp",
    "title",
    "categories",
    "description",
)
"""Our column names a mapping may target."""

_ID_COLUMNS = ("user_id", "item_id")
_EPOCH = pd.Timestamp(0, tz="UTC")

LOOKALIKE_COLUMNS: dict[str, tuple[str, ...]] = {
    "rating": ("overall", "stars", "star", "rating", "ratings", "score", "reviewscore"),
    "timestamp": (
        "unixreviewtime",
        "timestamp",
        "unixtime",
        "time",
        "datetime",
        "date",
        "reviewtime",
        "createdat",
        "commenttime",
    ),
}
"""Per optional column: names (lower case, letters and digits only) of a file's columns that
look like it, best first. Unmapped, they are reported (:func:`unmapped_lookalikes`)."""


def parse_mapping(spec: str) -> dict[str, str]:
    """Parse ``"ours=theirs,ours=theirs"`` into a ``{ours: theirs}`` dict.

    Parameters
    ----------
    spec : str
        Comma-separated ``OURS=THEIRS`` pairs; ``OURS`` is one of :data:`MAPPING_TARGETS`.
        Whitespace around names is ignored; an empty string gives an empty mapping.

    Returns
    -------
    dict of str to str

    Raises
    ------
    DataError
        On an entry without ``=``, an empty name, an unknown target or a repeated target.

    Examples
    --------
    >>> parse_mapping("user_id=reviewerID, item_id=asin")
    {'user_id': 'reviewerID', 'item_id': 'asin'}
    """
    out: dict[str, str] = {}
    for part in spec.split(","):
        entry = part.strip()
        if not entry:
            continue
        ours, eq, theirs = (s.strip() for s in entry.partition("="))
        if not eq or not ours or not theirs:
            raise DataError(
                f"bad column mapping entry {entry!r} in {spec!r}: expected OURS=THEIRS pairs "
                "separated by commas, e.g. 'user_id=reviewerID,item_id=asin,text=reviewText'"
            )
        if ours in out:
            raise DataError(
                f"column mapping {spec!r} maps {ours!r} twice ({out[ours]!r} and {theirs!r}); "
                "keep one"
            )
        out[ours] = theirs
    return validate_mapping(out)


def validate_mapping(mapping: Mapping[str, str] | None) -> dict[str, str]:
    """Check that every key is one of :data:`MAPPING_TARGETS` and every value a non-empty str."""
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise DataError(
            f"mapping must be a dict of our column name to theirs; got {type(mapping).__name__}"
        )
    unknown = [k for k in mapping if k not in MAPPING_TARGETS]
    if unknown:
        raise DataError(
            f"column mapping targets {unknown} are not known; map to one of "
            f"{', '.join(MAPPING_TARGETS)} (OURS=THEIRS, e.g. user_id=reviewerID)"
        )
    bad = [k for k, v in mapping.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise DataError(f"column mapping gives no source column for {bad}; e.g. user_id=userId")
    out = {k: v.strip() for k, v in mapping.items()}
    targets: dict[str, list[str]] = {}
    for ours, theirs in out.items():
        targets.setdefault(theirs, []).append(ours)
    shared = next(((c, t) for c, t in targets.items() if len(t) > 1), None)
    if shared is not None:  # e.g. user_id=X,item_id=X: every user would be their own item
        column, both = shared
        raise ConfigError(
            f"column mapping maps {' and '.join(both)} to the same column {column!r}; each of "
            "our columns needs its own source column (e.g. user_id=reviewerID,item_id=asin)"
        )
    return out


def _resolve_columns(
    path: Path, kind: str, mapping: dict[str, str], columns: list[str], *, strict: bool = True
) -> dict[str, str]:
    """``{ours: theirs}`` for the columns of ``kind`` that this file provides.

    A mapped column the file lacks is an error, except an optional one when not ``strict``
    (one mapping serving several files: :func:`load_files` checks it matched somewhere).
    """
    required, optional = TABLE_COLUMNS[kind]
    present = set(columns)
    selected: dict[str, str] = {}
    for ours in (*required, *optional):
        theirs = mapping.get(ours)
        if theirs is not None and theirs in present:
            selected[ours] = theirs
        elif ours in present:
            if theirs is not None:
                logger.info(
                    "%s: no column %r (mapped to %s); using its %r column", path, theirs, ours, ours
                )
            selected[ours] = ours
        elif theirs is not None and not strict and ours not in required:
            continue
        elif theirs is not None:
            raise DataError(
                f"{str(path)!r} has no column {theirs!r} (mapped to {ours}); its columns are "
                f"{columns}. Fix the mapping, e.g. --map {ours}={_guess(columns, ours)}"
            )
        elif ours in required:
            raise DataError(
                f"{str(path)!r} has no {ours!r} column for the {kind} table; its columns are "
                f"{columns}. Pass a column mapping, e.g. mapping={{{ours!r}: "
                f"{_guess(columns, ours)!r}}} (--map {ours}={_guess(columns, ours)})"
            )
    return selected


def _guess(columns: list[str], ours: str) -> str:
    """A plausible source column for ``ours`` to put in an error message."""
    hints = {
        "user_id": ("user", "reviewer", "customer", "member"),
        "item_id": ("item", "asin", "product", "movie", "business", "book"),
        "text": ("text", "review", "content", "comment", "body"),
        "rating": ("rating", "overall", "stars", "score"),
        "timestamp": ("time", "date"),
        "title": ("title", "name"),
        "categories": ("categor", "genre"),
        "description": ("descr",),
    }[ours]
    for hint in hints:
        for col in columns:
            if hint in col.lower():
                return col
    return "<column>"


def unmapped_lookalikes(
    kind: str, selected: Mapping[str, str], columns: list[str]
) -> dict[str, str]:
    """``{ours: theirs}`` for the rating / timestamp a file seems to have but nobody mapped.

    For a table of ``kind`` (only interactions and texts take a rating and a timestamp):
    each of those not in ``selected`` whose file has a column named like it (see
    :data:`LOOKALIKE_COLUMNS`, e.g. ``overall``, ``stars``, ``unixReviewTime``, ``date``)
    and not already used for another column.

    Examples
    --------
    >>> unmapped_lookalikes("texts", {"user_id": "reviewerID", "item_id": "asin",
    ...                     "text": "reviewText"},
    ...                     ["reviewerID", "asin", "reviewText", "overall", "unixReviewTime"])
    {'rating': 'overall', 'timestamp': 'unixReviewTime'}
    """
    if kind not in ("interactions", "texts"):
        return {}
    used = set(selected.values())
    free = {"".join(ch for ch in c.lower() if ch.isalnum()): c for c in columns if c not in used}
    found: dict[str, str] = {}
    for ours, names in LOOKALIKE_COLUMNS.items():
        if ours in selected:
            continue
        theirs = next((free[n] for n in names if n in free), None)
        if theirs is not None:
            found[ours] = theirs
    return found


def _report_unmapped(
    path: Path,
    kind: str,
    selected: Mapping[str, str],
    columns: list[str],
    n_rows: int,
    report: DataReport,
) -> None:
    """Warn (and note in ``report``) when a rating or time column is in the file but unmapped.

    Left unmapped, the ratings are lost and, without a timestamp, the "last" interaction
    of the warm protocol and the "first" review of the cold one are taken in file order:
    a wrong answer unless someone says so (issue 13).
    """
    found = unmapped_lookalikes(kind, selected, columns)
    if not found:
        return
    names = " and ".join(found)
    cols = ", ".join(repr(c) for c in found.values())
    pairs = ",".join(f"{ours}={theirs}" for ours, theirs in found.items())
    look = f"column {cols} looks" if len(found) == 1 else f"columns {cols} look"
    fallback = (
        "; without a timestamp, first and last are taken in file order"
        if "timestamp" in found
        else ""
    )
    report.note(
        path.name,
        n_rows,
        f"loaded without {names}: {look} like {names} but not mapped{fallback}. "
        f"Map {'it' if len(found) == 1 else 'them'}: --map {pairs} (with your other entries)",
    )


def read_table(
    path: str | Path,
    *,
    kind: TableKind,
    mapping: Mapping[str, str] | None = None,
    sep: str | None = None,
    encoding: str | None = None,
    format: FileFormat | None = None,
    on_bad_lines: BadLinePolicy = "error",
    report: DataReport | None = None,
) -> pd.DataFrame:
    """Read one CSV / TSV / Parquet / JSON-lines file (optionally gzip) as a table of ``kind``.

    The format comes from the suffix (``.csv``, ``.tsv``, ``.parquet``, ``.jsonl`` /
    ``.json`` / ``.ndjson``, each optionally followed by ``.gz``) unless ``format`` is given.
    Text is read as UTF-8 (a byte-order mark is dropped) unless ``encoding`` is given.

    Parameters
    ----------
    path : str or Path
    kind : {'interactions', 'texts', 'items', 'users'}
        Which table the file holds; decides the required and optional columns
        (see :data:`TABLE_COLUMNS`).
    mapping : dict of str to str, optional
        Our column name to the file's column name, e.g. ``{"user_id": "reviewerID"}``.
        Targets that do not belong to ``kind`` are ignored, so one mapping can serve
        several files; a mapped column the file lacks is an error unless the file has a
        column with our name. Columns already named like ours need no entry.
    sep : str, optional
        Field separator for CSV/TSV; default ``","`` for CSV, tab for TSV.
    encoding : str, optional
        Text encoding, e.g. ``"latin-1"``; default UTF-8 with or without BOM.
    format : {'csv', 'tsv', 'parquet', 'jsonl'}, optional
        Overrides the format guessed from the file name.
    on_bad_lines : {'error', 'skip'}
        What to do with an unparseable JSON line or a CSV row with the wrong number of
        fields: raise, or skip it and count it in ``report``.
    report : DataReport, optional
        Receives the counts of skipped lines.

    Returns
    -------
    DataFrame
        Columns in our names: the required and present optional columns of ``kind``
        (``users`` tables keep every other column as an attribute). Ids are strings,
        ``rating`` and ``timestamp`` float64 (timestamps in unix seconds; date strings
        are parsed, naive ones as UTC), texts strings, list-valued ``categories`` joined
        with ``|``.

    Raises
    ------
    DataError
        If the file is missing, empty, undecodable, malformed, lacks a required or mapped
        column, or holds a non-numeric rating.

    Examples
    --------
    >>> df = read_table("reviews.jsonl.gz", kind="texts",
    ...                 mapping={"user_id": "reviewerID", "item_id": "asin",
    ...                          "text": "reviewText"})  # doctest: +SKIP
    """
    if kind not in TABLE_COLUMNS:
        raise DataError(f"kind={kind!r} is not one of {', '.join(map(repr, TABLE_COLUMNS))}")
    check_policy(on_bad_lines)
    df, _, _ = _read(
        path,
        kind=kind,
        maps=validate_mapping(mapping),
        sep=sep,
        encoding=encoding,
        format=format,
        on_bad_lines=on_bad_lines,
        report=report if report is not None else DataReport(),
        strict=True,
    )
    return df


def _check_header_names(
    path: Path, gz: bool, sep: str, encoding: str | None, selected: dict[str, str]
) -> None:
    """Refuse a header naming a column we read twice; warn about other repeated names.

    pandas renames the second ``user_id`` to ``user_id.1`` and reads the first without a
    word, so which of the two was meant is a guess (issue 22).
    """
    first = read_csv(path, gz=gz, sep=sep, encoding=encoding, header=None, nrows=1, dtype=str)
    names = ["" if pd.isna(v) else str(v) for v in first.iloc[0].tolist()] if len(first) else []
    repeated = sorted({n for n in names if names.count(n) > 1})
    if not repeated:
        return
    used = [n for n in repeated if n in selected.values()]
    if used:
        raise DataError(
            f"{str(path)!r} has {names.count(used[0])} columns named {used[0]!r} in its "
            "header, so which one to read is a guess; rename or remove the extra column"
        )
    warnings.warn(
        f"{str(path)!r} repeats the column name(s) {repeated} in its header; they are not "
        "read, but check the file: a repeated name often means shifted columns",
        DataWarning,
        stacklevel=2,
    )


def _read(
    path: str | Path,
    *,
    kind: str,
    maps: dict[str, str],
    sep: str | None,
    encoding: str | None,
    format: FileFormat | None,
    on_bad_lines: BadLinePolicy,
    report: DataReport,
    strict: bool,
) -> tuple[pd.DataFrame, dict[str, str], list[str]]:
    """Read and convert one file; also return the columns used and the file's columns."""
    p = check_file(path)
    fmt, gz = detect_format(p, format)

    raw: pd.DataFrame | dict[str, list[Any]]
    if fmt in ("csv", "tsv"):
        delim = sep if sep is not None else ("," if fmt == "csv" else "\t")
        header = read_csv(p, gz=gz, sep=delim, encoding=encoding, nrows=0)
        columns = [str(c) for c in header.columns]
        selected = _resolve_columns(p, kind, maps, columns, strict=strict)
        _check_header_names(p, gz, delim, encoding, selected)
        # no usecols: with it pandas accepts rows with too many fields without a word
        raw = read_csv(
            p,
            gz=gz,
            sep=delim,
            encoding=encoding,
            on_bad_lines=on_bad_lines,
            report=report,
            # read everything we convert as text: ids keep leading zeros, and a bad rating
            # gets our message instead of a silent object column
            dtype=dict.fromkeys(selected.values(), str),
            # only an empty field is missing; a review that says "NA" or "null" is text
            keep_default_na=False,
            na_values=[""],
        )
    elif fmt == "parquet":
        columns = parquet_columns(p, gz)
        selected = _resolve_columns(p, kind, maps, columns, strict=strict)
        raw = parquet_frame(p, gz, None if kind == "users" else sorted(set(selected.values())))
    else:
        records = read_json_records(
            p, gz=gz, encoding=encoding, on_bad_lines=on_bad_lines, report=report
        )
        seen: dict[str, None] = {}
        for rec in records:
            seen.update(dict.fromkeys(rec))
        columns = list(seen)
        selected = _resolve_columns(p, kind, maps, columns, strict=strict)
        wanted = columns if kind == "users" else sorted(set(selected.values()))
        raw = {c: [rec.get(c) for rec in records] for c in wanted}

    df = pd.DataFrame({ours: _column(raw, theirs) for ours, theirs in selected.items()})
    if kind == "users":
        for col in _columns_of(raw):
            if col in selected.values():
                continue
            if col in df.columns:
                logger.info("%s: column %r left out; user_id comes from another column", p, col)
                continue
            df[col] = _column(raw, col)
    if len(df) == 0:
        raise DataError(f"{str(p)!r} has a header but no rows; pass a file with data rows")
    _report_unmapped(p, kind, selected, columns, len(df), report)
    return coerce_columns(df, p, selected), selected, columns


def _columns_of(raw: pd.DataFrame | dict[str, list[Any]]) -> list[str]:
    return [str(c) for c in (raw.columns if isinstance(raw, pd.DataFrame) else raw)]


def _column(raw: pd.DataFrame | dict[str, list[Any]], name: str) -> pd.Series:
    if isinstance(raw, pd.DataFrame):
        return raw[name].reset_index(drop=True)
    return pd.Series(raw[name], dtype=object)


def coerce_columns(df: pd.DataFrame, path: Path, selected: dict[str, str]) -> pd.DataFrame:
    """Give our columns their types; name the file and column when a value does not fit."""
    for ours, theirs in selected.items():
        s = df[ours]
        label = ours if ours == theirs else f"{theirs!r} (mapped to {ours})"
        if ours in _ID_COLUMNS:
            df[ours] = _to_ids(s, f"{path.name}: {label}")
        elif ours == "rating":
            df[ours] = _to_number(s, path, label)
        elif ours == "timestamp":
            df[ours] = _to_seconds(s, path, label)
        elif ours == "categories":
            df[ours] = _to_str(s, "|")
        elif ours in ("text", "title", "description"):
            df[ours] = _to_str(s, " ")
    return df


def _to_ids(s: pd.Series, what: str) -> pd.Series:
    """Ids as Python strings in an object column, None where missing.

    By the data model's rule (:func:`usergroups.data.id_strings`): ``12``, ``12.0`` (an
    integer column with a missing value) and ``Int64`` 12 all become ``"12"``, strings stay
    as written. Object dtype with None (not pandas' ``str`` dtype with NaN): the data model
    turns a missing optional ``texts.item_id`` into None only for object columns.
    """
    return id_strings(s, what=what)


def _to_str(s: pd.Series, joiner: str) -> pd.Series:
    if pd.api.types.is_string_dtype(s) and not pd.api.types.is_object_dtype(s):
        return s

    def one(v: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, list | tuple):
            flat: list[str] = []
            for x in v:
                flat.extend(map(str, x) if isinstance(x, list | tuple) else [str(x)])
            return joiner.join(dict.fromkeys(flat))
        if isinstance(v, float) and np.isnan(v):
            return None
        return str(v)

    return s.map(one).astype("str")


def _blank(s: pd.Series) -> pd.Series:
    """True where a value is missing or an empty / whitespace-only string."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
        return s.isna()
    return s.isna() | s.astype("str").str.strip().eq("")


def _to_number(s: pd.Series, path: Path, label: str) -> pd.Series:
    if pd.api.types.infer_dtype(s, skipna=True) == "boolean" or not (
        pd.api.types.is_numeric_dtype(s) or pd.api.types.is_object_dtype(s) or _is_str(s)
    ):
        raise DataError(
            f"{str(path)!r}: column {label} must be numeric; got dtype {s.dtype}. "
            "Map another column or convert the values"
        )
    if pd.api.types.is_numeric_dtype(s):
        return s.astype(np.float64)
    blank = _blank(s)
    num = pd.to_numeric(s.where(~blank), errors="coerce")
    bad = num.isna() & ~blank
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{str(path)!r}: column {label} must be numeric; {int(bad.sum())} value(s) are "
            f"not (e.g. {s.iloc[first]!r} in data row {first + 1}). Fix the values, or map "
            "the right column (e.g. --map rating=stars)"
        )
    return num.astype(np.float64)


def _is_str(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s)


def _to_seconds(s: pd.Series, path: Path, label: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        ts = pd.to_datetime(s, utc=True)
        return (ts - _EPOCH).dt.total_seconds().astype(np.float64)
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype(np.float64)
    blank = _blank(s)
    vals = s.where(~blank)
    num = pd.to_numeric(vals, errors="coerce")
    if not (num.isna() & ~blank).any():
        return num.astype(np.float64)
    try:
        ts = pd.to_datetime(vals, format="ISO8601", utc=True)
    except (ValueError, TypeError):
        ts = pd.to_datetime(vals, format="mixed", utc=True, errors="coerce")
        bad = ts.isna() & ~blank
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{str(path)!r}: column {label} must hold unix seconds or dates; "
                f"{int(bad.sum())} value(s) are neither (e.g. {s.iloc[first]!r} in data row "
                f"{first + 1}). Fix the values or map another column as timestamp"
            ) from None
    return (ts - _EPOCH).dt.total_seconds().astype(np.float64)


def interactions_from_texts(texts: pd.DataFrame, *, source: str = "texts") -> pd.DataFrame:
    """Interactions implied by review rows: one per text row that names an item.

    Parameters
    ----------
    texts : DataFrame
        A texts table (our column names) with ``user_id`` and ``item_id``.
    source : str
        Name for log messages.

    Returns
    -------
    DataFrame
        Columns ``user_id, item_id, rating, timestamp`` (rating / timestamp NaN when the
        texts have none). Duplicate pairs are kept; :func:`build_dataset` merges them.
    """
    if "item_id" not in texts.columns:
        raise DataError(
            f"{source} has no item_id column, so no interactions can be derived from it; "
            "map the item column (e.g. --map item_id=asin) or pass an interactions file"
        )
    has_item = texts["item_id"].notna() & texts["item_id"].astype("str").str.strip().ne("")
    n_without = int((~has_item).sum())
    if n_without:
        logger.info("%s: %d text row(s) name no item and add no interaction", source, n_without)
    rows = texts[has_item]
    return pd.DataFrame(
        {
            "user_id": rows["user_id"].to_numpy(),
            "item_id": rows["item_id"].to_numpy(),
            "rating": rows["rating"].to_numpy(np.float64) if "rating" in rows else np.nan,
            "timestamp": rows["timestamp"].to_numpy(np.float64) if "timestamp" in rows else np.nan,
        }
    )


def dedupe_texts(texts: pd.DataFrame, *, report: DataReport, source: str = "texts") -> pd.DataFrame:
    """Drop exact duplicate texts (same ``user_id``, ``item_id`` and ``text``), keeping the first.

    The number dropped is recorded in ``report`` under ``source``.
    """
    dup = duplicate_texts(texts)
    report.add(source, int(dup.sum()), DUPLICATE_TEXTS)
    return texts[~dup].reset_index(drop=True)


DUPLICATE_TEXTS = "dropped: exact duplicate text (same user, item and text)"
"""The report's reason for the rows :func:`dedupe_texts` drops."""


def duplicate_texts(texts: pd.DataFrame) -> pd.Series:
    """Rows that repeat an earlier row's user, item and text (the first is kept).

    Examples
    --------
    >>> duplicate_texts(pd.DataFrame({"user_id": ["u", "u"], "text": ["hi", "hi"]})).tolist()
    [False, True]
    """
    subset = [c for c in ("user_id", "item_id", "text") if c in texts.columns]
    return texts.duplicated(subset, keep="first")


def load_files(
    interactions: str | Path | None = None,
    texts: str | Path | None = None,
    items: str | Path | None = None,
    users: str | Path | None = None,
    *,
    mapping: Mapping[str, str] | str | None = None,
    name: str | None = None,
    sep: str | None = None,
    encoding: str | None = None,
    on_bad_lines: BadLinePolicy = "error",
    duplicates: DuplicatePolicy = "latest",
    orphan_texts: OrphanPolicy = "keep",
    drop_duplicate_texts: bool = True,
) -> Dataset:
    """Read up to four files with one column mapping and build a :class:`Dataset`.

    When only ``texts`` is given (a review file), interactions are derived from the
    review rows (``user_id, item_id, rating, timestamp``): the common Amazon / Yelp case.

    Parameters
    ----------
    interactions, texts, items, users : str or Path, optional
        CSV / TSV / Parquet / JSON-lines files, optionally gzip; see :func:`read_table`.
        At least one of ``interactions`` and ``texts`` is needed.
    mapping : dict or str, optional
        Our column name to theirs, applied to every file (targets that do not belong to a
        file's table are ignored), or the CLI form ``"user_id=reviewerID,item_id=asin"``.
    name : str, optional
        The dataset name; default the first file's name without suffixes.
    sep, encoding, on_bad_lines
        As in :func:`read_table`, for every file.
    duplicates, orphan_texts
        Policies of :func:`~usergroups.data.build_dataset`.
    drop_duplicate_texts : bool
        Drop exact duplicate texts (same user, item and text) and count them in the report.

    Returns
    -------
    Dataset
        With ``dataset.report`` listing every skipped line and dropped or merged row.

    Examples
    --------
    >>> ds = load_files(texts="reviews.jsonl.gz",
    ...                 mapping="user_id=reviewerID,item_id=asin,text=reviewText,"
    ...                         "rating=overall,timestamp=unixReviewTime")  # doctest: +SKIP

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 56 lines.
    """

    def read(
        path: str | Path, kind: str, maps: dict[str, str], report: DataReport
    ) -> tuple[pd.DataFrame, Path, list[str]]:
        df, _, columns = _read(
            path,
            kind=kind,
            maps=maps,
            sep=sep,
            encoding=encoding,
            format=None,
            on_bad_lines=on_bad_lines,
            report=report,
            strict=False,
        )
        return df, Path(path), columns

    tables, report = read_tables(
        read, interactions, texts, items, users, mapping=mapping, on_bad_lines=on_bad_lines
    )
    tx, inter_df = tables.get("texts"), tables.get("interactions")
    items_df, users_df = tables.get("items"), tables.get("users")
    if inter_df is not None:
        inter = inter_df
    else:
        assert tx is not None and texts is not None
        inter = interactions_from_texts(tx, source=str(texts))
        logger.info("derived %d interaction(s) from the texts in %s", len(inter), texts)
    if tx is not None and drop_duplicate_texts:
        tx = dedupe_texts(tx, report=report)
    first = interactions if interactions is not None else texts
    return build_dataset(
        inter,
        tx,
        items_df,
        users_df,
        name=name or Path(str(first)).name.split(".")[0],
        duplicates=duplicates,
        orphan_texts=orphan_texts,
        report=report,
    )


def _check_mapping_used(maps: dict[str, str], seen: list[tuple[Path, str, list[str]]]) -> None:
    """Every mapping entry must match a column in at least one file it applies to."""
    for ours, theirs in maps.items():
        files = [(p, cols) for p, kind, cols in seen if ours in sum(TABLE_COLUMNS[kind], ())]
        if files and not any(theirs in cols or ours in cols for _, cols in files):
            listing = "; ".join(f"{str(p)!r} has {cols}" for p, cols in files)
            raise DataError(
                f"the mapping {ours}={theirs} matches no column of the files it applies to "
                f"({listing}). Fix the mapping, e.g. --map {ours}={_guess(files[0][1], ours)}"
            )
        if not files:
            logger.debug("mapping %s=%s applies to none of the files given", ours, theirs)


def read_tables(
    read: Callable[[str | Path, str, dict[str, str], DataReport], tuple[Any, Path, list[str]]],
    interactions: str | Path | None,
    texts: str | Path | None,
    items: str | Path | None,
    users: str | Path | None,
    *,
    mapping: Mapping[str, str] | str | None,
    on_bad_lines: BadLinePolicy,
) -> tuple[dict[str, Any], DataReport]:
    """The checks and reading of :func:`load_files`, for any reader (pandas or Spark).

    ``read(path, kind, maps, report)`` reads one file as a table of ``kind`` and returns
    it with the path to name in messages and the file's own columns. Files are read in the
    order texts, interactions, items, users; every mapping target must name a column of
    some file. Returns the tables by kind (only those given) and the report of what the
    reading dropped.
    """
    if interactions is None and texts is None:
        raise DataError(
            "load_files needs interactions= or texts= (or both); got neither. Pass the "
            "interaction log, or a review file to derive the interactions from"
        )
    check_policy(on_bad_lines)
    maps = parse_mapping(mapping) if isinstance(mapping, str) else validate_mapping(mapping)
    report = DataReport()
    seen: list[tuple[Path, str, list[str]]] = []
    tables: dict[str, Any] = {}
    for kind, path in (
        ("texts", texts),
        ("interactions", interactions),
        ("items", items),
        ("users", users),
    ):
        if path is not None:
            table, shown, columns = read(path, kind, maps, report)
            seen.append((shown, kind, columns))
            tables[kind] = table
    _check_mapping_used(maps, seen)
    return tables, report

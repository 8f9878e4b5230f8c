"""The data model: one validated, immutable dataset of interactions, texts, items and users.

Every table is a :class:`pandas.DataFrame` with fixed column names and dtypes:

``interactions``
    ``user_id`` (str), ``item_id`` (str), ``rating`` (float64, NaN when unknown),
    ``timestamp`` (float64 unix seconds, NaN when unknown). One row per (user, item).
``texts``
    ``user_id`` (str), ``text`` (str), ``item_id`` (str or None), ``rating`` (float64),
    ``timestamp`` (float64). One row per text a user wrote.
``items`` (optional)
    ``item_id`` (str), ``title`` (str), ``categories`` (str, ``|``-separated),
    ``description`` (str).
``users`` (optional)
    ``user_id`` (str) and any attribute columns (age, gender, occupation, ...).

Ids are strings, written by one rule in every table (:func:`id_strings`): a number is
written as the number (``12``, ``12.0`` and nullable ``Int64`` 12 all become ``"12"``), a
string is kept as written (``"012"`` and ``"12.0"`` stay as they are). So a review links to
its item whatever dtype pandas gave the id column of each table.

The constructor is strict: it raises :class:`~usergroups.errors.DataError` on anything
invalid. Policies that drop or merge rows (duplicates, orphan texts, empty ids) live in
:func:`build_dataset`, which records every dropped or merged row in a :class:`DataReport`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from usergroups._typing import IntVector
from usergroups.errors import DataError, UnknownIdError

__all__ = [
    "INTERACTION_COLUMNS",
    "ITEM_COLUMNS",
    "MERGED_DUPLICATES",
    "TEXT_COLUMNS",
    "DataReport",
    "Dataset",
    "IdVocab",
    "blank_values",
    "build_dataset",
    "check_duplicates_policy",
    "duplicates_error",
    "id_string",
    "id_strings",
    "latest_rows",
    "orphan_rows",
    "orphan_texts_dropped",
]

logger = logging.getLogger(__name__)

INTERACTION_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
TEXT_COLUMNS = ("user_id", "text", "item_id", "rating", "timestamp")
ITEM_COLUMNS = ("item_id", "title", "categories", "description")

DuplicatePolicy = Literal["latest", "error"]
OrphanPolicy = Literal["keep", "drop", "error"]

# floats hold every integer exactly only up to 2**53; larger ones may have lost digits
_EXACT_FLOAT_INT = 2.0**53


def id_string(value: object) -> str | None:
    """One external id as the data model writes it; None when it is missing.

    The rule (issue 13), per value so that every table agrees whatever its dtype:

    - missing (None, NaN, ``pd.NA``, ``NaT``) -> None;
    - a string -> itself, without surrounding whitespace (``"012"`` stays ``"012"``, and
      ``"12.0"`` stays ``"12.0"``: a string is the id as the user spelled it);
    - an integer (Python, NumPy or a nullable ``Int64`` value) -> its decimal digits;
    - a float with no fractional part -> the integer's digits (``12.0`` -> ``"12"``): pandas
      stores integer ids as float64 as soon as one value is missing, so ``12.0`` is the
      integer 12 and must meet the ``"12"`` of a table that had no missing value;
    - any other float -> its shortest repr (``1.5`` -> ``"1.5"``); anything else -> ``str``.

    Examples
    --------
    >>> [id_string(v) for v in (12, 12.0, "12.0", " 012 ", 1.5, None, float("nan"))]
    ['12', '12', '12.0', '012', '1.5', None, None]
    """
    if isinstance(value, str):
        return value.strip()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        f = float(value)
        if math.isnan(f):
            return None
        return str(int(f)) if f.is_integer() else repr(f)
    return str(value).strip()


def id_strings(values: pd.Series | Sequence[object], *, what: str = "ids") -> pd.Series:
    """External ids as Python strings in an object Series, None where missing.

    Applies :func:`id_string` to every value (vectorised for string, integer and float
    columns), so ``int64``, ``float64`` with NaN, nullable ``Int64``, ``str`` and object
    columns mixing ints and strings give the same id for the same value. Float ids beyond
    2**53 are logged: pandas may have rounded them when it read them as floats.

    Parameters
    ----------
    values : Series or sequence of shape (n,)
    what : str
        Name for the log message, e.g. ``"texts.item_id"``.

    Returns
    -------
    Series of shape (n,), object dtype, same index as ``values``

    Examples
    --------
    >>> id_strings(pd.Series([12, None, 13])).tolist()  # float64 with NaN
    ['12', None, '13']
    """
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    out = np.full(len(s), None, dtype=object)
    dtype = s.dtype
    if len(s) == 0:
        pass
    elif pd.api.types.is_bool_dtype(dtype):
        out[:] = [id_string(v) for v in s.to_numpy(dtype=object)]
    elif pd.api.types.is_integer_dtype(dtype):
        present = s.notna().to_numpy()
        out[present] = s[present].astype(str).to_numpy(dtype=object)
    elif pd.api.types.is_float_dtype(dtype):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        present = ~np.isnan(v)
        whole = present & (np.abs(v) < 2.0**63) & (np.floor(v) == v)
        out[whole] = v[whole].astype(np.int64).astype(str).astype(object)
        rest = present & ~whole
        out[rest] = [id_string(x) for x in v[rest]]
        big = int((present & (np.abs(v) >= _EXACT_FLOAT_INT)).sum())
        if big:
            logger.warning(
                "%s: %d id(s) are floats of 2**53 or more, which may have lost digits when "
                "pandas read them as floats; read the column as strings (dtype=str) or as "
                "nullable Int64",
                what,
                big,
            )
    elif pd.api.types.is_string_dtype(dtype) and (
        not pd.api.types.is_object_dtype(dtype)
        or pd.api.types.infer_dtype(s, skipna=True) == "string"
    ):
        present = s.notna().to_numpy()
        out[present] = s[present].astype(str).str.strip().to_numpy(dtype=object)
    else:
        out[:] = [id_string(v) for v in s.to_numpy(dtype=object)]
    return pd.Series(out, index=s.index, dtype=object)


def _id_key(value: object) -> str:
    """The vocabulary key of an id given to a lookup (strings as they are, numbers by rule)."""
    if type(value) is str:
        return value
    key = id_string(value)
    return "" if key is None else key


@dataclass(frozen=True)
class IdVocab:
    """An ordered vocabulary mapping external ids (strings) to dense indices ``0..n-1``.

    Examples
    --------
    >>> vocab = IdVocab.from_ids(["b", "a", "b"])
    >>> vocab.ids.tolist(), vocab.index(["a"]).tolist()
    (['a', 'b'], [0])
    """

    ids: np.ndarray
    _lookup: dict[str, int] = field(repr=False, compare=False)

    @classmethod
    def from_ids(cls, ids: Iterable[str]) -> IdVocab:
        """Build a sorted vocabulary of the distinct ``ids``."""
        unique = np.array(sorted(set(map(_id_key, ids))), dtype=object)
        return cls.from_ordered(unique)

    @classmethod
    def from_ordered(cls, ids: Sequence[str] | np.ndarray) -> IdVocab:
        """Build a vocabulary that keeps the given order; ids must be distinct."""
        arr = np.asarray(list(map(_id_key, ids)), dtype=object)
        lookup = {v: i for i, v in enumerate(arr.tolist())}
        if len(lookup) != len(arr):
            raise DataError("IdVocab.from_ordered got duplicate ids; pass distinct ids")
        arr.setflags(write=False)
        return cls(ids=arr, _lookup=lookup)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, id_: object) -> bool:
        return _id_key(id_) in self._lookup

    def index(self, ids: Iterable[str], *, what: str = "id") -> IntVector:
        """Dense indices of ``ids``; raises :class:`UnknownIdError` naming unknown ones."""
        values: Any = ids if isinstance(ids, pd.Series | pd.Index | np.ndarray) else list(ids)
        # ids spelled as the vocabulary's strings (the usual case) are found by a pandas hash
        # table in C: lookups run over whole interaction logs, 7M rows at 1M users (issue 25)
        found = self._positions().get_indexer(values).astype(np.int64, copy=False)
        missing = np.flatnonzero(found < 0)
        if not len(missing):
            return found
        rest = values if isinstance(values, list) else np.asarray(values, dtype=object)
        lookup = self._lookup
        try:
            # other spellings (numbers, padded strings) by the id rule
            found[missing] = [lookup[_id_key(rest[i])] for i in missing]
            return found
        except KeyError:
            unknown = [rest[i] for i in missing if _id_key(rest[i]) not in lookup]
            raise UnknownIdError(
                f"{len(unknown)} {what}(s) are not known to this model (e.g. {unknown[0]!r}); "
                f"known {what}s look like {self.ids[:3].tolist()}"
            ) from None

    def _positions(self) -> pd.Index:
        """``ids`` as a pandas Index (built once; its hash table on the first lookup)."""
        positions = self.__dict__.get("_index")
        if positions is None:
            positions = pd.Index(self.ids, dtype=object)
            object.__setattr__(self, "_index", positions)
        return positions

    def get(self, id_: str) -> int | None:
        """Index of ``id_`` or None."""
        return self._lookup.get(_id_key(id_))


@dataclass
class DataReport:
    """What a loader or :func:`build_dataset` dropped, merged or left out, and why.

    ``entries`` are rows dropped or merged, ``notes`` rows loaded without something the
    file had (e.g. a rating column nobody mapped); each is ``(source, count, reason)``.
    ``str(report)`` renders one line each and :meth:`to_records` (what ``metrics.json``
    stores under ``dropped``) holds both; :attr:`total` counts only dropped or merged rows.
    """

    entries: list[tuple[str, int, str]] = field(default_factory=list)
    notes: list[tuple[str, int, str]] = field(default_factory=list)

    def add(self, source: str, count: int, reason: str) -> None:
        """Record ``count`` rows of ``source`` dropped or merged for ``reason`` (and log it)."""
        if count:
            self.entries.append((source, int(count), reason))
            logger.warning("%s: %d row(s) %s", source, count, reason)

    def note(self, source: str, count: int, reason: str) -> None:
        """Record that ``count`` rows of ``source`` were loaded without something (and warn)."""
        self.notes.append((source, int(count), reason))
        logger.warning("%s: %d row(s) %s", source, count, reason)

    def extend(self, other: DataReport) -> None:
        self.entries.extend(other.entries)
        self.notes.extend(other.notes)

    @property
    def total(self) -> int:
        """Rows dropped or merged (notes are not counted: their rows were kept)."""
        return sum(c for _, c, _ in self.entries)

    def to_records(self) -> list[dict[str, object]]:
        return [{"source": s, "count": c, "reason": r} for s, c, r in self.entries + self.notes]

    def __str__(self) -> str:
        if not self.entries and not self.notes:
            return "nothing dropped or merged"
        return "\n".join(f"{s}: {c} row(s) {r}" for s, c, r in self.entries + self.notes)


def _require_columns(df: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{table} is missing column(s) {missing}; it has {list(df.columns)}. "
            "Rename the columns or pass a column mapping (e.g. --map user_id=reviewerID)"
        )


def _as_str_ids(s: pd.Series, table: str, column: str) -> pd.Series:
    out = id_strings(s, what=f"{table}.{column}")
    if out.isna().any():
        n = int(out.isna().sum())
        raise DataError(f"{table}.{column} has {n} empty value(s); every row needs a {column}")
    if (out == "").any():
        n = int((out == "").sum())
        raise DataError(f"{table}.{column} has {n} blank id(s); every row needs a {column}")
    return out


def _as_float(s: pd.Series, table: str, column: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        # datetimes become unix seconds
        ts = pd.to_datetime(s, utc=True)
        secs = (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        return secs.astype(np.float64)
    try:
        return pd.to_numeric(s, errors="raise").astype(np.float64)
    except (ValueError, TypeError) as exc:
        bad = s[pd.to_numeric(s, errors="coerce").isna() & s.notna()]
        example = bad.iloc[0] if len(bad) else "?"
        raise DataError(
            f"{table}.{column} must be numeric; {len(bad)} value(s) are not "
            f"(e.g. {example!r} in row {bad.index[0] if len(bad) else '?'}); "
            "fix the values or map another column"
        ) from exc


def _normalise_interactions(df: pd.DataFrame) -> pd.DataFrame:
    _require_columns(df, ("user_id", "item_id"), "interactions")
    out = pd.DataFrame(
        {
            "user_id": _as_str_ids(df["user_id"], "interactions", "user_id"),
            "item_id": _as_str_ids(df["item_id"], "interactions", "item_id"),
            "rating": _as_float(df["rating"], "interactions", "rating")
            if "rating" in df
            else np.nan,
            "timestamp": _as_float(df["timestamp"], "interactions", "timestamp")
            if "timestamp" in df
            else np.nan,
        }
    )
    return out.reset_index(drop=True)


def _normalise_texts(df: pd.DataFrame) -> pd.DataFrame:
    _require_columns(df, ("user_id", "text"), "texts")
    text = df["text"]
    if len(text) and not (pd.api.types.is_object_dtype(text) or pd.api.types.is_string_dtype(text)):
        raise DataError(
            f"texts.text must hold strings; got dtype {text.dtype}. Map the text column "
            "(e.g. --map text=reviewText)"
        )
    if "item_id" in df:
        # the same rule as interactions.item_id, or a review would not link to its item;
        # object dtype keeps None for "no item" (pandas 3 would turn it into NaN or 'nan')
        item = id_strings(df["item_id"], what="texts.item_id")
        item[item.eq("").to_numpy()] = None  # a blank item id names no item
    else:
        item = pd.Series([None] * len(df), index=df.index, dtype=object)
    out = pd.DataFrame(
        {
            "user_id": _as_str_ids(df["user_id"], "texts", "user_id"),
            "text": text.fillna("").astype(str).astype(object),
            "item_id": item,
            "rating": _as_float(df["rating"], "texts", "rating") if "rating" in df else np.nan,
            "timestamp": _as_float(df["timestamp"], "texts", "timestamp")
            if "timestamp" in df
            else np.nan,
        }
    )
    return out.reset_index(drop=True)


def _normalise_items(df: pd.DataFrame) -> pd.DataFrame:
    _require_columns(df, ("item_id",), "items")
    out = pd.DataFrame({"item_id": _as_str_ids(df["item_id"], "items", "item_id")})
    for col in ("title", "categories", "description"):
        out[col] = df[col].fillna("").astype(str).to_numpy() if col in df else ""
    extra = [c for c in df.columns if c not in out.columns]
    for col in extra:
        out[col] = df[col].to_numpy()
    if out["item_id"].duplicated().any():
        dup = out.loc[out["item_id"].duplicated(), "item_id"].iloc[0]
        raise DataError(f"items.item_id has duplicates (e.g. {dup!r}); keep one row per item")
    return out.reset_index(drop=True)


def _normalise_users(df: pd.DataFrame) -> pd.DataFrame:
    _require_columns(df, ("user_id",), "users")
    out = df.copy()
    out["user_id"] = _as_str_ids(df["user_id"], "users", "user_id")
    if out["user_id"].duplicated().any():
        dup = out.loc[out["user_id"].duplicated(), "user_id"].iloc[0]
        raise DataError(f"users.user_id has duplicates (e.g. {dup!r}); keep one row per user")
    return out.reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A validated, immutable dataset. Build it with :func:`build_dataset` or a loader.

    Parameters
    ----------
    interactions : DataFrame
        Columns ``user_id, item_id, rating, timestamp``; one row per (user, item).
    texts : DataFrame
        Columns ``user_id, text, item_id, rating, timestamp``.
    items, users : DataFrame or None
        Item metadata and user attributes.
    name : str
        A short name for logs and reports.
    report : DataReport
        What was dropped or merged on the way in.

    Attributes
    ----------
    user_ids : IdVocab
        Every user with an interaction or a text, sorted.
    item_ids : IdVocab
        Every item with an interaction, then items that only appear in metadata, sorted.

    Examples
    --------
    >>> import pandas as pd
    >>> ds = build_dataset(pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"]}))
    >>> ds.n_users, ds.n_items
    (1, 1)
    """

    interactions: pd.DataFrame
    texts: pd.DataFrame
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    name: str = "dataset"
    report: DataReport = field(default_factory=DataReport)
    user_ids: IdVocab = field(init=False)
    item_ids: IdVocab = field(init=False)

    def __post_init__(self) -> None:
        inter = _normalise_interactions(self.interactions)
        texts = _normalise_texts(self.texts)
        items = None if self.items is None else _normalise_items(self.items)
        users = None if self.users is None else _normalise_users(self.users)
        dup = inter.duplicated(["user_id", "item_id"])
        if dup.any():
            row = inter[dup].iloc[0]
            raise DataError(
                f"interactions have {int(dup.sum())} duplicate (user_id, item_id) row(s) "
                f"(e.g. {row.user_id!r}, {row.item_id!r}); build the dataset with "
                "build_dataset(..., duplicates='latest') to keep the latest of each"
            )
        if len(inter) == 0 and len(texts) == 0:
            raise DataError("the dataset is empty: no interactions and no texts")
        user_ids = IdVocab.from_ids(pd.concat([inter["user_id"], texts["user_id"]]))
        item_ids = IdVocab.from_ids(inter["item_id"])
        if items is not None:
            extra = sorted(set(items["item_id"]) - set(item_ids.ids.tolist()))
            if extra:
                item_ids = IdVocab.from_ordered([*item_ids.ids.tolist(), *extra])
        object.__setattr__(self, "interactions", inter)
        object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "users", users)
        object.__setattr__(self, "user_ids", user_ids)
        object.__setattr__(self, "item_ids", item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return len(self.interactions)

    def interaction_matrix(
        self, *, values: Literal["binary", "rating"] = "binary"
    ) -> sp.csr_matrix:
        """Sparse user × item matrix of shape (n_users, n_items), float32.

        ``values="binary"`` puts 1 for every interaction; ``"rating"`` the rating (1 where NaN).
        """
        # the cells' indices once per dataset (it is immutable): a fit asks for this matrix
        # several times, and the id lookups were most of each call (issue 25)
        cells = self.__dict__.get("_cells")
        if cells is None:
            cells = (
                self.user_ids.index(self.interactions["user_id"]),
                self.item_ids.index(self.interactions["item_id"]),
            )
            object.__setattr__(self, "_cells", cells)
        rows, cols = cells
        if values == "rating":
            data = self.interactions["rating"].fillna(1.0).to_numpy(np.float32)
        else:
            data = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols)), shape=(self.n_users, self.n_items))

    def item_titles(self) -> dict[str, str]:
        """``item_id -> title`` for items with a non-empty title."""
        if self.items is None:
            return {}
        df = self.items[self.items["title"] != ""]
        return dict(zip(df["item_id"], df["title"], strict=True))

    def summary(self) -> dict[str, int]:
        return {
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_interactions": self.n_interactions,
            "n_texts": len(self.texts),
            "n_users_with_text": int(self.texts["user_id"].nunique()),
        }

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"Dataset({self.name!r}, users={s['n_users']}, items={s['n_items']}, "
            f"interactions={s['n_interactions']}, texts={s['n_texts']})"
        )


MERGED_DUPLICATES = "merged: duplicate (user_id, item_id), kept the latest"
"""The report's reason for interactions merged by ``duplicates="latest"``."""


def blank_values(values: pd.Series) -> pd.Series:
    """Rows of ``values`` that are missing or only whitespace (ids and texts alike).

    Examples
    --------
    >>> blank_values(pd.Series(["a", " ", None, "\u00a0"])).tolist()
    [False, True, True, True]
    """
    return values.isna() | values.astype(str).str.strip().eq("")


def check_duplicates_policy(duplicates: str) -> None:
    """Raise unless ``duplicates`` is one of the policies for repeated (user, item) rows."""
    if duplicates not in ("latest", "error"):
        raise DataError(f"duplicates={duplicates!r} is not one of 'latest', 'error'")


def duplicates_error(n_extra: int, user_id: object, item_id: object) -> DataError:
    """The error of ``duplicates="error"``: ``n_extra`` repeated rows, the first pair."""
    return DataError(
        f"interactions have {n_extra} duplicate (user_id, item_id) row(s) (e.g. {user_id!r}, "
        f"{item_id!r}); pass duplicates='latest' to keep the latest of each"
    )


def latest_rows(interactions: pd.DataFrame) -> IntVector:
    """Positions of the rows ``duplicates="latest"`` keeps, in file order.

    Of the rows of one (user_id, item_id), the latest by timestamp (no time counts as the
    earliest); ties: the last in file order.

    Parameters
    ----------
    interactions : DataFrame of shape (n_rows, ...)
        Normalised ``user_id, item_id, timestamp``, in file order.

    Returns
    -------
    ndarray of shape (n_kept,), int64, ascending

    Examples
    --------
    >>> df = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["i", "i", "i"],
    ...                    "timestamp": [2.0, 1.0, np.nan]})
    >>> latest_rows(df).tolist()
    [0, 2]
    """
    order = interactions[["user_id", "item_id", "timestamp"]].assign(
        _pos=np.arange(len(interactions))
    )
    order = order.sort_values(["timestamp", "_pos"], kind="stable", na_position="first")
    kept = order.drop_duplicates(["user_id", "item_id"], keep="last")
    return np.sort(kept["_pos"].to_numpy(np.int64))


def orphan_rows(text_users: pd.Series, interaction_users: pd.Series) -> pd.Series:
    """Texts whose user has no interaction (``orphan_texts`` decides what happens to them).

    Examples
    --------
    >>> orphan_rows(pd.Series(["a", "b"]), pd.Series(["a"])).tolist()
    [False, True]
    """
    return ~text_users.isin(set(interaction_users))


def orphan_texts_dropped(
    policy: str,
    n_orphan: int,
    *,
    example: Callable[[], str],
    n_users: Callable[[], int],
    report: DataReport,
) -> bool:
    """Apply ``orphan_texts`` to ``n_orphan`` (> 0) texts whose user has no interactions.

    The one rule of the local and the Spark readers (:mod:`usergroups.spark.data`):
    ``"error"`` raises, ``"drop"`` records the drop in ``report`` and returns True (the
    caller drops the rows), ``"keep"`` logs and returns False. ``example`` and ``n_users``
    are called only when the message needs them (counting is a pass over the data in Spark).
    """
    if policy == "error":
        raise DataError(
            f"texts have {n_orphan} row(s) whose user has no interactions "
            f"(e.g. {example()!r}); pass orphan_texts='keep' "
            "to group those users by text alone, or 'drop' to drop them"
        )
    if policy == "drop":
        report.add("texts", n_orphan, "dropped: user has no interactions")
        return True
    if policy == "keep":
        logger.info(
            "texts: %d row(s) from %d user(s) with no interactions kept (grouped by text)",
            n_orphan,
            n_users(),
        )
        return False
    raise DataError(f"orphan_texts={policy!r} is not one of 'keep', 'drop', 'error'")


def build_dataset(
    interactions: pd.DataFrame,
    texts: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    *,
    name: str = "dataset",
    duplicates: DuplicatePolicy = "latest",
    orphan_texts: OrphanPolicy = "keep",
    report: DataReport | None = None,
) -> Dataset:
    """Apply the documented policies, then build a :class:`Dataset`.

    Policies (every dropped or merged row is counted in ``dataset.report`` and logged):

    - rows with an empty ``user_id`` or ``item_id`` are dropped;
    - texts that are empty after stripping whitespace are dropped;
    - duplicate (user_id, item_id) interactions: ``duplicates="latest"`` keeps the latest by
      timestamp (ties: the last in file order), ``"error"`` raises;
    - texts whose user has no interaction: ``orphan_texts="keep"`` keeps them (the user is
      grouped by text alone; the count is logged), ``"drop"`` drops them, ``"error"`` raises.

    Parameters
    ----------
    interactions : DataFrame
        At least ``user_id`` and ``item_id``; optional ``rating`` and ``timestamp``.
    texts : DataFrame, optional
        At least ``user_id`` and ``text``.
    """
    report = report if report is not None else DataReport()
    if texts is None:
        texts = pd.DataFrame({"user_id": pd.Series([], dtype=object), "text": []})
        texts["text"] = texts["text"].astype(object)
    inter = interactions.copy()
    _require_columns(inter, ("user_id", "item_id"), "interactions")
    blank = blank_values(inter["user_id"]) | blank_values(inter["item_id"])
    report.add("interactions", int(blank.sum()), "dropped: empty user_id or item_id")
    inter = _normalise_interactions(inter[~blank])

    dup = inter.duplicated(["user_id", "item_id"], keep=False)
    if dup.any():
        check_duplicates_policy(duplicates)
        if duplicates == "error":
            row = inter[dup].iloc[0]
            raise duplicates_error(
                int(inter.duplicated(["user_id", "item_id"]).sum()), row.user_id, row.item_id
            )
        kept = latest_rows(inter)
        report.add("interactions", len(inter) - len(kept), MERGED_DUPLICATES)
        inter = inter.iloc[kept].reset_index(drop=True)

    tx = texts.copy()
    _require_columns(tx, ("user_id", "text"), "texts")
    bad_user = blank_values(tx["user_id"])
    report.add("texts", int(bad_user.sum()), "dropped: empty user_id")
    tx = tx[~bad_user]
    empty = blank_values(tx["text"])
    report.add("texts", int(empty.sum()), "dropped: empty text")
    tx = _normalise_texts(tx[~empty])

    orphan = orphan_rows(tx["user_id"], inter["user_id"])
    n_orphan = int(orphan.sum())
    if n_orphan and orphan_texts_dropped(
        orphan_texts,
        n_orphan,
        example=lambda: str(tx.loc[orphan, "user_id"].iloc[0]),
        n_users=lambda: int(tx.loc[orphan, "user_id"].nunique()),
        report=report,
    ):
        tx = tx[~orphan].reset_index(drop=True)
    return Dataset(interactions=inter, texts=tx, items=items, users=users, name=name, report=report)

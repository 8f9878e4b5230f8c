"""Read interactions, texts, items and users into Spark DataFrames, as the local engine does.

The same column mapping, the same schema checks and error messages (missing or unmapped
column, non-numeric rating or timestamp, empty file, empty dataset) and the same
policies, each counted in a :class:`~usergroups.data.DataReport` under the same source and
reason as :func:`usergroups.datasets.load_files` and :func:`usergroups.data.build_dataset`:

- unreadable lines (``on_bad_lines="skip"``) are dropped and counted per file;
- exact duplicate texts (same user, item and text) are dropped, keeping the first;
- interactions with an empty user or item id are dropped;
- duplicate (user, item) interactions keep the latest by time (ties: the last in file
  order), or raise with ``duplicates="error"``;
- texts with an empty user id or an empty text are dropped;
- texts whose user has no interactions are kept, dropped or refused (``orphan_texts``).

File order is the order of ``monotonically_increasing_id`` (partition by partition), so
"first" and "last" mean what they mean locally.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Unpack

import numpy as np
import pandas as pd

from usergroups.data.model import (
    MERGED_DUPLICATES,
    DataReport,
    Dataset,
    _normalise_interactions,
    _normalise_texts,
    _require_columns,
    blank_values,
    check_duplicates_policy,
    duplicates_error,
    latest_rows,
    orphan_rows,
    orphan_texts_dropped,
)
from usergroups.datasets._io import BadLinePolicy, check_file, detect_format
from usergroups.datasets.readers import (
    DUPLICATE_TEXTS,
    TABLE_COLUMNS,
    ReadOptions,
    _report_unmapped,
    _resolve_columns,
    duplicate_texts,
    read_tables,
)
from usergroups.errors import DataError

__all__ = ["SparkDataset", "from_dataset", "read_files"]

logger = logging.getLogger(__name__)

DuplicatePolicy = Literal["latest", "error"]
OrphanPolicy = Literal["keep", "drop", "error"]

POS = "_pos"
"""Column holding each row's position in file order."""

# Python's str.strip() removes Unicode whitespace; (?U) makes Java's \s do the same
_STRIP = r"(?U)^\s+|\s+$"
_BLANK = r"(?U)^\s*$"
_ID_COLUMNS = ("user_id", "item_id")


@dataclass
class SparkDataset:
    """The Spark counterpart of :class:`~usergroups.data.Dataset`: validated DataFrames.

    Attributes
    ----------
    interactions : DataFrame
        ``user_id, item_id, rating, timestamp, _pos``; one row per (user, item).
    texts : DataFrame
        ``user_id, text, item_id, rating, timestamp, _pos``.
    items : DataFrame or None
        ``item_id, title, categories, description``.
    users : DataFrame or None
        ``user_id`` and attribute columns.
    name : str
    report : DataReport
        What was dropped or merged on the way in.
    """

    interactions: Any
    texts: Any
    items: Any = None
    users: Any = None
    name: str = "dataset"
    report: DataReport = field(default_factory=DataReport)

    def summary(self) -> dict[str, int]:
        """The counts of :meth:`usergroups.data.Dataset.summary`, computed by Spark."""
        from pyspark.sql import functions as F

        users = self.interactions.select("user_id").union(self.texts.select("user_id"))
        n_items = self.interactions.select("item_id")
        if self.items is not None:
            n_items = n_items.union(self.items.select("item_id"))
        return {
            "n_users": users.distinct().count(),
            "n_items": n_items.distinct().count(),
            "n_interactions": self.interactions.count(),
            "n_texts": self.texts.count(),
            "n_users_with_text": self.texts.agg(F.countDistinct("user_id")).first()[0],
        }

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"SparkDataset({self.name!r}, users={s['n_users']}, items={s['n_items']}, "
            f"interactions={s['n_interactions']}, texts={s['n_texts']})"
        )


# ----------------------------------------------------------------------------- reading


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local_path(path: str | Path) -> Path:
    text = str(path)
    return Path(text[len("file://") :] if text.startswith("file://") else text).expanduser()


def _json_key_order(p: Path, gz: bool, spark_columns: list[str]) -> list[str]:
    """Columns in order of first appearance in the first record, as the local reader lists them."""
    import gzip

    try:
        with gzip.open(p, "rt", encoding="utf-8-sig") if gz else p.open(encoding="utf-8-sig") as fh:
            for line in fh:
                if line.strip():
                    first = json.loads(line)
                    break
            else:
                return spark_columns
    except (OSError, ValueError, UnicodeDecodeError):
        return spark_columns
    if not isinstance(first, dict):
        return spark_columns
    ordered = [c for c in first if c in spark_columns]
    return ordered + [c for c in spark_columns if c not in ordered]


def _read_raw(
    spark: Any,
    path: str | Path,
    *,
    sep: str | None,
    encoding: str | None,
    format: str | None,
    on_bad_lines: BadLinePolicy,
    report: DataReport,
) -> tuple[Any, str, list[str]]:
    """The file as a DataFrame of its own columns, with ``_pos``; also its name and columns."""
    from pyspark.sql import functions as F

    text = str(path)
    if _is_local(text):
        p = check_file(_local_path(text))
        fmt, gz = detect_format(p, format)
        shown, location = str(p), str(p)
    else:
        p = Path(text.split("://", 1)[1])
        fmt, gz = detect_format(p, format)
        shown, location = text, text
    if fmt in ("csv", "tsv"):
        delim = sep if sep is not None else ("," if fmt == "csv" else "\t")
        df = _read_csv(spark, location, delim, encoding, on_bad_lines)
    elif fmt == "parquet":
        if gz:
            raise DataError(
                f"{shown!r}: the Spark engine reads Parquet uncompressed by gzip (Parquet "
                "compresses its pages itself); decompress the file"
            )
        df = spark.read.parquet(location)
    else:
        head = ""
        if _is_local(text) and not gz:
            with _local_path(text).open(encoding="utf-8-sig", errors="replace") as fh:
                head = fh.read(64).lstrip()
        df = _read_json(
            spark,
            location,
            shown,
            multiline=head.startswith("["),
            encoding=encoding,
            on_bad_lines=on_bad_lines,
            count_as=p.name,
            report=report,
        )
    columns = [str(c) for c in df.columns]
    if fmt == "jsonl" and _is_local(text):
        columns = _json_key_order(_local_path(text), gz, columns)
    return df.withColumn(POS, F.monotonically_increasing_id()), shown, columns


def _read_csv(
    spark: Any, location: str, delim: str, encoding: str | None, on_bad_lines: BadLinePolicy
) -> Any:
    """A CSV / TSV file with a header, every column as a string (BOM stripped from names)."""
    reader = spark.read.options(
        header=True,
        sep=delim,
        encoding=encoding or "UTF-8",
        multiLine=True,
        escape='"',
        inferSchema=False,
        nullValue="",
        emptyValue="",
        mode="FAILFAST" if on_bad_lines == "error" else "DROPMALFORMED",
    )
    df = reader.csv(location)
    return df.toDF(*[c.lstrip("\ufeff") for c in df.columns])


def _read_json(
    spark: Any,
    location: str,
    shown: str,
    *,
    multiline: bool,
    encoding: str | None,
    on_bad_lines: BadLinePolicy,
    count_as: str,
    report: DataReport,
) -> Any:
    """JSON lines (or one JSON array); lines that are not objects raise or are counted."""
    from pyspark.sql import functions as F

    corrupt = "_corrupt_record"
    df = spark.read.options(
        mode="PERMISSIVE",
        columnNameOfCorruptRecord=corrupt,
        multiLine=multiline,
        encoding=encoding or "UTF-8",
    ).json(location)
    if corrupt not in df.columns:
        return df
    df = df.cache()
    n_bad = df.filter(F.col(corrupt).isNotNull()).count()
    if n_bad and on_bad_lines == "error":
        example = df.filter(F.col(corrupt).isNotNull()).first()[corrupt]
        raise DataError(
            f"{shown!r} has {n_bad} line(s) that are not valid JSON objects (e.g. "
            f"{str(example)[:80]!r}). Fix or remove the lines, or pass "
            "on_bad_lines='skip' to skip and count bad lines"
        )
    if n_bad:
        report.add(count_as, n_bad, "dropped: line(s) that are not JSON objects")
    return df.filter(F.col(corrupt).isNull()).drop(corrupt)


def _spark_error(shown: str, exc: Exception) -> DataError:
    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return DataError(
        f"{shown!r} could not be read: {message}. Check the separator and quoting, or pass "
        "on_bad_lines='skip' to skip malformed rows"
    )


def _to_ids(df: Any, ours: str) -> Any:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    dtype = df.schema[ours].dataType
    col = F.col(ours)
    if isinstance(dtype, T.FloatType | T.DoubleType):
        # 12.0 -> "12", as the local reader turns integral float ids into integers
        col = F.when(col == F.floor(col), col.cast("long").cast("string")).otherwise(
            col.cast("string")
        )
    elif not isinstance(dtype, T.StringType):
        col = col.cast("string")
    return df.withColumn(ours, col)


def _to_str(df: Any, ours: str, joiner: str) -> Any:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    dtype = df.schema[ours].dataType
    if isinstance(dtype, T.StringType):
        return df
    col = F.col(ours)
    if isinstance(dtype, T.ArrayType):
        if isinstance(dtype.elementType, T.ArrayType):
            col = F.flatten(col)
        col = F.concat_ws(joiner, F.array_distinct(col.cast("array<string>")))
        return df.withColumn(ours, F.when(F.col(ours).isNull(), None).otherwise(col))
    return df.withColumn(ours, col.cast("string"))


def _row_of(df: Any, pos: int) -> int:
    """0-based data row of the row at ``_pos`` (positions jump between partitions)."""
    from pyspark.sql import functions as F

    return int(df.filter(F.col(POS) < pos).count())


def _parsed(df: Any, ours: str, raw: Any, value: Any) -> tuple[Any, tuple[int, str, int] | None]:
    """``df`` with ``ours`` replaced by ``value`` (null where the raw text is blank), and
    what could not be parsed: the count, the first raw text and its 0-based data row."""
    from pyspark.sql import functions as F

    # keep the raw text first: the message quotes the value as it was in the file
    df = df.withColumn("_raw_" + ours, raw).withColumn(ours, value)
    bad = df.filter(F.col(ours).isNull() & F.col("_raw_" + ours).isNotNull())
    bad = bad.filter(~F.col("_raw_" + ours).rlike(_BLANK))
    n_bad = bad.count()
    if not n_bad:
        return df.drop("_raw_" + ours), None
    first = bad.orderBy(POS).first()
    return df, (int(n_bad), first["_raw_" + ours], _row_of(df, int(first[POS])))


def _to_number(df: Any, ours: str, shown: str, label: str) -> Any:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    dtype = df.schema[ours].dataType
    if isinstance(dtype, T.NumericType):
        return df.withColumn(ours, F.col(ours).cast("double"))
    if isinstance(dtype, T.BooleanType) or not isinstance(dtype, T.StringType):
        raise DataError(
            f"{shown!r}: column {label} must be numeric; got type {dtype.simpleString()}. "
            "Map another column or convert the values"
        )
    raw = F.col(ours)
    blank = raw.isNull() | raw.rlike(_BLANK)
    num = F.when(blank, None).otherwise(F.regexp_replace(raw, _STRIP, "").try_cast("double"))
    df, bad = _parsed(df, ours, raw, num)
    if bad is not None:
        n_bad, value, row = bad
        raise DataError(
            f"{shown!r}: column {label} must be numeric; {n_bad} value(s) are "
            f"not (e.g. {value!r} in data row {row + 1}). Fix the values, or "
            "map the right column (e.g. --map rating=stars)"
        )
    return df


def _to_seconds(df: Any, ours: str, shown: str, label: str) -> Any:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    dtype = df.schema[ours].dataType
    if isinstance(dtype, T.TimestampType | T.TimestampNTZType | T.DateType):
        return df.withColumn(ours, F.unix_micros(F.col(ours).cast("timestamp")) / 1e6)
    if isinstance(dtype, T.NumericType) and not isinstance(dtype, T.BooleanType):
        return df.withColumn(ours, F.col(ours).cast("double"))
    raw = F.col(ours).cast("string")
    blank = raw.isNull() | raw.rlike(_BLANK)
    stripped = F.regexp_replace(raw, _STRIP, "")
    as_num = stripped.try_cast("double")
    as_time = F.unix_micros(F.try_to_timestamp(stripped)) / 1e6
    value = F.when(blank, None).otherwise(F.coalesce(as_num, as_time))
    df, bad = _parsed(df, ours, raw, value)
    if bad is not None:
        n_bad, text, row = bad
        raise DataError(
            f"{shown!r}: column {label} must hold unix seconds or dates; "
            f"{n_bad} value(s) are neither (e.g. {text!r} in data row "
            f"{row + 1}). Fix the values or map another column as timestamp"
        )
    return df


def read_table_spark(
    spark: Any,
    path: str | Path,
    *,
    kind: str,
    maps: dict[str, str],
    sep: str | None = None,
    encoding: str | None = None,
    format: str | None = None,
    on_bad_lines: BadLinePolicy = "error",
    report: DataReport | None = None,
    strict: bool = True,
) -> tuple[Any, list[str]]:
    """Read one file as a table of ``kind`` (our column names and types, plus ``_pos``).

    The Spark counterpart of :func:`usergroups.datasets.read_table`; paths may be local
    or any URL Spark reads (``hdfs://``, ``s3a://``). Returns the DataFrame and the
    file's own columns.
    """
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    if kind not in TABLE_COLUMNS:
        raise DataError(f"kind={kind!r} is not one of {', '.join(map(repr, TABLE_COLUMNS))}")
    report = report if report is not None else DataReport()
    raw, shown, columns = _read_raw(
        spark,
        path,
        sep=sep,
        encoding=encoding,
        format=format,
        on_bad_lines=on_bad_lines,
        report=report,
    )
    selected = _resolve_columns(Path(shown), kind, maps, columns, strict=strict)
    try:
        keep = [raw[theirs].alias(ours) for ours, theirs in selected.items()]
        extra = []
        if kind == "users":
            taken = set(selected.values()) | set(selected)
            extra = [raw[c] for c in columns if c not in taken]
        df = raw.select(*keep, *extra, raw[POS])
        if df.isEmpty():
            raise DataError(f"{shown!r} has a header but no rows; pass a file with data rows")
        # the local reader's note on rating or time columns left unmapped (issue 13)
        _report_unmapped(Path(shown), kind, selected, columns, df.count(), report)
        for ours, theirs in selected.items():
            label = ours if ours == theirs else f"{theirs!r} (mapped to {ours})"
            if ours in _ID_COLUMNS or (kind == "users" and ours == "user_id"):
                df = _to_ids(df, ours)
            elif ours == "rating":
                df = _to_number(df, ours, shown, label)
            elif ours == "timestamp":
                df = _to_seconds(df, ours, shown, label)
            elif ours == "categories":
                df = _to_str(df, ours, "|")
            elif ours in ("text", "title", "description"):
                df = _to_str(df, ours, " ")
    except (Py4JJavaError, PySparkException) as exc:
        raise _spark_error(shown, exc) from exc
    return df, columns


def _strip(col: Any) -> Any:
    from pyspark.sql import functions as F

    return F.regexp_replace(col, _STRIP, "")


def _blank(col: Any) -> Any:
    return col.isNull() | col.rlike(_BLANK)


def interactions_from_texts(texts: Any) -> Any:
    """Interactions implied by review rows (one per text naming an item), with ``_pos``."""
    from pyspark.sql import functions as F

    if "item_id" not in texts.columns:
        raise DataError(
            "texts has no item_id column, so no interactions can be derived from it; "
            "map the item column (e.g. --map item_id=asin) or pass an interactions file"
        )
    rows = texts.filter(~_blank(F.col("item_id")))
    return rows.select(
        "user_id",
        "item_id",
        (F.col("rating") if "rating" in texts.columns else F.lit(None))
        .cast("double")
        .alias("rating"),
        (F.col("timestamp") if "timestamp" in texts.columns else F.lit(None))
        .cast("double")
        .alias("timestamp"),
        POS,
    )


# ------------------------------------------------------------------ the local rules on buckets

BUCKET = "_bucket"
STATUS = "_status"
_N_BUCKETS = 256
"""Buckets of users the rules run on (at least ``spark.sql.shuffle.partitions``): one
pandas frame each, so memory follows the bucket, not the dataset."""

_INTER = ("user_id", "item_id", "rating", "timestamp")
_TEXTS = ("user_id", "text", "item_id", "rating", "timestamp")
_INTER_SCHEMA = (
    f"user_id string, item_id string, rating double, timestamp double, {POS} long, "
    f"{STATUS} int, _dup boolean"
)
_TEXTS_SCHEMA = (
    f"user_id string, text string, item_id string, rating double, timestamp double, "
    f"{POS} long, {STATUS} int"
)
# _status codes of interactions, then of texts
_KEPT, _EMPTY_ID, _MERGED = 0, 1, 2
_EMPTY_USER, _EMPTY_TEXT, _ORPHAN = 1, 2, 3


def _with_bucket(df: Any) -> Any:
    """``df`` with ``_bucket``, a hash of the stripped user id: every rule that looks at
    one user's rows (duplicates, orphans) then sees all of them in one pandas frame."""
    from pyspark.sql import functions as F

    shuffle = int(df.sparkSession.conf.get("spark.sql.shuffle.partitions") or 0)
    n = max(_N_BUCKETS, shuffle)
    return df.withColumn(BUCKET, F.pmod(F.hash(_strip(F.col("user_id"))), F.lit(n)))


def _status_counts(df: Any) -> dict[int, int]:
    """Rows per ``_status`` code (one pass)."""
    return {int(r[0]): int(r[1]) for r in df.groupBy(STATUS).count().collect()}


def _in_file_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(POS, kind="stable").reset_index(drop=True)


def _duplicate_text_rule(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`usergroups.datasets.readers.duplicate_texts` on one bucket: ``_status`` 1
    for a repeat of an earlier row."""
    frame = _in_file_order(frame)
    dup = duplicate_texts(frame.drop(columns=[POS, BUCKET])).to_numpy()
    return frame.drop(columns=BUCKET).assign(**{STATUS: dup.astype(np.int32)})


def _interaction_rules(frame: pd.DataFrame) -> pd.DataFrame:
    """The interaction rules of :func:`usergroups.data.build_dataset` on one bucket.

    Every row comes back with its ``_status`` (kept, empty id, merged into a later
    duplicate) and ``_dup`` (a row of a repeated pair); kept rows are normalised by the
    local :func:`~usergroups.data.model._normalise_interactions`.
    """
    frame = _in_file_order(frame)
    blank = (blank_values(frame["user_id"]) | blank_values(frame["item_id"])).to_numpy()
    rest = frame[~blank]
    inter = _normalise_interactions(rest[list(_INTER)])
    status = np.full(len(inter), _MERGED, dtype=np.int32)
    status[latest_rows(inter)] = _KEPT
    dup = inter.duplicated(["user_id", "item_id"], keep=False).to_numpy()
    kept = inter.assign(**{POS: rest[POS].to_numpy(np.int64), STATUS: status, "_dup": dup})
    empty = frame.loc[blank, [*_INTER, POS]].assign(**{STATUS: _EMPTY_ID, "_dup": False})
    return pd.concat([kept, empty], ignore_index=True)


def _text_rules(frame: pd.DataFrame, known: pd.DataFrame) -> pd.DataFrame:
    """The text rules of :func:`usergroups.data.build_dataset` on one bucket; ``known``
    holds the bucket's users with interactions. Every row comes back with its
    ``_status`` (kept, empty user id, empty text, orphan); kept and orphan rows are
    normalised by the local :func:`~usergroups.data.model._normalise_texts`."""
    frame = _in_file_order(frame)
    bad_user = blank_values(frame["user_id"]).to_numpy()
    empty = ~bad_user & blank_values(frame["text"]).to_numpy()
    rest = frame[~bad_user & ~empty]
    tx = _normalise_texts(rest[list(_TEXTS)])
    users = known["user_id"] if "user_id" in known else pd.Series([], dtype=object)
    status = np.where(orphan_rows(tx["user_id"], users).to_numpy(), _ORPHAN, _KEPT)
    kept = tx.assign(**{POS: rest[POS].to_numpy(np.int64), STATUS: status.astype(np.int32)})
    dropped = frame.loc[bad_user | empty, [*_TEXTS, POS]]
    dropped = dropped.assign(**{STATUS: np.where(bad_user[bad_user | empty], 1, 2)})
    return pd.concat([kept, dropped], ignore_index=True)


def dedupe_texts(texts: Any, *, report: DataReport, source: str = "texts") -> Any:
    """Drop exact duplicate texts (same user, item and text), keeping the first in file
    order: the local rule on each bucket of users."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    schema = T.StructType([*texts.schema.fields, T.StructField(STATUS, T.IntegerType())])
    ranked = _with_bucket(texts).groupBy(BUCKET).applyInPandas(_duplicate_text_rule, schema).cache()
    report.add(source, _status_counts(ranked).get(1, 0), DUPLICATE_TEXTS)
    return ranked.filter(F.col(STATUS) == 0).drop(STATUS)


def _with_optional(df: Any, columns: tuple[str, ...], dtype: str) -> Any:
    from pyspark.sql import functions as F

    for col in columns:
        if col not in df.columns:
            df = df.withColumn(col, F.lit(None).cast(dtype))
    return df


def _clean_interactions(
    interactions: Any, *, duplicates: DuplicatePolicy, report: DataReport
) -> Any:
    """Interactions after the local rules: empty ids dropped, repeated pairs merged (or
    refused); counted in ``report`` as :func:`usergroups.data.build_dataset` counts them."""
    from pyspark.sql import functions as F

    _require_columns(interactions.drop(POS), ("user_id", "item_id"), "interactions")
    inter = _with_optional(interactions, ("rating", "timestamp"), "double")
    inter = inter.select(
        *[F.col(c).cast("string" if c.endswith("_id") else "double").alias(c) for c in _INTER],
        POS,
    )
    ruled = _with_bucket(inter).groupBy(BUCKET).applyInPandas(_interaction_rules, _INTER_SCHEMA)
    ruled = ruled.cache()
    counts = _status_counts(ruled)
    report.add("interactions", counts.get(_EMPTY_ID, 0), "dropped: empty user_id or item_id")
    n_merged = counts.get(_MERGED, 0)
    if n_merged:
        check_duplicates_policy(duplicates)
        if duplicates == "error":
            first = ruled.filter("_dup").orderBy(POS).first()
            raise duplicates_error(n_merged, first["user_id"], first["item_id"])
        report.add("interactions", n_merged, MERGED_DUPLICATES)
    return ruled.filter(F.col(STATUS) == _KEPT).select(*_INTER, POS)


def _clean_texts(texts: Any, inter: Any, *, orphan_texts: OrphanPolicy, report: DataReport) -> Any:
    """Texts after the local rules: empty user ids and empty texts dropped, texts of users
    without interactions kept, dropped or refused (``orphan_texts``)."""
    from pyspark.sql import functions as F

    _require_columns(texts.drop(POS), ("user_id", "text"), "texts")
    tx = _with_optional(texts, ("item_id",), "string")
    tx = _with_optional(tx, ("rating", "timestamp"), "double")
    kinds = {"user_id": "string", "text": "string", "item_id": "string"}
    tx = tx.select(*[F.col(c).cast(kinds.get(c, "double")).alias(c) for c in _TEXTS], POS)
    known = _with_bucket(inter.select("user_id").distinct())
    ruled = (
        _with_bucket(tx)
        .groupBy(BUCKET)
        .cogroup(known.groupBy(BUCKET))
        .applyInPandas(_text_rules, _TEXTS_SCHEMA)
        .cache()
    )
    counts = _status_counts(ruled)
    report.add("texts", counts.get(_EMPTY_USER, 0), "dropped: empty user_id")
    report.add("texts", counts.get(_EMPTY_TEXT, 0), "dropped: empty text")
    keep = [_KEPT, _ORPHAN]
    orphans = ruled.filter(F.col(STATUS) == _ORPHAN)
    n_orphan = counts.get(_ORPHAN, 0)
    # the local reader's rule (usergroups.data.model.orphan_texts_dropped)
    if n_orphan and orphan_texts_dropped(
        orphan_texts,
        n_orphan,
        example=lambda: str(orphans.orderBy(POS).first()["user_id"]),
        n_users=lambda: int(orphans.select("user_id").distinct().count()),
        report=report,
    ):
        keep = [_KEPT]
    return ruled.filter(F.col(STATUS).isin(keep)).select(*_TEXTS, POS)


def build_spark_dataset(
    interactions: Any,
    texts: Any | None,
    items: Any | None = None,
    users: Any | None = None,
    *,
    name: str = "dataset",
    duplicates: DuplicatePolicy = "latest",
    orphan_texts: OrphanPolicy = "keep",
    report: DataReport | None = None,
) -> SparkDataset:
    """Apply the policies of :func:`usergroups.data.build_dataset` to DataFrames.

    Every input holds our column names and a ``_pos`` column (file order). The rules are
    the local engine's own functions (:func:`~usergroups.data.model.blank_values`,
    :func:`~usergroups.data.model.latest_rows`, :func:`~usergroups.data.model.orphan_rows`
    and the local normalisation), run with ``applyInPandas`` on buckets of users.
    """
    from pyspark.sql import functions as F

    report = report if report is not None else DataReport()
    if texts is None:
        texts = interactions.sparkSession.createDataFrame(
            [], "user_id string, text string, item_id string, rating double, timestamp double"
        ).withColumn(POS, F.lit(0).cast("long"))
    inter = _clean_interactions(interactions, duplicates=duplicates, report=report)
    tx = _clean_texts(texts, inter, orphan_texts=orphan_texts, report=report)
    # cut the lineage: every later plan starts from these two tables
    inter = inter.localCheckpoint()
    tx = tx.localCheckpoint()
    if inter.isEmpty() and tx.isEmpty():
        raise DataError("the dataset is empty: no interactions and no texts")
    return SparkDataset(
        interactions=inter,
        texts=tx,
        items=None if items is None else _normalise_items(items),
        users=None if users is None else _normalise_users(users),
        name=name,
        report=report,
    )


def _normalise_items(items: Any) -> Any:
    from pyspark.sql import functions as F

    items = _with_optional(items, ("title", "categories", "description"), "string")
    out = items.select(
        _strip(F.col("item_id")).alias("item_id"),
        *[
            F.coalesce(F.col(c).cast("string"), F.lit("")).alias(c)
            for c in ("title", "categories", "description")
        ],
    ).cache()
    dup = out.groupBy("item_id").count().filter("count > 1").first()
    if dup is not None:
        raise DataError(
            f"items.item_id has duplicates (e.g. {dup['item_id']!r}); keep one row per item"
        )
    return out


def _normalise_users(users: Any) -> Any:
    from pyspark.sql import functions as F

    out = users.withColumn("user_id", _strip(F.col("user_id"))).drop(POS).cache()
    dup = out.groupBy("user_id").count().filter("count > 1").first()
    if dup is not None:
        raise DataError(
            f"users.user_id has duplicates (e.g. {dup['user_id']!r}); keep one row per user"
        )
    return out


def read_files(
    spark: Any,
    interactions: str | Path | None = None,
    texts: str | Path | None = None,
    items: str | Path | None = None,
    users: str | Path | None = None,
    **options: Unpack[ReadOptions],
) -> SparkDataset:
    """Read up to four files into a :class:`SparkDataset`, as :func:`load_files` reads them.

    Parameters are those of :func:`usergroups.datasets.load_files`
    (:class:`~usergroups.datasets.readers.ReadOptions`, same defaults); paths may also be
    directories or URLs Spark reads (``hdfs://``, ``s3a://``), for Parquet above all.
    When only ``texts`` is given, interactions are derived from the review rows.

    Examples
    --------
    >>> ds = read_files(spark, texts="reviews.jsonl.gz",
    ...                 mapping="user_id=reviewerID,item_id=asin,text=reviewText")  # doctest: +SKIP
    """
    unknown = sorted(set(options) - set(ReadOptions.__annotations__))
    if unknown:
        raise TypeError(
            f"read_files() got unknown option(s) {unknown}; it takes "
            f"{sorted(ReadOptions.__annotations__)}"
        )
    on_bad_lines = options.get("on_bad_lines", "error")

    def read(
        path: str | Path, kind: str, maps: dict[str, str], report: DataReport
    ) -> tuple[Any, Path, list[str]]:
        df, columns = read_table_spark(
            spark,
            path,
            kind=kind,
            maps=maps,
            sep=options.get("sep"),
            encoding=options.get("encoding"),
            on_bad_lines=on_bad_lines,
            report=report,
            strict=False,
        )
        shown = _local_path(path) if _is_local(str(path)) else Path(str(path))
        return df, shown, columns

    tables, report = read_tables(
        read,
        interactions,
        texts,
        items,
        users,
        mapping=options.get("mapping"),
        on_bad_lines=on_bad_lines,
    )
    tx, inter = tables.get("texts"), tables.get("interactions")
    if inter is None:
        assert tx is not None
        inter = interactions_from_texts(tx)
    if tx is not None and options.get("drop_duplicate_texts", True):
        tx = dedupe_texts(tx, report=report)
    first = interactions if interactions is not None else texts
    return build_spark_dataset(
        inter,
        tx,
        tables.get("items"),
        tables.get("users"),
        name=options.get("name") or Path(str(first)).name.split(".")[0],
        duplicates=options.get("duplicates", "latest"),
        orphan_texts=options.get("orphan_texts", "keep"),
        report=report,
    )


def from_dataset(spark: Any, dataset: Dataset, *, n_partitions: int | None = None) -> SparkDataset:
    """A validated local :class:`Dataset` as a :class:`SparkDataset` (nothing dropped again)."""
    from pyspark.sql import functions as F

    def frame(df: pd.DataFrame, schema: str) -> Any:
        df = df.assign(**{POS: range(len(df))})
        out = spark.createDataFrame(df.astype(object).where(df.notna(), None), schema=schema)
        if n_partitions:
            out = out.repartition(n_partitions, POS)
        return out

    inter = frame(
        dataset.interactions[["user_id", "item_id", "rating", "timestamp"]],
        f"user_id string, item_id string, rating double, timestamp double, {POS} long",
    )
    texts = frame(
        dataset.texts[["user_id", "text", "item_id", "rating", "timestamp"]],
        f"user_id string, text string, item_id string, rating double, timestamp double, {POS} long",
    )
    items = None
    if dataset.items is not None:
        items = frame(
            dataset.items[["item_id", "title", "categories", "description"]],
            f"item_id string, title string, categories string, description string, {POS} long",
        ).drop(POS)
    users = None
    if dataset.users is not None:
        users = spark.createDataFrame(dataset.users.astype(str))
    return SparkDataset(
        interactions=inter.localCheckpoint(),
        texts=texts.localCheckpoint(),
        items=None if items is None else items.withColumn("title", F.coalesce("title", F.lit(""))),
        users=users,
        name=dataset.name,
        report=dataset.report,
    )

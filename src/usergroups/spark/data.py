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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from usergroups.data.model import DataReport, Dataset, orphan_texts_dropped
from usergroups.datasets._io import BadLinePolicy, check_file, check_policy, detect_format
from usergroups.datasets.readers import (
    TABLE_COLUMNS,
    _check_mapping_used,
    _report_unmapped,
    _resolve_columns,
    parse_mapping,
    validate_mapping,
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
    corrupt = "_corrupt_record"
    if fmt in ("csv", "tsv"):
        delim = sep if sep is not None else ("," if fmt == "csv" else "\t")
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
        df = df.toDF(*[c.lstrip("\ufeff") for c in df.columns])
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
        df = spark.read.options(
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=corrupt,
            multiLine=head.startswith("["),
            encoding=encoding or "UTF-8",
        ).json(location)
        if corrupt in df.columns:
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
                report.add(p.name, n_bad, "dropped: line(s) that are not JSON objects")
            df = df.filter(F.col(corrupt).isNull()).drop(corrupt)
    columns = [str(c) for c in df.columns]
    if fmt == "jsonl" and _is_local(text):
        columns = _json_key_order(_local_path(text), gz, columns)
    return df.withColumn(POS, F.monotonically_increasing_id()), shown, columns


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
    # keep the raw text first: the message quotes the value as it was in the file
    df = df.withColumn("_raw_" + ours, raw).withColumn(ours, num)
    bad = df.filter(F.col(ours).isNull() & ~(F.col("_raw_" + ours).isNull()))
    bad = bad.filter(~F.col("_raw_" + ours).rlike(_BLANK))
    n_bad = bad.count()
    if n_bad:
        first = bad.orderBy(POS).first()
        row = _row_of(df, int(first[POS]))
        raise DataError(
            f"{shown!r}: column {label} must be numeric; {n_bad} value(s) are "
            f"not (e.g. {first['_raw_' + ours]!r} in data row {row + 1}). Fix the values, or "
            "map the right column (e.g. --map rating=stars)"
        )
    return df.drop("_raw_" + ours)


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
    df = df.withColumn("_raw_" + ours, raw).withColumn(ours, value)
    bad = df.filter(F.col(ours).isNull() & F.col("_raw_" + ours).isNotNull())
    bad = bad.filter(~F.col("_raw_" + ours).rlike(_BLANK))
    n_bad = bad.count()
    if n_bad:
        first = bad.orderBy(POS).first()
        row = _row_of(df, int(first[POS]))
        raise DataError(
            f"{shown!r}: column {label} must hold unix seconds or dates; "
            f"{n_bad} value(s) are neither (e.g. {first['_raw_' + ours]!r} in data row "
            f"{row + 1}). Fix the values or map another column as timestamp"
        )
    return df.drop("_raw_" + ours)


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


def dedupe_texts(texts: Any, *, report: DataReport, source: str = "texts") -> Any:
    """Drop exact duplicate texts (same user, item and text), keeping the first in file order."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    subset = [c for c in ("user_id", "item_id", "text") if c in texts.columns]
    w = Window.partitionBy(*subset).orderBy(POS)
    ranked = texts.withColumn("_rank", F.row_number().over(w)).cache()
    n_dup = ranked.filter(F.col("_rank") > 1).count()
    report.add(source, n_dup, "dropped: exact duplicate text (same user, item and text)")
    return ranked.filter(F.col("_rank") == 1).drop("_rank")


def _with_optional(df: Any, columns: tuple[str, ...], dtype: str) -> Any:
    from pyspark.sql import functions as F

    for col in columns:
        if col not in df.columns:
            df = df.withColumn(col, F.lit(None).cast(dtype))
    return df


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

    Every input holds our column names and a ``_pos`` column (file order).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    report = report if report is not None else DataReport()
    spark = interactions.sparkSession
    if texts is None:
        texts = spark.createDataFrame(
            [], "user_id string, text string, item_id string, rating double, timestamp double"
        ).withColumn(POS, F.lit(0).cast("long"))
    inter = interactions
    for col in ("user_id", "item_id"):
        if col not in inter.columns:
            raise DataError(
                f"interactions is missing column(s) {[col]}; it has "
                f"{[c for c in inter.columns if c != POS]}. Rename the columns or pass a column "
                "mapping (e.g. --map user_id=reviewerID)"
            )
    inter = _with_optional(inter, ("rating", "timestamp"), "double")
    blank = _blank(F.col("user_id")) | _blank(F.col("item_id"))
    inter = inter.withColumn("_blank", blank).cache()
    report.add(
        "interactions",
        inter.filter("_blank").count(),
        "dropped: empty user_id or item_id",
    )
    inter = inter.filter(~F.col("_blank")).select(
        _strip(F.col("user_id")).alias("user_id"),
        _strip(F.col("item_id")).alias("item_id"),
        F.col("rating").cast("double").alias("rating"),
        F.col("timestamp").cast("double").alias("timestamp"),
        POS,
    )
    pair = Window.partitionBy("user_id", "item_id")
    inter = inter.withColumn("_n", F.count(F.lit(1)).over(pair)).cache()
    n_rows = inter.count()
    n_dup_rows = inter.filter(F.col("_n") > 1).count()
    if n_dup_rows:
        if duplicates == "error":
            first = inter.filter(F.col("_n") > 1).orderBy(POS).first()
            n_extra = n_rows - inter.select("user_id", "item_id").distinct().count()
            raise DataError(
                f"interactions have {n_extra} "
                f"duplicate (user_id, item_id) row(s) (e.g. {first['user_id']!r}, "
                f"{first['item_id']!r}); pass duplicates='latest' to keep the latest of each"
            )
        if duplicates != "latest":
            raise DataError(f"duplicates={duplicates!r} is not one of 'latest', 'error'")
        # the latest by time (no time counts as earliest), ties: the last in file order
        latest = pair.orderBy(F.col("timestamp").desc_nulls_last(), F.col(POS).desc())
        inter = inter.withColumn("_rank", F.row_number().over(latest))
        inter = inter.filter(F.col("_rank") == 1).drop("_rank")
        kept = inter.count()
        report.add(
            "interactions", n_rows - kept, "merged: duplicate (user_id, item_id), kept the latest"
        )
    inter = inter.drop("_n")

    tx = texts
    for col in ("user_id", "text"):
        if col not in tx.columns:
            raise DataError(
                f"texts is missing column(s) {[col]}; it has {[c for c in tx.columns if c != POS]}"
                ". Rename the columns or pass a column mapping (e.g. --map user_id=reviewerID)"
            )
    tx = _with_optional(tx, ("item_id",), "string")
    tx = _with_optional(tx, ("rating", "timestamp"), "double")
    tx = tx.withColumn("_bad_user", _blank(F.col("user_id")))
    tx = tx.withColumn("_empty", _blank(F.col("text"))).cache()
    report.add("texts", tx.filter("_bad_user").count(), "dropped: empty user_id")
    report.add(
        "texts", tx.filter(~F.col("_bad_user") & F.col("_empty")).count(), "dropped: empty text"
    )
    tx = tx.filter(~F.col("_bad_user") & ~F.col("_empty")).select(
        _strip(F.col("user_id")).alias("user_id"),
        F.col("text").cast("string").alias("text"),
        F.col("item_id").cast("string").alias("item_id"),
        F.col("rating").cast("double").alias("rating"),
        F.col("timestamp").cast("double").alias("timestamp"),
        POS,
    )
    known = inter.select("user_id").distinct().withColumn("_known", F.lit(True))
    tx = tx.join(known, "user_id", "left").cache()
    orphans = tx.filter(F.col("_known").isNull())
    n_orphan = orphans.count()
    # the local reader's rule (usergroups.data.model.orphan_texts_dropped)
    if n_orphan and orphan_texts_dropped(
        orphan_texts,
        n_orphan,
        example=lambda: str(orphans.orderBy(POS).first()["user_id"]),
        n_users=lambda: int(orphans.select("user_id").distinct().count()),
        report=report,
    ):
        tx = tx.filter(F.col("_known").isNotNull())
    tx = tx.drop("_known")
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
    *,
    mapping: Mapping[str, str] | str | None = None,
    name: str | None = None,
    sep: str | None = None,
    encoding: str | None = None,
    on_bad_lines: BadLinePolicy = "error",
    duplicates: DuplicatePolicy = "latest",
    orphan_texts: OrphanPolicy = "keep",
    drop_duplicate_texts: bool = True,
) -> SparkDataset:
    """Read up to four files into a :class:`SparkDataset`, as :func:`load_files` reads them.

    Parameters are those of :func:`usergroups.datasets.load_files`; paths may also be
    directories or URLs Spark reads (``hdfs://``, ``s3a://``), for Parquet above all.
    When only ``texts`` is given, interactions are derived from the review rows.

    Examples
    --------
    >>> ds = read_files(spark, texts="reviews.jsonl.gz",
    ...                 mapping="user_id=reviewerID,item_id=asin,text=reviewText")  # doctest: +SKIP
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

    def read(path: str | Path, kind: str) -> Any:
        df, columns = read_table_spark(
            spark,
            path,
            kind=kind,
            maps=maps,
            sep=sep,
            encoding=encoding,
            on_bad_lines=on_bad_lines,
            report=report,
            strict=False,
        )
        seen.append((_local_path(path) if _is_local(str(path)) else Path(str(path)), kind, columns))
        return df

    tx = None if texts is None else read(texts, "texts")
    inter = None if interactions is None else read(interactions, "interactions")
    items_df = None if items is None else read(items, "items")
    users_df = None if users is None else read(users, "users")
    _check_mapping_used(maps, seen)
    if inter is None:
        assert tx is not None
        inter = interactions_from_texts(tx)
    if tx is not None and drop_duplicate_texts:
        tx = dedupe_texts(tx, report=report)
    first = interactions if interactions is not None else texts
    return build_spark_dataset(
        inter,
        tx,
        items_df,
        users_df,
        name=name or Path(str(first)).name.split(".")[0],
        duplicates=duplicates,
        orphan_texts=orphan_texts,
        report=report,
    )


def from_dataset(spark: Any, dataset: Dataset, *, n_partitions: int | None = None) -> SparkDataset:
    """A validated local :class:`Dataset` as a :class:`SparkDataset` (nothing dropped again)."""
    import pandas as pd
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

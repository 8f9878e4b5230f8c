"""Low-level file reading shared by every loader.

Format detection from the file name, gzip, encodings, and the translation of pandas,
json and gzip failures into :class:`~usergroups.errors.DataError` messages that name the
file, say what was found and how to fix it.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import logging
import re
import warnings
import zlib
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from usergroups.data.model import DataReport
from usergroups.datasets.source import BadLinePolicy
from usergroups.errors import DataError

__all__ = [
    "BadLinePolicy",
    "FileFormat",
    "check_file",
    "check_policy",
    "decode_text",
    "detect_format",
    "read_bytes",
    "read_csv",
    "read_json_records",
]

logger = logging.getLogger(__name__)

FileFormat = Literal["csv", "tsv", "parquet", "jsonl"]

FORMATS: tuple[FileFormat, ...] = ("csv", "tsv", "parquet", "jsonl")
_SUFFIXES: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
}
_GZIP_MAGIC = b"\x1f\x8b"
_SKIPPED_LINE = re.compile(r"Skipping line (\d+)")


def check_policy(on_bad_lines: str) -> None:
    """Raise :class:`DataError` unless ``on_bad_lines`` is ``'error'`` or ``'skip'``."""
    if on_bad_lines not in ("error", "skip"):
        raise DataError(f"on_bad_lines={on_bad_lines!r} is not one of 'error', 'skip'")


def check_file(path: str | Path) -> Path:
    """Return ``path`` as a :class:`Path`; raise :class:`DataError` if it is missing or empty."""
    p = Path(path).expanduser()
    if not p.exists():
        hint = ""
        if p.parent.is_dir():
            near = sorted(q.name for q in p.parent.iterdir() if not q.name.startswith("."))[:8]
            hint = f"; {str(p.parent)!r} holds {near}" if near else f"; {str(p.parent)!r} is empty"
        raise DataError(f"file not found: {str(p)!r}{hint}. Check the path")
    if not p.is_file():
        raise DataError(f"{str(p)!r} is not a file (a directory?); pass the path of a data file")
    if p.stat().st_size == 0:
        raise DataError(f"{str(p)!r} is empty (0 bytes); pass a file with a header and rows")
    return p


def detect_format(path: Path, fmt: str | None = None) -> tuple[FileFormat, bool]:
    """Return ``(format, gzipped)`` for ``path`` from its suffixes (``.csv.gz`` and so on).

    ``fmt`` overrides the format; gzip is then still detected from ``.gz`` or the magic bytes.
    """
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    if fmt is not None:
        if fmt not in FORMATS:
            raise DataError(f"format={fmt!r} is not one of {', '.join(map(repr, FORMATS))}")
        if not gz and path.is_file():
            with path.open("rb") as fh:
                gz = fh.read(2) == _GZIP_MAGIC
        return fmt, gz
    found = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if found is None:
        raise DataError(
            f"cannot tell the format of {str(path)!r} from its name; supported suffixes are "
            f"{', '.join(sorted(_SUFFIXES))} (each optionally followed by .gz). "
            "Rename the file or pass format='csv' / 'tsv' / 'parquet' / 'jsonl'"
        )
    return found, gz


def read_bytes(path: Path, gz: bool) -> bytes:
    """The file's bytes, decompressed when ``gz``; a damaged gzip raises :class:`DataError`."""
    if not gz:
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{str(path)!r} is not a valid gzip file ({exc}); the download may be incomplete. "
            "Download it again, or drop the .gz suffix if the file is not compressed"
        ) from exc


def _resolve_encoding(head: bytes, encoding: str | None) -> str:
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise DataError(
                f"encoding={encoding!r} is not a known text encoding; "
                "use e.g. 'utf-8', 'utf-8-sig', 'latin-1', 'gb18030'"
            ) from None
        return encoding
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    # utf-8-sig reads plain UTF-8 too and drops a byte-order mark when there is one
    return "utf-8-sig"


def _decode_error(path: Path, raw: bytes, encoding: str, exc: UnicodeDecodeError) -> DataError:
    start = exc.start
    line = raw.count(b"\n", 0, start) + 1
    bad = raw[start : start + 4]
    where = "after decompression, " if path.suffix.lower() == ".gz" else ""
    return DataError(
        f"{str(path)!r} is not valid {encoding}: the byte(s) {bad!r} at byte offset {start} "
        f"({where}line {line}) cannot be decoded ({exc.reason}). If the file is in another "
        "encoding, pass it, e.g. encoding='latin-1' (or --encoding latin-1)"
    )


def decode_text(path: Path, raw: bytes, encoding: str | None) -> str:
    """Decode ``raw`` (the bytes of ``path``), UTF-8 with or without BOM unless told otherwise."""
    enc = _resolve_encoding(raw[:4], encoding)
    try:
        text = raw.decode(enc)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, raw, enc, exc) from exc
    return text[1:] if text.startswith("\ufeff") else text


def _sep_name(sep: str) -> str:
    return "tab" if sep == "\t" else repr(sep)


def _head(path: Path, gz: bool) -> bytes:
    """The first bytes of the (decompressed) file, to spot a byte-order mark."""
    try:
        with gzip.open(path, "rb") if gz else path.open("rb") as fh:
            return fh.read(4)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{str(path)!r} is not a valid gzip file ({exc}); the download may be incomplete. "
            "Download it again, or drop the .gz suffix if the file is not compressed"
        ) from exc


def read_csv(
    path: Path,
    *,
    gz: bool,
    sep: str,
    encoding: str | None,
    on_bad_lines: BadLinePolicy = "error",
    report: DataReport | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`pandas.read_csv` with every failure turned into a :class:`DataError`.

    With ``on_bad_lines="skip"`` rows with the wrong number of fields are skipped and
    counted in ``report`` under the file name.
    """
    check_policy(on_bad_lines)
    enc = _resolve_encoding(_head(path, gz), encoding)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            df = pd.read_csv(
                path,
                sep=sep,
                encoding=enc,
                compression="gzip" if gz else None,
                on_bad_lines="warn" if on_bad_lines == "skip" else "error",
                **kwargs,
            )
    except pd.errors.EmptyDataError as exc:
        raise DataError(
            f"{str(path)!r} holds no data (no header, no rows); pass a file with a header and rows"
        ) from exc
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{str(path)!r} could not be parsed as {_sep_name(sep)}-separated text: "
            f"{str(exc).strip()}. Check the separator (sep=...) and quoting, or pass "
            "on_bad_lines='skip' to skip and count malformed rows"
        ) from exc
    except UnicodeDecodeError as exc:
        raw = read_bytes(path, gz)
        try:
            raw.decode(enc)
        except UnicodeDecodeError as exact:
            raise _decode_error(path, raw, enc, exact) from exc
        raise _decode_error(path, raw, enc, exc) from exc
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{str(path)!r} is not a valid gzip file ({exc}); download it again"
        ) from exc
    except ValueError as exc:
        # e.g. usecols naming a column the header lacks; callers check columns first
        raise DataError(f"{str(path)!r} could not be read: {exc}") from exc
    skipped: list[int] = []
    for w in caught:
        if issubclass(w.category, pd.errors.ParserWarning):
            skipped.extend(int(n) for n in _SKIPPED_LINE.findall(str(w.message)))
        else:  # not ours to swallow: re-emit unrelated warnings
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if skipped:
        (report if report is not None else DataReport()).add(
            path.name,
            len(skipped),
            f"dropped: row(s) with the wrong number of fields (first: line {skipped[0]})",
        )
    return df


def read_json_records(
    path: Path,
    *,
    gz: bool,
    encoding: str | None,
    on_bad_lines: BadLinePolicy = "error",
    report: DataReport | None = None,
) -> list[dict[str, Any]]:
    """Parse a JSON-lines file (or one JSON array of objects) into a list of dicts.

    Blank lines are ignored. A line that is not a JSON object raises :class:`DataError`
    naming the file and line, or with ``on_bad_lines="skip"`` is skipped and counted in
    ``report``.
    """
    check_policy(on_bad_lines)
    text = decode_text(path, read_bytes(path, gz), encoding)
    stripped = text.lstrip()
    if not stripped:
        raise DataError(f"{str(path)!r} holds only whitespace; pass a file with one JSON per line")
    if stripped.startswith("["):
        return _read_json_array(path, stripped)
    records: list[dict[str, Any]] = []
    bad: list[int] = []
    loads = json.loads
    # split on "\n" only: str.splitlines would also split on U+2028 inside JSON strings
    for lineno, line in enumerate(text.split("\n"), start=1):
        try:
            obj = loads(line)
        except json.JSONDecodeError as exc:
            if not line.strip():
                continue
            if on_bad_lines == "error":
                raise DataError(
                    f"{str(path)!r} line {lineno} is not valid JSON ({exc.msg} at column "
                    f"{exc.colno}): {line[:80]!r}. Fix or remove the line, or pass "
                    "on_bad_lines='skip' to skip and count bad lines"
                ) from exc
            bad.append(lineno)
            continue
        if isinstance(obj, dict):
            records.append(obj)
        elif on_bad_lines == "error":
            raise DataError(
                f"{str(path)!r} line {lineno} is JSON but not an object "
                f"(got {type(obj).__name__}: {line[:80]!r}); every line must be one "
                "{...} record. Fix the line or pass on_bad_lines='skip'"
            )
        else:
            bad.append(lineno)
    if bad:
        (report if report is not None else DataReport()).add(
            path.name,
            len(bad),
            f"dropped: line(s) that are not JSON objects (first: line {bad[0]})",
        )
    if not records:
        raise DataError(f"{str(path)!r} holds no JSON records; pass a file with one object a line")
    return records


def _read_json_array(path: Path, text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{str(path)!r} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}); fix the file or convert it to JSON lines (one object a line)"
        ) from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(
            f"{str(path)!r} holds a JSON array that is not a list of objects; "
            "pass JSON lines (one {...} record a line) or an array of records"
        )
    if not data:
        raise DataError(f"{str(path)!r} holds an empty JSON array; pass a file with records")
    return data


def parquet_frame(path: Path, gz: bool, columns: list[str] | None) -> pd.DataFrame:
    """Read (some ``columns`` of) a Parquet file; damaged files raise :class:`DataError`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source: Path | io.BytesIO = io.BytesIO(read_bytes(path, gz)) if gz else path
    try:
        table = pq.read_table(source, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{str(path)!r} could not be read as Parquet ({exc}); check that it is a complete "
            "Parquet file or pass format='csv' / 'jsonl'"
        ) from exc
    return table.to_pandas()


def parquet_columns(path: Path, gz: bool) -> list[str]:
    """The column names of a Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source: Path | io.BytesIO = io.BytesIO(read_bytes(path, gz)) if gz else path
    try:
        return list(pq.read_schema(source).names)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{str(path)!r} could not be read as Parquet ({exc}); check that it is a complete "
            "Parquet file or pass format='csv' / 'jsonl'"
        ) from exc

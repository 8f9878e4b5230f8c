"""Render tables for the terminal, Markdown and JSON without extra dependencies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

# numpy and pandas are imported where a table is rendered, never at import: the CLI's
# start (``--help``, errors of usage) stays cheap (issue 25)

__all__ = ["render", "text_table"]

Format = Literal["table", "json", "markdown"]


def _cell(value: Any, width: int) -> str:
    import numpy as np

    if isinstance(value, list | tuple | np.ndarray):
        value = ", ".join(str(v) for v in value)
    elif isinstance(value, float | np.floating):
        value = f"{value:.4g}"
    s = str(value).replace("\n", " ")
    return s if len(s) <= width else s[: width - 1] + "…"


def text_table(df: pd.DataFrame, *, max_width: int = 60) -> str:
    """A plain aligned table; long cells are cut with an ellipsis."""
    cols = list(df.columns)
    rows = [[_cell(v, max_width) for v in row] for row in df.itertuples(index=False)]
    widths = [max([len(str(c))] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    line = "  ".join(str(c).ljust(w) for c, w in zip(cols, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, sep, *body])


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    out = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        out.append("| " + " | ".join(_cell(v, 200).replace("|", "\\|") for v in row) + " |")
    return "\n".join(out)


def _jsonable(v: Any) -> Any:
    import numpy as np

    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def render(df: pd.DataFrame, fmt: Format, *, columns: Sequence[str] | None = None) -> str:
    """Render ``df`` as ``table``, ``markdown`` or ``json`` (a list of records)."""
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    if fmt == "json":
        records = [{k: _jsonable(v) for k, v in r.items()} for r in df.to_dict(orient="records")]
        return json.dumps(records, indent=2, ensure_ascii=False)
    if fmt == "markdown":
        return _markdown(df)
    return text_table(df)

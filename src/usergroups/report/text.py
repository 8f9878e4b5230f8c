"""Plain-text summaries of profile fields, for the terminal and Markdown tables.

Examples
--------
>>> describe_ratings({"rating_mean": 4.1, "population_rating_mean": 4.5,
...                   "rating_low_share": 0.1, "population_rating_low_share": 0.05})
'mean 4.10 (all 4.50), low 10% (all 5%)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from usergroups.profiling.item_names import shown_name

__all__ = ["describe_attributes", "describe_items", "describe_ratings", "summary_table"]


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _list(value: Any) -> list[Any]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return list(value)


def describe_ratings(row: Mapping[str, Any]) -> str:
    """``mean 4.10 (all 4.50), low 10% (all 5%)``, or ``""`` without ratings."""
    mean, pmean = _num(row.get("rating_mean")), _num(row.get("population_rating_mean"))
    low, plow = _num(row.get("rating_low_share")), _num(row.get("population_rating_low_share"))
    if mean is None:
        return ""
    out = f"mean {mean:.2f}" + (f" (all {pmean:.2f})" if pmean is not None else "")
    if low is not None:
        out += f", low {100 * low:.0f}%" + (f" (all {100 * plow:.0f}%)" if plow is not None else "")
    return out


def describe_attributes(row: Mapping[str, Any], n: int = 6) -> str:
    """``gender F 36% (all 29%); occupation student 31% (all 21%)``."""
    parts = []
    for a in _list(row.get("attributes"))[:n]:
        share = _num(a.get("share")) or 0.0
        pop = _num(a.get("population_share")) or 0.0
        parts.append(
            f"{a.get('attribute')} {a.get('value')} {100 * share:.0f}% (all {100 * pop:.0f}%)"
        )
    return "; ".join(parts)


def describe_items(row: Mapping[str, Any], n: int = 5) -> list[str]:
    """Top items by title, else by the name derived from their reviews (marked
    ``[from reviews]``), else by id.

    Items come best first by ``top_item_lifts``: the lift, 90% lower bound."""
    items = _list(row.get("top_items"))
    titles = _list(row.get("top_item_titles"))
    terms = _list(row.get("top_item_terms"))
    out = []
    for k, item in enumerate(items[:n]):
        title = titles[k] if k < len(titles) else ""
        term = terms[k] if k < len(terms) else ""
        out.append(title or shown_name(str(item), term, "reviews" if term else ""))
    return out


def describe_stability(value: Any, unstable: Any) -> str:
    """``0.91``, ``0.41 unstable``, or ``""`` when the group's stability was not measured."""
    v = _num(value)
    return "" if v is None else f"{v:.2f}" + (" unstable" if unstable else "")


def summary_table(groups: pd.DataFrame, *, text_chars: int = 160) -> pd.DataFrame:
    """One readable row per group: label, keywords, categories, items, ratings, members, text."""
    rows = []
    for r in groups.sort_values("group_id").to_dict("records"):
        row = {str(k): v for k, v in r.items()}
        texts = _list(row.get("representative_texts"))
        text = str(texts[0]) if texts else ""
        if len(text) > text_chars:
            text = text[: text_chars - 1] + "…"
        llm = row.get("llm_label")
        out: dict[str, Any] = {
            "group_id": row["group_id"],
            "size": row["size"],
            "share": row["share"],
            "label": row.get("label", ""),
        }
        stability = describe_stability(row.get("stability"), row.get("unstable"))
        if stability:
            out["stability"] = stability
        if isinstance(llm, str) and llm:
            out["llm_label"] = llm
        out.update(
            {
                "keywords": _list(row.get("keywords"))[:8],
                "categories": _list(row.get("top_categories")),
                "top_items": describe_items(row),
                "ratings": describe_ratings(row),
                "members": describe_attributes(row),
                "typical text": text,
            }
        )
        rows.append(out)
    frame = pd.DataFrame(rows)
    # columns that say nothing for this data (no categories, no attributes) are left out
    for col in ("categories", "ratings", "members", "typical text"):
        if col in frame and not frame[col].map(bool).any():
            frame = frame.drop(columns=col)
    return frame

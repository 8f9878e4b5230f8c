"""The self-contained HTML report: one file, Plotly's JavaScript inline, no external requests.

Every string that comes from data (labels, keywords, titles, user texts, ids) goes through
:func:`html.escape`; Plotly escapes ``</`` in the figures' JSON itself.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from usergroups.report.figures import group_colour, plot_k_curve, plot_map, plot_sizes

__all__ = ["display_label", "render_html"]

_CSS = """
:root { --fg: #1d2430; --muted: #5b6472; --line: #e3e6eb; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  "Noto Sans", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: var(--muted); }
main { padding: 18px 28px 40px; max-width: 1400px; margin: 0 auto; }
section { margin-bottom: 22px; }
h2 { font-size: 18px; margin: 18px 0 10px; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
.row { display: grid; grid-template-columns: 3fr 2fr; gap: 16px; }
@media (max-width: 1000px) { .row { grid-template-columns: 1fr; } }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 14px; }
.card { background: #fff; border: 1px solid var(--line); border-left: 6px solid var(--c);
  border-radius: 8px; padding: 12px 14px; }
.card h3 { margin: 0; font-size: 16px; }
.card .sub { color: var(--muted); margin: 2px 0 8px; }
.card .desc { margin: 4px 0 8px; font-style: italic; }
.card h4 { margin: 10px 0 4px; font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); }
.chip { display: inline-block; background: #eef1f5; border-radius: 10px; padding: 1px 8px;
  margin: 0 4px 4px 0; font-size: 12.5px; }
.chip small { color: var(--muted); }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
td, th { text-align: left; padding: 3px 6px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
blockquote { margin: 4px 0; padding: 4px 8px; border-left: 3px solid var(--line);
  color: #333; font-size: 12.5px; background: #fafbfc; }
.up { color: #1a7f37; } .down { color: #b42318; }
.muted { color: var(--muted); }
footer { color: var(--muted); font-size: 12px; padding: 0 28px 24px; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _list(value: Any) -> list[Any]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return list(value)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _pct(v: float | None, digits: int = 0) -> str:
    return "–" if v is None else f"{100 * v:.{digits}f}%"


def display_label(row: Mapping[str, Any]) -> str:
    """The LLM label where there is one, else the keyword label."""
    llm = row.get("llm_label")
    if isinstance(llm, str) and llm.strip():
        return llm
    return str(row.get("label") or f"group {row.get('group_id')}")


def _delta(value: float | None, base: float | None, *, pct: bool) -> str:
    if value is None or base is None:
        return ""
    diff = value - base
    if abs(diff) < (0.005 if pct else 0.05):
        return ' <span class="muted">(≈ all)</span>'
    cls = "up" if diff > 0 else "down"
    shown = f"{100 * diff:+.0f} pts" if pct else f"{diff:+.2f}"
    return f' <span class="{cls}">({shown} vs all)</span>'


def _sub_interests_html(subs: Sequence[Mapping[str, Any]]) -> str:
    """A segment's sub-interests as a drill-down (closed ``<details>``): size, share of the
    segment, stability (marked when unstable), keywords against the siblings, top items."""
    if not subs:
        return ""
    rows = [
        f"<details><summary>Sub-interests ({len(subs)})</summary>",
        '<table><tr><th>sub-interest</th><th class="num">users</th>'
        '<th class="num">stability</th><th>what sets it apart</th><th>top items</th></tr>',
    ]
    for sub in subs:
        stability = _num(sub.get("stability"))
        shown = "" if stability is None else f"{stability:.2f}"
        if sub.get("unstable"):
            shown += ' <span class="down">unstable</span>'
        titles = _list(sub.get("top_item_titles"))
        items = [t or i for t, i in zip(titles, _list(sub.get("top_items")), strict=False)]
        rows.append(
            f"<tr><td>{_e(sub.get('label', ''))}</td>"
            f'<td class="num">{int(sub.get("size", 0)):,} ({_pct(_num(sub.get("share")))})</td>'
            f'<td class="num">{shown}</td>'
            f"<td>{_e(', '.join(map(str, _list(sub.get('keywords'))[:6])))}</td>"
            f"<td>{_e('; '.join(map(str, items[:3])))}</td></tr>"
        )
    rows.append("</table></details>")
    return "\n".join(rows)


def _card(row: Mapping[str, Any], low_rating: float, subs: Sequence[Mapping[str, Any]] = ()) -> str:
    """A group's card: its name and size, then each part of its profile it has, then its
    sub-interests."""
    gid = int(row["group_id"])
    parts = [f'<article class="card" id="group-{gid}" style="--c: {group_colour(gid)}">']
    parts += _card_head(gid, row)
    parts += _keyword_chips(row)
    parts += _category_chips(row)
    parts += _items_table(row)
    parts += _ratings_lines(row, low_rating)
    parts += _attributes_table(row)
    texts = _list(row.get("representative_texts"))
    if texts:
        parts.append("<h4>Representative texts</h4>")
        parts.extend(f"<blockquote>{_e(t)}</blockquote>" for t in texts)
    drill = _sub_interests_html(subs)
    if drill:
        parts.append(drill)
    parts.append("</article>")
    return "\n".join(parts)


def _card_head(gid: int, row: Mapping[str, Any]) -> list[str]:
    """The label, the size, the stability and the LLM's description."""
    parts = [f"<h3>{gid}. {_e(display_label(row))}</h3>"]
    sub = f"{int(row['size']):,} users · {_pct(_num(row.get('share')), 1)} of all"
    stability = _num(row.get("stability"))
    if stability is not None:
        # resampled Jaccard (issue 14): an unstable group is shown and marked, not hidden
        flag = ' <span class="down">unstable</span>' if row.get("unstable") else ""
        sub += f" · stability {stability:.2f}{flag}"
    if isinstance(row.get("llm_label"), str) and row.get("llm_label"):
        sub += f" · keywords: {_e(row.get('label', ''))}"
    parts.append(f'<p class="sub">{sub}</p>')
    if isinstance(row.get("llm_description"), str) and row.get("llm_description"):
        parts.append(f'<p class="desc">{_e(row["llm_description"])}</p>')
    return parts


def _keyword_chips(row: Mapping[str, Any]) -> list[str]:
    keywords = _list(row.get("keywords"))
    if not keywords:
        return []
    chips = [f'<span class="chip">{_e(k)}</span>' for k in keywords]
    return ["<h4>Distinctive words</h4><div>", *chips, "</div>"]


def _category_chips(row: Mapping[str, Any]) -> list[str]:
    cats = _list(row.get("top_categories"))
    if not cats:
        return []
    lifts = _list(row.get("top_category_lifts")) or [None] * len(cats)
    parts = ["<h4>Categories over-consumed</h4><div>"]
    for c, lift in zip(cats, lifts, strict=False):
        tail = f" <small>×{float(lift):.2f}</small>" if lift is not None else ""
        parts.append(f'<span class="chip">{_e(c)}{tail}</span>')
    parts.append("</div>")
    return parts


def _items_table(row: Mapping[str, Any]) -> list[str]:
    """The first 8 items over-consumed, by title, else the name derived from their reviews
    (marked), else their id."""
    items = _list(row.get("top_items"))
    if not items:
        return []
    titles = _list(row.get("top_item_titles")) or [""] * len(items)
    terms = _list(row.get("top_item_terms")) or [""] * len(items)
    lifts = _list(row.get("top_item_lifts")) or [None] * len(items)
    parts = [
        "<h4>Items over-consumed</h4><table><tr><th>item</th>"
        '<th class="num">lift, 90% lower bound</th></tr>'
    ]
    for i, item in enumerate(items[:8]):
        title = titles[i] if i < len(titles) else ""
        term = terms[i] if i < len(terms) else ""
        name = _e(title) if title else f"<code>{_e(item)}</code>"
        if not title and term:
            # a name derived from the item's reviews, marked so it is not read as a title
            name = (
                f'<span class="muted">[from reviews]</span> {_e(term)} '
                f'<small class="muted"><code>{_e(item)}</code></small>'
            )
        lift = lifts[i] if i < len(lifts) else None
        shown = "" if lift is None else f"×{float(lift):.2f}"
        parts.append(f'<tr><td>{name}</td><td class="num">{shown}</td></tr>')
    parts.append("</table>")
    return parts


def _ratings_lines(row: Mapping[str, Any], low_rating: float) -> list[str]:
    """The group's mean rating and share of low ratings, against everybody's."""
    mean, low = _num(row.get("rating_mean")), _num(row.get("rating_low_share"))
    pmean, plow = (
        _num(row.get("population_rating_mean")),
        _num(row.get("population_rating_low_share")),
    )
    if mean is None:
        return []
    return [
        "<h4>Ratings</h4><p>",
        f"mean {mean:.2f}{_delta(mean, pmean, pct=False)} · ",
        f"low (≤ {low_rating:g}) {_pct(low)}{_delta(low, plow, pct=True)}</p>",
    ]


def _attributes_table(row: Mapping[str, Any]) -> list[str]:
    """Member attributes over-represented in the group, with their share in all users."""
    attributes = _list(row.get("attributes"))
    if not attributes:
        return []
    parts = [
        "<h4>Members over-represented</h4><table><tr><th>attribute</th><th>value</th>"
        '<th class="num">group</th><th class="num">all users</th></tr>'
    ]
    for a in attributes:
        parts.append(
            f"<tr><td>{_e(a.get('attribute', ''))}</td><td>{_e(a.get('value', ''))}</td>"
            f'<td class="num">{_pct(_num(a.get("share")))}</td>'
            f'<td class="num">{_pct(_num(a.get("population_share")))}</td></tr>'
        )
    parts.append("</table>")
    return parts


def _evaluation_tables(evaluation: Mapping[str, Any]) -> str:
    """Tables of ``{"methods": {name: {metric: value}}}``, also under ``"cold"`` and the like."""
    sections: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(evaluation.get("methods"), Mapping):
        sections.append(("warm" if "cold" in evaluation else "", evaluation["methods"]))
    for key, value in evaluation.items():
        if isinstance(value, Mapping) and isinstance(value.get("methods"), Mapping):
            sections.append((str(key), value["methods"]))
    out: list[str] = []
    for name, methods in sections:
        rows = {m: v for m, v in methods.items() if isinstance(v, Mapping)}
        if not rows:
            continue
        metrics: list[str] = []
        for values in rows.values():
            metrics.extend(k for k in values if k not in metrics)
        head = "".join(f'<th class="num">{_e(m)}</th>' for m in metrics)
        if name:
            out.append(f"<h3>{_e(name)}</h3>")
        out.append(f'<div class="panel"><table><tr><th>method</th>{head}</tr>')
        for method, values in rows.items():
            cells = []
            for m in metrics:
                v = values.get(m)
                f = _num(v)
                shown = "" if v is None else (f"{f:.4f}" if f is not None else _e(v))
                cells.append(f'<td class="num">{shown}</td>')
            out.append(f"<tr><td>{_e(method)}</td>{''.join(cells)}</tr>")
        out.append("</table></div>")
    return "\n".join(out)


def _figure_html(fig: Any, *, first: bool) -> str:
    html_div: str = fig.to_html(
        full_html=False,
        include_plotlyjs=first,  # the library once, inline: the file works offline
        include_mathjax=False,
        config={"displaylogo": False, "responsive": True},
    )
    return html_div


def render_html(
    groups: pd.DataFrame,
    *,
    map_frame: pd.DataFrame | None,
    map_method: str = "",
    metrics: Mapping[str, Any] | None = None,
    versions: Mapping[str, Any] | None = None,
    evaluation: Mapping[str, Any] | None = None,
    title: str | None = None,
    low_rating: float = 2.0,
    sub_interests: pd.DataFrame | None = None,
) -> str:
    """The whole report as one HTML string.

    Parameters
    ----------
    groups : DataFrame
        The groups table (``GroupDiscovery.groups_`` or ``groups.parquet``).
    map_frame : DataFrame or None
        ``user_id, group_id, x, y``; no map without it.
    map_method : str
    metrics, versions : mapping, optional
        ``metrics.json`` and ``versions.json`` of the model directory.
    evaluation : mapping, optional
        ``evaluation.json``: ``{"methods": {name: {metric: value}}}``.
    title : str, optional
    low_rating : float
        The threshold of low ratings the profiles used (for the card text).
    sub_interests : DataFrame, optional
        ``GroupDiscovery.sub_interests_``: shown under each segment's card.
    """
    metrics = metrics or {}
    versions = versions or {}
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()} for r in groups.sort_values("group_id").to_dict("records")
    ]
    labels = {int(r["group_id"]): display_label(r) for r in records}
    dataset = str(metrics.get("dataset", "") or "")
    title = title or (f"User groups of {dataset}" if dataset else "User groups")
    facts = _facts(len(records), metrics, versions)
    divs = _figure_divs(groups, labels, map_frame, map_method, metrics)
    cards = [
        _card(r, low_rating, children)
        for r, children in zip(records, _children_of(records, sub_interests), strict=True)
    ]
    body = _body(divs, cards, metrics, evaluation)
    library = (versions.get("libraries") or {}).get("usergroups", "")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            # nothing in this file may load from the network
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
            'img-src data: blob:; font-src data:; connect-src data:">',
            f"<title>{_e(title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<header><h1>{_e(title)}</h1><p>{_e(' · '.join(facts))}</p></header>",
            "<main>",
            *body,
            "</main>",
            f"<footer>Written by usergroups {_e(library)}. "
            "One file, no external requests.</footer>",
            "</body></html>",
        ]
    )


def _children_of(
    records: Sequence[Mapping[str, Any]], sub_interests: pd.DataFrame | None
) -> list[list[dict[str, Any]]]:
    """Each segment's sub-interests, in the order of ``records``."""
    children: dict[int, list[dict[str, Any]]] = {}
    if sub_interests is not None and len(sub_interests):
        for r in sub_interests.to_dict("records"):
            children.setdefault(int(r["group_id"]), []).append({str(k): v for k, v in r.items()})
    return [children.get(int(r["group_id"]), []) for r in records]


def _facts(n_groups: int, metrics: Mapping[str, Any], versions: Mapping[str, Any]) -> list[str]:
    """The header's line: groups, users, items, texts, noise, silhouette, encoder, date."""
    data = metrics.get("data") or {}
    facts = [f"{n_groups} groups"]
    for key, what in (("n_users", "users"), ("n_items", "items"), ("n_texts", "texts")):
        if data.get(key):
            facts.append(f"{int(data[key]):,} {what}")
    if metrics.get("n_noise"):
        facts.append(f"{int(metrics['n_noise']):,} noise users")
    silhouette = _num(metrics.get("silhouette"))
    if silhouette is not None:
        facts.append(f"silhouette {silhouette:.3f}")
    if metrics.get("encoder"):
        facts.append(f"encoder {metrics['encoder']}")
    if versions.get("created"):
        facts.append(f"created {versions['created']}")
    return facts


def _figure_divs(
    groups: pd.DataFrame,
    labels: Mapping[int, str],
    map_frame: pd.DataFrame | None,
    map_method: str,
    metrics: Mapping[str, Any],
) -> dict[str, str]:
    """The plots (map, sizes, choice of K) that have data, as HTML; Plotly's library is
    inlined in the first."""
    figures: list[tuple[str, Any]] = []
    if map_frame is not None and len(map_frame):
        figures.append(("map", plot_map(map_frame, labels, method=map_method)))
    if labels:
        figures.append(("sizes", plot_sizes(groups, labels)))
    k_scores = metrics.get("k_scores") or {}
    if k_scores:
        chosen = metrics.get("n_groups")
        by_validation = metrics.get("k_selection") == "validation"
        curve = plot_k_curve(
            k_scores,
            int(chosen) if chosen else None,
            metric="validation NDCG@10" if by_validation else "silhouette",
            stability=metrics.get("k_stability"),
        )
        figures.append(("k", curve))
    return {name: _figure_html(fig, first=i == 0) for i, (name, fig) in enumerate(figures)}


def _body(
    divs: Mapping[str, str],
    cards: Sequence[str],
    metrics: Mapping[str, Any],
    evaluation: Mapping[str, Any] | None,
) -> list[str]:
    """The map and sizes side by side, the group cards, the choice of K, the evaluation."""
    body: list[str] = []
    if "map" in divs or "sizes" in divs:
        body.append('<section class="row">')
        for name in ("map", "sizes"):
            if name in divs:
                body.append(f'<div class="panel" id="plot-{name}">{divs[name]}</div>')
        body.append("</section>")
    body.append("<section><h2>Groups</h2>")
    body.append(
        '<p class="muted">Words, categories and items are those the group uses or consumes '
        "clearly more than everybody else (lift = group share ÷ population share; for items, "
        "the 90% lower confidence bound of the lift, so items few members bought rank lower); "
        "texts are the members' texts closest to the group's centre. Stability is how "
        "reliably the group comes back when 80 % of the users are re-clustered with a new "
        "seed (mean best Jaccard over resamples; below "
        f"{(metrics.get('stability') or {}).get('min_group_stability', 0.6):g} it is marked "
        "unstable).</p>"
    )
    body.append('<div class="cards">')
    body.extend(cards)
    body.append("</div></section>")
    if "k" in divs:
        body.append('<section><h2>Number of groups</h2><div class="panel" id="plot-k">')
        body.append(f"{divs['k']}</div></section>")
    if evaluation:
        tables = _evaluation_tables(evaluation)
        if tables:
            body.append(f"<section><h2>Evaluation</h2>{tables}</section>")
    return body

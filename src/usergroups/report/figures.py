"""The report's plots as Plotly figures: the map, group sizes and the choice-of-K curve.

Plots are functions outside any class (as in BERTopic), each taking plain tables, so they
can be used on their own: ``plot_map(frame).show()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from usergroups._deps import require

__all__ = ["NOISE_COLOUR", "PALETTE", "group_colour", "plot_k_curve", "plot_map", "plot_sizes"]

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#e6550d",
    "#31a354",
    "#ad494a",
    "#756bb1",
    "#843c39",
    "#d6616b",
    "#637939",
    "#8ca252",
    "#3182bd",
)
"""One colour per group (cycled past 20), shared by the plots and the group cards."""
NOISE_COLOUR = "#bbbbbb"


def group_colour(group_id: int) -> str:
    """The colour of a group in every plot and card; grey for noise (-1)."""
    return NOISE_COLOUR if group_id < 0 else PALETTE[group_id % len(PALETTE)]


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _go() -> Any:
    return require("plotly.graph_objects", "report", package="plotly")


def _layout(fig: Any, title: str, height: int) -> Any:
    fig.update_layout(
        title={"text": title, "x": 0.01},
        height=height,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        template="plotly_white",
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
    )
    return fig


def plot_map(frame: pd.DataFrame, labels: Mapping[int, str], *, method: str = "") -> Any:
    """Users on the 2-D map, one colour per group.

    Parameters
    ----------
    frame : DataFrame
        Columns ``user_id, group_id, x, y`` (as in ``map.parquet``).
    labels : mapping of group_id to label
    method : str
        ``"umap"`` or ``"pca"``, shown in the title.
    """
    go = _go()
    fig = go.Figure()
    for gid in sorted(frame["group_id"].unique(), key=lambda g: (g < 0, g)):
        part = frame[frame["group_id"] == gid]
        name = "noise" if gid < 0 else f"{gid}: {_short(labels.get(int(gid), ''))}"
        fig.add_trace(
            go.Scatter(
                x=part["x"].to_numpy(np.float64),
                y=part["y"].to_numpy(np.float64),
                mode="markers",
                name=name,
                text=part["user_id"].astype(str).tolist(),
                hovertemplate=f"%{{text}}<br>{name}<extra></extra>",
                marker={"size": 5, "opacity": 0.75, "color": group_colour(int(gid))},
            )
        )
    note = f"{method.upper()} of the user vectors · {len(frame):,} users" if method else None
    fig.update_xaxes(showticklabels=False, title=note, zeroline=False)
    fig.update_yaxes(showticklabels=False, title=None, zeroline=False)
    fig = _layout(fig, "Users by group", 560)
    fig.update_layout(legend={"itemsizing": "constant"})
    return fig


def plot_sizes(groups: pd.DataFrame, labels: Mapping[int, str]) -> Any:
    """Horizontal bars of group sizes, largest on top."""
    go = _go()
    g = groups.sort_values("group_id")
    ids = [int(v) for v in g["group_id"]]
    names = [f"{i}: {_short(labels.get(i, ''), 32)}" for i in ids]
    shares = [float(s) for s in g["share"]]
    fig = go.Figure(
        go.Bar(
            x=[int(v) for v in g["size"]],
            y=names,
            orientation="h",
            marker={"color": [group_colour(i) for i in ids]},
            text=[f"{int(n):,} ({100 * s:.1f}%)" for n, s in zip(g["size"], shares, strict=True)],
            textposition="auto",
            hovertemplate="%{y}: %{x} users<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="users")
    return _layout(fig, "Group sizes", max(260, 36 * len(ids) + 90))


def plot_k_curve(
    k_scores: Mapping[str, float | None],
    chosen: int | None = None,
    *,
    metric: str = "silhouette",
    stability: Mapping[str, float | None] | None = None,
) -> Any:
    """The score that chose the number of groups, by K, with the chosen number marked.

    ``metric`` names the score (``"silhouette"``, or ``"validation NDCG@10"`` when K was
    chosen on validation); ``stability`` (the resampled ARI of each K, issue 14) is drawn
    on a second axis, so the trade-off between the two is visible.
    """
    go = _go()
    pairs = sorted((int(k), v) for k, v in k_scores.items())
    ks = [k for k, _ in pairs]
    ys = [None if v is None else float(v) for _, v in pairs]
    fig = go.Figure(
        go.Scatter(
            x=ks,
            y=ys,
            mode="lines+markers",
            name=metric,
            line={"color": "#1f77b4"},
            hovertemplate=f"K=%{{x}}: {metric} %{{y:.4f}}<extra></extra>",
        )
    )
    if chosen is not None and chosen in ks:
        y = ys[ks.index(chosen)]
        if y is not None:
            fig.add_trace(
                go.Scatter(
                    x=[chosen],
                    y=[y],
                    mode="markers",
                    name=f"chosen K={chosen}",
                    marker={"size": 14, "color": "#d62728", "symbol": "star"},
                )
            )
    if stability:
        spairs = sorted((int(k), v) for k, v in stability.items() if v is not None)
        fig.add_trace(
            go.Scatter(
                x=[k for k, _ in spairs],
                y=[float(v) for _, v in spairs],
                mode="lines+markers",
                name="stability (ARI over resamples)",
                yaxis="y2",
                line={"color": "#2ca02c", "dash": "dot"},
                hovertemplate="K=%{x}: stability %{y:.2f}<extra></extra>",
            )
        )
        fig.update_layout(
            yaxis2={
                "title": "stability (ARI)",
                "overlaying": "y",
                "side": "right",
                "range": [0, 1.05],
            }
        )
    fig.update_xaxes(title="number of groups K", dtick=1)
    fig.update_yaxes(title=metric)
    return _layout(fig, "Choice of the number of groups", 360)

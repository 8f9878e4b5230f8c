"""Static PNGs of the report's plots (map, group sizes, choice of K) with matplotlib.

matplotlib draws without a browser, so the PNGs need nothing beyond the ``report`` extra
(Plotly's own PNG export, kaleido, would need a Chrome at run time).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from usergroups._deps import require
from usergroups.report.figures import group_colour

__all__ = ["save_k_curve_png", "save_map_png", "save_sizes_png"]

_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "Droid Sans Fallback")


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _figure(width: float, height: float) -> Any:
    require("matplotlib", "report")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=120, layout="constrained")


def _fonts(texts: list[str]) -> dict[str, Any]:
    """A font family that has Chinese glyphs, when the labels need one and one is installed."""
    if not any(_CJK.search(t) for t in texts):
        return {}
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for name in _CJK_FONTS:
        if name in names:
            return {"family": [name, "DejaVu Sans"]}
    return {}


def _save(fig: Any, path: Path) -> Path:
    from usergroups.persistence.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # without a CJK font matplotlib warns once per missing glyph; the boxes say enough
        warnings.filterwarnings(
            "ignore", message="Glyph .* missing from font", category=UserWarning
        )
        fig.savefig(tmp, format="png")
    path.chmod(0o644)
    return path


def save_map_png(
    frame: pd.DataFrame, labels: Mapping[int, str], path: Path, *, method: str = ""
) -> Path:
    """The user map as a PNG; ``frame`` has ``group_id, x, y``."""
    fig = _figure(10, 7)
    ax = fig.add_subplot()
    names = {
        int(g): ("noise" if g < 0 else f"{g}: {_short(labels.get(int(g), ''))}")
        for g in frame["group_id"].unique()
    }
    font = _fonts(list(names.values()))
    for gid in sorted(names, key=lambda g: (g < 0, g)):
        part = frame[frame["group_id"] == gid]
        ax.scatter(
            part["x"].to_numpy(np.float64),
            part["y"].to_numpy(np.float64),
            s=6,
            alpha=0.7,
            color=group_colour(gid),
            label=names[gid],
            linewidths=0,
        )
    ax.set_xticks([])
    ax.set_yticks([])
    title = "Users by group"
    if method:
        title += f" ({method.upper()} of the user vectors, {len(frame):,} points)"
    ax.set_title(title, loc="left")
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        markerscale=2.5,
        frameon=False,
        prop=font or None,
    )
    return _save(fig, path)


def save_sizes_png(groups: pd.DataFrame, labels: Mapping[int, str], path: Path) -> Path:
    """Horizontal bars of group sizes as a PNG."""
    g = groups.sort_values("group_id")
    ids = [int(v) for v in g["group_id"]]
    names = [f"{i}: {_short(labels.get(i, ''), 36)}" for i in ids]
    fig = _figure(9, max(2.5, 0.38 * len(ids) + 1.2))
    ax = fig.add_subplot()
    sizes = g["size"].to_numpy(np.int64)
    bars = ax.barh(range(len(ids)), sizes, color=[group_colour(i) for i in ids])
    ax.set_yticks(range(len(ids)), names, **_fonts(names))
    ax.invert_yaxis()
    ax.bar_label(
        bars,
        [f"{n:,} ({100 * s:.1f}%)" for n, s in zip(sizes, g["share"], strict=True)],
        padding=3,
        fontsize=8,
    )
    ax.set_xlabel("users")
    ax.set_xlim(0, sizes.max() * 1.2 if len(sizes) else 1)
    ax.set_title("Group sizes", loc="left")
    return _save(fig, path)


def save_k_curve_png(
    k_scores: Mapping[str, float | None],
    path: Path,
    *,
    chosen: int | None = None,
    metric: str = "silhouette",
) -> Path:
    """The curve K was chosen on (``metric``: the silhouette, or the validation NDCG@10)
    by number of groups as a PNG, the chosen number starred."""
    pairs = sorted((int(k), v) for k, v in k_scores.items() if v is not None)
    fig = _figure(7, 3.6)
    ax = fig.add_subplot()
    if pairs:
        ks, ys = zip(*pairs, strict=True)
        ax.plot(ks, ys, marker="o", color="#1f77b4", label=metric)
        if chosen in ks:
            ax.plot(
                [chosen],
                [ys[ks.index(chosen)]],
                marker="*",
                markersize=16,
                color="#d62728",
                linestyle="",
                label=f"chosen K={chosen}",
            )
        ax.set_xticks(list(ks))
        ax.legend(frameon=False)
    ax.set_xlabel("number of groups K")
    ax.set_ylabel(metric)
    ax.set_title("Choice of the number of groups", loc="left")
    return _save(fig, path)

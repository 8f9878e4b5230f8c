"""Write the report of a model directory: ``report.html``, or PNGs of its plots.

Examples
--------
>>> from usergroups import DiscoveryConfig, GroupDiscovery
>>> from usergroups.testing import make_planted
>>> import tempfile, pathlib
>>> planted = make_planted(n_users=40, n_groups=2, random_state=0)
>>> cfg = DiscoveryConfig.model_validate({"embedding": {"model": "hashing"},
...                                       "clustering": {"n_groups": 2}})
>>> model_dir = GroupDiscovery(cfg).fit(planted.dataset).save(
...     pathlib.Path(tempfile.mkdtemp()) / "m")
>>> write_report(model_dir).name
'report.html'
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from usergroups.errors import ModelDirectoryError
from usergroups.report.projection import MapMethod, has_umap, project_2d, read_map, write_map

if TYPE_CHECKING:
    from usergroups.pipeline import GroupDiscovery

__all__ = ["EVALUATION_FILE", "REPORT_FILE", "ensure_map", "write_pngs", "write_report"]

logger = logging.getLogger(__name__)

REPORT_FILE = "report.html"
EVALUATION_FILE = "evaluation.json"


def _load(model_dir: Path, model: GroupDiscovery | None) -> GroupDiscovery:
    if model is not None:
        return model
    from usergroups.pipeline import GroupDiscovery

    return GroupDiscovery.load(model_dir)


def ensure_map(
    model_dir: str | Path,
    model: GroupDiscovery | None = None,
    *,
    method: MapMethod = "auto",
    max_points: int = 20_000,
    random_state: int | None = None,
    recompute: bool = False,
) -> tuple[pd.DataFrame, str]:
    """The 2-D map of a model directory: read from ``map.parquet``, or computed and stored.

    Parameters
    ----------
    model_dir : path
    model : GroupDiscovery, optional
        The fitted model of ``model_dir`` if already in memory.
    method : {"auto", "umap", "pca"}
        A stored map made with another method than the one asked for is recomputed.
    max_points : int
        At most this many users on the map (a seeded sample).
    random_state : int, optional
        Defaults to the model's ``random_state``.
    recompute : bool
        Ignore a stored map.

    Returns
    -------
    frame : DataFrame
        ``user_id, group_id, x, y``.
    method : str
        The method used.
    """
    model_dir = Path(model_dir)
    stored = None if recompute else read_map(model_dir)
    if stored is not None:
        frame, used = stored
        if method in ("auto", used):
            return frame, used
    gd = _load(model_dir, model)
    seed = gd.config.random_state if random_state is None else random_state
    # UMAP costs ~30 s on the demo (most of it numba compiling); identical vectors and
    # settings give the same map, so it comes from the fit cache when reuse is on
    from usergroups.fitcache import fit_cache_for

    vectors = gd.user_vectors_
    fits = fit_cache_for(gd.config, len(vectors))
    rows, coords, used = fits.get_or_compute(
        "map",
        (vectors, method, max_points, seed, has_umap()),
        lambda: project_2d(vectors, method=method, max_points=max_points, random_state=seed),
    )
    user_ids = np.asarray(gd.user_ids_.ids)[rows]
    labels = np.asarray(gd.labels_)[rows]
    write_map(model_dir, user_ids, labels, coords, used)
    logger.info("map of %d users by %s written to %s", len(rows), used, model_dir)
    frame = pd.DataFrame(
        {"user_id": user_ids.astype(str), "group_id": labels, "x": coords[:, 0], "y": coords[:, 1]}
    )
    return frame, used


def _read_optional_json(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("%s is not readable JSON (%s); the report leaves it out", path, exc)
        return None


def write_report(
    model_dir: str | Path,
    out: str | Path | None = None,
    *,
    model: GroupDiscovery | None = None,
    map_method: MapMethod = "auto",
    max_points: int = 20_000,
    title: str | None = None,
) -> Path:
    """Write the self-contained HTML report of a model directory, atomically.

    Parameters
    ----------
    model_dir : path
        A directory written by :meth:`GroupDiscovery.save`. Its ``metrics.json`` gives the
        choice-of-K curve; an ``evaluation.json`` there (``{"methods": {name: {metric:
        value}}}``) is shown as a table.
    out : path, optional
        Defaults to ``model_dir/report.html``.
    model : GroupDiscovery, optional
        The fitted model if already in memory (saves loading it).
    map_method : {"auto", "umap", "pca"}
    max_points : int
        Users shown on the map at most.
    title : str, optional

    Returns
    -------
    Path
        The report file.
    """
    from usergroups.persistence.atomic import atomic_path
    from usergroups.persistence.model_dir import read_json
    from usergroups.report.html import render_html

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirectoryError(
            f"model directory {model_dir} does not exist; create one with "
            "`usergroups discover ... --out DIR`"
        )
    gd = _load(model_dir, model)
    frame, used = ensure_map(model_dir, gd, method=map_method, max_points=max_points)
    page = render_html(
        gd.groups_,
        map_frame=frame,
        map_method=used,
        metrics=getattr(gd, "metrics_", {}) or {},
        versions=read_json(model_dir, "versions.json"),
        evaluation=_read_optional_json(model_dir / EVALUATION_FILE),
        title=title,
        low_rating=gd.config.profile.low_rating,
        sub_interests=getattr(gd, "sub_interests_", None),
    )
    path = Path(out) if out is not None else model_dir / REPORT_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    path.chmod(0o644)
    logger.info("report written to %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def write_pngs(
    model_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    model: GroupDiscovery | None = None,
    map_method: MapMethod = "auto",
    max_points: int = 20_000,
) -> list[Path]:
    """Write ``map.png``, ``sizes.png`` and ``k_curve.png`` (when there is a curve).

    Parameters
    ----------
    model_dir : path
    out_dir : path, optional
        Defaults to ``model_dir/report-png``.

    Returns
    -------
    list of Path
    """
    from usergroups.report.html import display_label
    from usergroups.report.png import save_k_curve_png, save_map_png, save_sizes_png

    model_dir = Path(model_dir)
    gd = _load(model_dir, model)
    folder = Path(out_dir) if out_dir is not None else model_dir / "report-png"
    frame, used = ensure_map(model_dir, gd, method=map_method, max_points=max_points)
    groups = gd.groups_
    labels = {
        int(r["group_id"]): display_label({str(k): v for k, v in r.items()})
        for r in groups.to_dict("records")
    }
    paths = [save_map_png(frame, labels, folder / "map.png", method=used)]
    if len(groups):
        paths.append(save_sizes_png(groups, labels, folder / "sizes.png"))
    metrics = getattr(gd, "metrics_", {}) or {}
    if metrics.get("k_scores"):
        chosen = metrics.get("n_groups")
        paths.append(
            save_k_curve_png(
                metrics["k_scores"],
                folder / "k_curve.png",
                chosen=int(chosen) if chosen else None,
                # the same label as the HTML report's curve
                metric="validation NDCG@10"
                if metrics.get("k_selection") == "validation"
                else "silhouette",
            )
        )
    return paths

"""Write a refitted model together with its report (:func:`save_refit`).

It lives here rather than in :mod:`usergroups.refit` because it writes ``report.html``
and the map: the refit itself sits in a lower layer than the report and must not import
it (the layer contracts in ``pyproject.toml``, ``make lint``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from usergroups.errors import MissingDependencyError

if TYPE_CHECKING:
    from usergroups.refit import RefitReport

__all__ = ["save_refit"]

logger = logging.getLogger(__name__)


def save_refit(
    model: Any,
    report: RefitReport,
    directory: str | Path,
    *,
    force: bool = False,
    with_report: bool = True,
    map_method: Any = None,
) -> Path:
    """Write a refitted model with ``refit.json``, ``map.parquet`` and ``report.html``.

    All of it is written into a temporary directory that replaces ``directory`` in one
    rename (:func:`usergroups.persistence.atomic.atomic_dir`), so a reader sees the old
    model with its report or the new one with its report, never a mix. The map uses the
    method of the map it replaces (when there was one), so the picture stays comparable.
    Without the ``report`` extra the report is left out with a warning.

    Parameters
    ----------
    model : GroupDiscovery
        The refitted model.
    report : RefitReport
    directory : path
        The model directory (usually the old model's, replaced).
    force : bool
        See :func:`usergroups.persistence.save_model`.
    with_report : bool
        Write ``map.parquet`` and ``report.html``.
    map_method : {"auto", "umap", "pca"}, optional
        Defaults to the old map's method, else "auto".

    Returns
    -------
    Path
        ``directory``.
    """
    import json

    from usergroups.persistence import check_output_dir, save_model
    from usergroups.persistence.atomic import atomic_dir
    from usergroups.report.projection import read_map
    from usergroups.report.writer import write_report

    directory = Path(directory)
    check_output_dir(directory, force=force)
    if map_method is None:
        stored = read_map(directory) if (directory / "map.parquet").exists() else None
        map_method = stored[1] if stored is not None and stored[1] in ("umap", "pca") else "auto"
    with atomic_dir(directory) as tmp:
        save_model(model, tmp, force=True)
        (tmp / "refit.json").write_text(
            json.dumps(report.to_dict(max_moves=None), indent=2) + "\n", encoding="utf-8"
        )
        if with_report:
            try:
                write_report(tmp, model=model, map_method=map_method)
            except MissingDependencyError as exc:
                logger.warning("report.html not written after the refit: %s", exc)
    return directory

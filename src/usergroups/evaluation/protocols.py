"""The protocols of ``DESIGN.md`` run end to end: any group model against every baseline.

:func:`run_protocols` makes each protocol's split, fits the model on the training part
only, scores it beside the baselines in the same run and measures the groups themselves
(clustering metrics, stability, a sweep over the number of groups). It knows nothing of
the pipeline: what it evaluates comes in through :class:`GroupModel`, which fits and
refits the model's stages, and :class:`FittedGroups`, what a fit leaves behind.
``usergroups.pipeline.GroupDiscovery`` is a :class:`FittedGroups`; the
:class:`GroupModel` that wraps it lives above the pipeline
(:class:`usergroups.report.benchmark.DiscoveryModel`).

Methods
-------
``Pop``, ``ItemKNN``, ``EASE``, ``ALS``, ``BPR``
    The baselines of :mod:`usergroups.evaluation.baselines` with their documented
    defaults, fitted on ``split.train``.
``SeedRecipe``
    The plain seed recipe: each user's frozen sentence vector (``FittedGroups.semantic_``)
    → scikit-learn ``KMeans`` with as many groups as the model → popularity within the
    group (unsmoothed, :class:`~usergroups.evaluation.GroupPopularityRecommender`). On the
    cold protocol a new user goes to the nearest centroid of the frozen vector of their
    query text (:meth:`GroupModel.encode`).
``UserGroups``
    The model as configured: warm users get their group's scores from the model's group
    recommender (``FittedGroups.recommender_``); a cold user gets
    ``FittedGroups.text_scores(text)``. Seen items are masked by the evaluator.
``Hybrid``
    Warm users' ``FittedGroups.blend_scores(group, seen items)``: the group's scores
    blended with the model's personal model, when it has one (``personal_``).

Every figure of a method comes from the scorer that method names; the K sweep's
``UserGroups_group_lift`` is ``UserGroups_NDCG@10 ÷ Pop_NDCG@10`` of the same scorer
(issue 12).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from usergroups._typing import IntVector
from usergroups.data import Dataset, IdVocab
from usergroups.errors import ConfigError, DataError
from usergroups.evaluation.baselines import (
    BASELINES,
    GroupPopularityRecommender,
    PopularityRecommender,
    make_baseline,
)
from usergroups.evaluation.clustering import (
    davies_bouldin,
    group_lift,
    noise_share,
    silhouette,
    stability,
)
from usergroups.evaluation.evaluate import evaluate_recommender, evaluate_scores
from usergroups.evaluation.metrics import bootstrap_interval, cooccurrence_reach
from usergroups.evaluation.splits import Split, cold_split, warm_split
from usergroups.linalg import unit_rows

__all__ = [
    "COLD_BASELINES",
    "COLD_METRICS",
    "DEFAULT_BASELINES",
    "K_SWEEP",
    "PROTOCOLS",
    "WARM_METRICS",
    "FittedGroups",
    "GroupModel",
    "GroupScorer",
    "alignment_summary",
    "intervals_of",
    "run_protocols",
]

logger = logging.getLogger(__name__)

PROTOCOLS: tuple[str, ...] = ("warm", "cold")
"""Protocols :func:`run_protocols` knows (``DESIGN.md``, "Evaluation protocols")."""

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

ScoreFn = Callable[[IntVector], npt.ArrayLike]


class GroupScorer(Protocol):
    """Item scores of whole groups (e.g. :class:`usergroups.recommend.GroupPopularity`)."""

    def group_scores(self, groups: IntVector) -> npt.NDArray[Any]:
        """Scores of shape (len(groups), n_items) in the model's item order; -1 = noise."""
        ...


class FittedGroups(Protocol):
    """What the protocols read from a fitted model; ``GroupDiscovery`` is one.

    Rows of the arrays are the model's own users (``user_ids_`` order), columns of the
    scores its own items (``item_ids_`` order); the protocols map both onto the split.
    """

    @property
    def user_ids_(self) -> IdVocab:
        """The users the model was fitted on, in row order."""
        ...

    @property
    def item_ids_(self) -> IdVocab:
        """The items the model scores, in column order."""
        ...

    @property
    def labels_(self) -> npt.NDArray[Any]:
        """Group of each user, shape (n_users,); negative = noise."""
        ...

    @property
    def n_groups_(self) -> int:
        """Number of groups."""
        ...

    @property
    def user_vectors_(self) -> npt.NDArray[Any]:
        """The vectors the groups were clustered on, shape (n_users, n_features)."""
        ...

    @property
    def semantic_(self) -> npt.NDArray[Any]:
        """Frozen sentence vectors of the users, shape (n_users, dim) (the seed recipe's)."""
        ...

    @property
    def seen_(self) -> Any:
        """Sparse training matrix of shape (n_users, n_items)."""
        ...

    @property
    def recommender_(self) -> GroupScorer:
        """The group recommender as configured (what warm ``UserGroups`` ranks)."""
        ...

    @property
    def personal_(self) -> object | None:
        """The personal model blended in by :meth:`blend_scores`; None when there is none."""
        ...

    @property
    def cold_weight_(self) -> float:
        """Weight of the text → item scores in :meth:`text_scores`."""
        ...

    @property
    def metrics_(self) -> Mapping[str, Any]:
        """What the fit reports: ``timings`` (with ``embedding`` seconds), ``alignment``."""
        ...

    def user_group_scores(self, rows: IntVector) -> npt.NDArray[Any]:
        """The group part of the scores of the model's users ``rows`` (the fine groups'
        mean, or the segment's popularity); shape (n, n_items). What warm ``UserGroups``
        ranks."""
        ...

    def blend_scores(
        self, groups: IntVector, seen: Any, *, group_part: npt.NDArray[Any] | None = None
    ) -> npt.NDArray[Any]:
        """Scores of users in ``groups`` who have seen ``seen``, with ``group_part`` as
        their group part when given; shape (n, n_items)."""
        ...

    def text_scores(self, texts: list[str]) -> npt.NDArray[Any]:
        """Scores of new users known by one text each; shape (n, n_items)."""
        ...


class GroupModel(Protocol):
    """What the protocols evaluate: a model that fits groups, and refits its parts.

    Examples
    --------
    See :class:`usergroups.report.benchmark.DiscoveryModel` (``GroupDiscovery``) and the
    stand-in model of ``tests/unit/evaluation/test_protocols.py``.
    """

    def fit(self, dataset: Dataset) -> FittedGroups:
        """Fit on ``dataset`` (a split's training part) and return the fitted model."""
        ...

    def regroup(
        self, fitted: FittedGroups, n_groups: int | None, random_state: int
    ) -> npt.ArrayLike:
        """Labels of ``fitted``'s users with the clustering alone refitted.

        On ``fitted.user_vectors_``, with ``n_groups`` groups (None: as the fit chose)
        and seed ``random_state``; shape (n_users,), negative = noise.
        """
        ...

    def group_recommender(self, fitted: FittedGroups, labels: IntVector) -> GroupScorer:
        """The model's group recommender as configured, fitted on ``fitted.seen_`` with
        ``labels`` (one per user of ``fitted``) instead of ``fitted.labels_``."""
        ...

    def encode(self, texts: list[str]) -> npt.NDArray[Any]:
        """Frozen sentence vectors of ``texts``, in the space of ``semantic_``."""
        ...

    def resampled_group_scores(
        self, fitted: FittedGroups, level: str, random_state: int
    ) -> ScoreFn:
        """The group part refitted on a random 80 % of ``fitted``'s users.

        ``level`` is ``"segments"`` or ``"fine"``; the returned function scores rows of
        ``fitted``'s users (every user placed into the resample's groups), shape
        (len(rows), n_items). Two seeds give two fits whose top-10 lists are compared
        (the stability of what we recommend).
        """
        ...


# --------------------------------------------------------------------------- evaluation


def run_protocols(
    dataset: Dataset,
    model: GroupModel,
    *,
    random_state: int = 0,
    protocols: Sequence[str] = PROTOCOLS,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    baseline_params: Mapping[str, Mapping[str, Any]] | None = None,
    stability_seeds: int = 5,
    k_sweep: Sequence[int] = K_SWEEP,
    min_test_users: int = 50,
) -> dict[str, Any]:
    """Measure ``model`` and every baseline on ``dataset``, protocol by protocol.

    Warm (leave-last-out): every method in ``baselines`` plus ``SeedRecipe``,
    ``UserGroups`` and ``Hybrid`` (see the module docstring), the group metrics of the
    model's clustering and a sweep over the number of groups. Cold (20 % of users known
    by one review): ``Pop``, ``SeedRecipe`` and ``UserGroups``. The model is fitted on
    each split's ``train_dataset()`` only, so it never sees a test item.

    Parameters
    ----------
    dataset : Dataset
        The full dataset; the splits are made here.
    model : GroupModel
        What is evaluated.
    random_state : int
        Seed of the seed recipe's k-means, of the sweep's refits and the first seed of
        the stability measure (the model's own seed, so the refits match its fit).
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
        user vectors with ``random_state + i``; 0 or 1 skips it.
    k_sweep : sequence of int
        Numbers of groups for the sweep (warm only; only the clustering is refitted).
        Values not below the number of users are left out.
    min_test_users : int
        A protocol with fewer test users is not evaluated (its figures would be noise).

    Returns
    -------
    dict
        JSON-ready: ``dataset``, ``protocol`` (``"warm"``, or ``"cold"`` when only cold
        runs), ``n_users``, ``n_items``; with warm, ``n_test_users``, ``methods``
        (name → metrics of :data:`WARM_METRICS`), ``groups`` (``method, n_groups,
        group_lift, seed_recipe_group_lift`` (both: unsmoothed group popularity ÷ Pop,
        :func:`~usergroups.evaluation.group_lift`), ``silhouette, davies_bouldin,
        stability_ari, stability_seeds, noise_share, largest_share``), ``k_sweep`` (list
        of ``k, n_groups, Pop_NDCG@10, UserGroups_NDCG@10, UserGroups_group_lift,
        SeedRecipe_NDCG@10, SeedRecipe_group_lift``: each lift is its method's NDCG@10 ÷
        ``Pop_NDCG@10``) and ``alignment`` (:func:`alignment_summary`); ``cold``
        (``n_users``, ``n_eligible_users``, ``n_groups``, ``assignment``, ``methods``, or
        ``skipped`` with the reason); ``seconds`` (``embedding``, ``fit`` of the model
        without embedding, ``evaluate`` (everything else), ``total`` and per-method fit +
        evaluation times under ``methods``).

    Raises
    ------
    ConfigError
        For an unknown protocol or baseline, or a bad count.
    DataError
        When the warm split has fewer than ``min_test_users`` test users.

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 56 lines.
    """
    started = time.perf_counter()
    protocols = _check_protocols(protocols)
    baselines = _check_baselines(baselines)
    for name, value in (
        ("stability_seeds", stability_seeds),
        ("min_test_users", min_test_users),
        ("random_state", random_state),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer; got {value!r}")
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
                model,
                random_state,
                baselines,
                params,
                stability_seeds,
                k_sweep,
                clock,
                min_test_users,
            )
        )
    if "cold" in protocols:
        result["cold"] = _run_cold(dataset, model, random_state, clock, min_test_users)
    total = time.perf_counter() - started
    result["seconds"] = {
        "embedding": round(clock.embedding, 3),
        "fit": round(clock.fit, 3),
        "evaluate": round(max(total - clock.embedding - clock.fit, 0.0), 3),
        "total": round(total, 3),
        "methods": {k: round(v, 3) for k, v in clock.methods.items()},
    }
    return result


class _Clock:
    """Where the time went: embedding, fitting the model, and each method."""

    def __init__(self) -> None:
        self.embedding = 0.0
        self.fit = 0.0
        self.methods: dict[str, float] = {}

    def add_fit(self, fitted: FittedGroups, wall: float) -> None:
        embedding = float((fitted.metrics_.get("timings") or {}).get("embedding", 0.0))
        self.embedding += embedding
        self.fit += max(wall - embedding, 0.0)

    def add_method(self, name: str, seconds: float) -> None:
        self.methods[name] = self.methods.get(name, 0.0) + seconds


def _fit(model: GroupModel, dataset: Dataset, clock: _Clock) -> FittedGroups:
    t = time.perf_counter()
    fitted = model.fit(dataset)
    clock.add_fit(fitted, time.perf_counter() - t)
    return fitted


def _run_warm(
    dataset: Dataset,
    model: GroupModel,
    random_state: int,
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
    fitted = _fit(model, split.train_dataset(), clock)
    labels = _to_split_users(split, fitted, fitted.labels_)
    methods, per_user, seed_labels = _warm_methods(
        split, fitted, baselines, params, random_state, clock
    )

    t = time.perf_counter()
    groups = _group_metrics(
        split, model, fitted, labels, seed_labels, stability_seeds, random_state
    )
    groups["lift"] = _lift_with_noise(
        split, model, fitted, labels, seed_labels, per_user, random_state
    )
    sweep = _k_sweep(split, model, fitted, k_sweep, methods["Pop"]["NDCG@10"], random_state)
    clock.add_method("groups", time.perf_counter() - t)
    return {
        "protocol": "warm",
        "n_test_users": split.n_test_users,
        "methods": methods,
        "groups": groups,
        "k_sweep": sweep,
        "alignment": alignment_summary(fitted),
        "reach": reach(split),
        "intervals": intervals_of(per_user, random_state),
    }


def _warm_methods(
    split: Split,
    fitted: FittedGroups,
    baselines: tuple[str, ...],
    params: dict[str, dict[str, Any]],
    random_state: int,
    clock: _Clock,
) -> tuple[dict[str, dict[str, float]], dict[str, npt.NDArray[np.float64]], IntVector]:
    """Every method measured on the warm split: the baselines, ``SeedRecipe``,
    ``UserGroups`` and, with a personal model, ``Hybrid``.

    Returns each method's :data:`WARM_METRICS`, its NDCG@10 per test user, and the seed
    recipe's labels of the split's users.
    """
    n_groups = max(fitted.n_groups_, 1)
    methods: dict[str, dict[str, float]] = {}
    per_user: dict[str, npt.NDArray[np.float64]] = {}

    def measure(name: str, score: ScoreFn) -> None:
        values: dict[str, npt.NDArray[np.float64]] = {}
        methods[name] = _pick(evaluate_scores(score, split, per_user=values), WARM_METRICS)
        per_user[name] = values["NDCG@10"]

    for name in baselines:
        t = time.perf_counter()
        rec = make_baseline(name, **params.get(name, {})).fit(split.train)
        measure(name, _recommender_scorer(rec, split))
        clock.add_method(name, time.perf_counter() - t)

    t = time.perf_counter()
    seed_labels = _to_split_users(
        split, fitted, _seed_recipe_kmeans(fitted.semantic_, n_groups, random_state).labels_
    )
    seed_rec = GroupPopularityRecommender(seed_labels).fit(split.train)
    measure("SeedRecipe", _recommender_scorer(seed_rec, split))
    clock.add_method("SeedRecipe", time.perf_counter() - t)

    t = time.perf_counter()
    measure("UserGroups", _warm_user_group_scorer(split, fitted))
    clock.add_method("UserGroups", time.perf_counter() - t)

    if fitted.personal_ is not None:
        t = time.perf_counter()
        measure("Hybrid", _warm_hybrid_scorer(split, fitted))
        clock.add_method("Hybrid", time.perf_counter() - t)
    return methods, per_user, seed_labels


def intervals_of(
    per_user: Mapping[str, npt.ArrayLike], random_state: int = 0
) -> dict[str, dict[str, Any]]:
    """95 % bootstrap intervals of each method's NDCG@10 over the test users, and of its
    ratio to Pop's.

    ``per_user`` maps a method to its NDCG@10 per test user; every method is resampled
    with the same seed (:func:`~usergroups.evaluation.metrics.bootstrap_interval`, 1,000
    resamples), so methods measured on the same users get comparable intervals. With a
    ``"Pop"`` entry, every other method also gets ``NDCG@10 ÷ Pop`` with a *paired*
    interval (:func:`~usergroups.evaluation.lift.ratio_interval`: the same resampled users
    in both means), the interval that says whether a gap to popularity is real.

    Returns
    -------
    dict
        Method → ``{"NDCG@10": {"mean", "low", "high", "se", "n"}}``, plus
        ``"NDCG@10 ÷ Pop": {"value", "low", "high", ...}`` beside Pop.
    """
    from usergroups.evaluation.lift import ratio_interval

    pop = per_user.get("Pop")
    out: dict[str, dict[str, Any]] = {}
    for name, values in per_user.items():
        out[name] = {"NDCG@10": bootstrap_interval(values, random_state=random_state).to_dict()}
        if pop is not None and name != "Pop":
            out[name]["NDCG@10 ÷ Pop"] = ratio_interval(values, pop, random_state=random_state)
    return out


def _recommender_scorer(recommender: Any, split: Split) -> ScoreFn:
    """``recommender.score`` of the split's test users at positions ``rows``."""
    users = split.test_users

    def score(rows: IntVector) -> npt.ArrayLike:
        return np.asarray(recommender.score(users[rows]))

    return score


def reach(split: Split) -> dict[str, float]:
    """How reachable the warm test items are from training: what item-to-item methods
    can possibly find.

    ``in_training``: share of test users whose held-out item has a training interaction
    (anyone's); ``cooccurs``: share whose held-out item was consumed, in training, by
    someone who also consumed one of the user's own training items. An item-item model
    (ItemKNN, EASE) scores a held-out item above zero only for the second kind; on a
    random sample of reviews (not a k-core) it is tiny, and such models can fall far
    below popularity for lack of signal rather than for a bug.
    """
    train, test = split.train, split.test
    rows = split.test_users
    if not len(rows):
        return {"in_training": 0.0, "cooccurs": 0.0}
    return {
        "in_training": round(float(_held_out_in_training(split).mean()), 4),
        # the selection's carve reports the same share for its validation users
        "cooccurs": round(cooccurrence_reach(train, _rows_only(test, rows)), 4),
    }


def _held_out_in_training(split: Split) -> npt.NDArray[np.bool_]:
    """Per test user (``split.test_users`` order): does their held-out item have a
    training interaction (anyone's)? The ``in_training`` share of :func:`reach`."""
    in_train = np.asarray(split.train.sum(axis=0)).ravel() > 0
    held = sp.csr_matrix(split.test[split.test_users])
    return np.asarray(held @ in_train.astype(np.float32)).ravel() > 0


def _rows_only(x: sp.spmatrix, rows: IntVector) -> sp.csr_matrix:
    """``x`` with every row outside ``rows`` emptied (shape kept)."""
    keep = np.zeros(x.shape[0], dtype=np.float32)
    keep[rows] = 1.0
    return sp.csr_matrix(sp.diags(keep) @ sp.csr_matrix(x))


def _run_cold(
    dataset: Dataset,
    model: GroupModel,
    random_state: int,
    clock: _Clock,
    min_test_users: int,
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
    fitted = _fit(model, split.train_dataset(), clock)
    n_groups = max(fitted.n_groups_, 1)
    methods: dict[str, dict[str, float]] = {}
    per_user: dict[str, npt.NDArray[np.float64]] = {}

    def measure(name: str, score: ScoreFn) -> None:
        values: dict[str, npt.NDArray[np.float64]] = {}
        methods[name] = _pick(evaluate_scores(score, split, per_user=values), COLD_METRICS)
        per_user[name] = values["NDCG@10"]

    t = time.perf_counter()
    measure("Pop", _recommender_scorer(PopularityRecommender().fit(split.train), split))
    clock.add_method("cold Pop", time.perf_counter() - t)

    t = time.perf_counter()
    query_vectors = unit_rows(np.asarray(model.encode(queries)), dtype="float64")
    clock.embedding += time.perf_counter() - t

    t = time.perf_counter()
    kmeans = _seed_recipe_kmeans(fitted.semantic_, n_groups, random_state)
    seed_labels = _to_split_users(split, fitted, kmeans.labels_)
    seed_labels[split.test_users] = kmeans.predict(query_vectors)
    # held-out users have empty training rows, so labelling them adds nothing to the counts
    seed_rec = GroupPopularityRecommender(seed_labels).fit(split.train)
    measure("SeedRecipe", _recommender_scorer(seed_rec, split))
    clock.add_method("cold SeedRecipe", time.perf_counter() - t)

    t = time.perf_counter()
    # what the model recommends to a new user: its new-user model (group membership, the
    # text → item ridge and retrieval + spreading, as the fit mixed them)
    scores = fitted.text_scores(queries)
    item_ids = fitted.item_ids_.ids

    def cold_scores(rows: IntVector) -> npt.ArrayLike:
        return split.align_item_scores(scores[rows], item_ids)

    measure("UserGroups", cold_scores)
    clock.add_method("cold UserGroups", time.perf_counter() - t)
    return {
        "n_users": split.n_test_users,
        "n_eligible_users": split.params.get("n_eligible_users"),
        "n_groups": fitted.n_groups_,
        "assignment": _new_user_rule(fitted),
        "methods": methods,
        "intervals": intervals_of(per_user, random_state),
    }


def _new_user_rule(fitted: Any) -> str:
    """How ``fitted`` scores a new user's items, in words (GroupDiscovery.text_scores)."""
    model = getattr(fitted, "new_users_", None)
    if model is not None:
        return f"new-user model: {model.describe()} (GroupDiscovery.text_scores)"
    return (
        "argmax of predict_proba, blended with the aligned text scores "
        f"(cold_weight {fitted.cold_weight_:g}; GroupDiscovery.text_scores)"
    )


def _group_metrics(
    split: Split,
    model: GroupModel,
    fitted: FittedGroups,
    labels: IntVector,
    seed_labels: IntVector,
    stability_seeds: int,
    random_state: int,
) -> dict[str, Any]:
    vectors = fitted.user_vectors_
    own = np.asarray(fitted.labels_, dtype=np.int64)

    def labels_for_seed(seed: int) -> npt.ArrayLike:
        return np.asarray(model.regroup(fitted, None, seed))

    ari: float | None = None
    if stability_seeds >= 2:
        ari = stability(labels_for_seed, [random_state + i for i in range(stability_seeds)])
    sizes = np.bincount(own[own >= 0])
    resampled = (getattr(fitted, "metrics_", None) or {}).get("stability") or {}
    return {
        "method": "usergroups",
        "n_groups": fitted.n_groups_,
        # DESIGN.md's group lift: unsmoothed group popularity ÷ Pop, for ours and the seed
        # recipe alike, so the two clusterings are compared with one scorer
        "group_lift": _finite(group_lift(labels, split)),
        "seed_recipe_group_lift": _finite(group_lift(seed_labels, split)),
        "silhouette": _finite(silhouette(vectors, own, random_state=random_state)),
        "davies_bouldin": _finite(davies_bouldin(vectors, own)),
        "stability_ari": _finite(ari),
        "stability_seeds": max(stability_seeds, 0),
        # the fit's own check: re-clustering 80 % subsets with new seeds (issue 14)
        "resample_ari": _finite(resampled.get("ari")),
        "unstable_groups": len(resampled.get("unstable") or []),
        "noise_share": noise_share(own),
        "largest_share": float(sizes.max() / len(own)) if len(sizes) else 0.0,
    }


def _k_sweep(
    split: Split,
    model: GroupModel,
    fitted: FittedGroups,
    ks: Sequence[int],
    pop_ndcg: float,
    random_state: int,
) -> list[dict[str, Any]]:
    """NDCG@10 and its ratio to Pop of the model and of the seed recipe at each K.

    Each lift divides the NDCG@10 of the scorer beside it (issue 12: the sweep used to
    put the lift of unsmoothed group popularity beside the NDCG@10 of the smoothed one).
    ``stability_ari`` is the mean ARI of the clustering at K refitted with three seeds:
    with the lift, the trade-off curve between stable and sharp groups (issue 14).
    """
    n_users = len(fitted.labels_)
    out: list[dict[str, Any]] = []
    for k in sorted({int(k) for k in ks}):
        if k < 1 or k >= n_users:
            logger.info("k sweep: leaving out k=%d for %d users", k, n_users)
            continue
        own = np.asarray(model.regroup(fitted, k, random_state), dtype=np.int64)
        runs = [own] + [np.asarray(model.regroup(fitted, k, random_state + i)) for i in (1, 2)]
        ari = stability(runs.__getitem__, (0, 1, 2))
        labels = _to_split_users(split, fitted, own)
        rec = model.group_recommender(fitted, own)
        ndcg = evaluate_scores(_warm_group_scorer(split, fitted, labels, rec), split, (10,))
        seed = _to_split_users(
            split, fitted, _seed_recipe_kmeans(fitted.semantic_, k, random_state).labels_
        )
        seed_ndcg = evaluate_recommender(
            GroupPopularityRecommender(seed).fit(split.train), split, (10,)
        )
        out.append(
            {
                "k": k,
                "n_groups": int(own.max()) + 1 if (own >= 0).any() else 0,
                "Pop_NDCG@10": pop_ndcg,
                "UserGroups_NDCG@10": ndcg["NDCG@10"],
                "UserGroups_group_lift": _lift(ndcg["NDCG@10"], pop_ndcg),
                "SeedRecipe_NDCG@10": seed_ndcg["NDCG@10"],
                "SeedRecipe_group_lift": _lift(seed_ndcg["NDCG@10"], pop_ndcg),
                "stability_ari": _finite(ari),
            }
        )
    return out


def _warm_group_scorer(
    split: Split, fitted: FittedGroups, labels: IntVector, recommender: GroupScorer
) -> ScoreFn:
    """Scores of each test user's group, mapped onto the split's item columns."""
    item_ids = fitted.item_ids_.ids

    def score(rows: IntVector) -> npt.ArrayLike:
        groups = labels[split.test_users[rows]]
        return split.align_item_scores(recommender.group_scores(groups), item_ids)

    return score


def _warm_hybrid_scorer(split: Split, fitted: FittedGroups) -> ScoreFn:
    """Each test user's blend of group and personal scores (``blend_scores``)."""
    item_ids = fitted.item_ids_.ids
    rows_of = fitted.user_ids_.index(split.dataset.user_ids.ids[split.test_users], what="user_id")
    own = np.asarray(fitted.labels_, dtype=np.int64)
    seen = fitted.seen_

    def score(rows: IntVector) -> npt.ArrayLike:
        users = rows_of[rows]
        part = fitted.user_group_scores(users)
        blended = fitted.blend_scores(own[users], seen[users], group_part=part)
        return split.align_item_scores(blended, item_ids)

    return score


def _warm_user_group_scorer(split: Split, fitted: FittedGroups) -> ScoreFn:
    """Each test user's group part (``user_group_scores``: the fine groups when the model
    has them), mapped onto the split's item columns."""
    return _rows_scorer(split, fitted, fitted.user_group_scores)


def _rows_scorer(
    split: Split, fitted: FittedGroups, scores_of_rows: Callable[[IntVector], Any]
) -> ScoreFn:
    """A scorer of the split's test users from a function of the model's user rows."""
    item_ids = fitted.item_ids_.ids
    rows_of = fitted.user_ids_.index(split.dataset.user_ids.ids[split.test_users], what="user_id")

    def score(rows: IntVector) -> npt.ArrayLike:
        return split.align_item_scores(np.asarray(scores_of_rows(rows_of[rows])), item_ids)

    return score


def _lift_with_noise(
    split: Split,
    model: GroupModel,
    fitted: FittedGroups,
    labels: IntVector,
    seed_labels: IntVector,
    per_user: Mapping[str, npt.NDArray[np.float64]],
    random_state: int,
) -> dict[str, Any]:
    """Each group-based predictor's lift over Pop with a 95 % bootstrap interval over the
    test users, and the top-10 overlap between two fits on different 80 % subsamples.

    Each entry also has ``full_ranking``: the same ratio for NDCG over the whole ranking,
    on the test users whose held-out item has a training interaction (``n_users``; no
    model can rank the others' item), whose interval is far narrower where NDCG@10 rests
    on a few hits (the Yelp sample: 17 of 707 test users).

    ``segments``: the segments' popularity; ``fine``: the model's group part
    (``user_group_scores``: the fine groups, or the segments when validation turned them
    off); ``seed_recipe``: the plain seed recipe at the segments' number of groups. All
    three are smoothed as configured (``model.group_recommender``), so they differ only
    in how users are grouped. Users an 80 % subsample left out are placed into its
    groups like everyone else.
    """
    from usergroups.evaluation.lift import ranked_top, ratio_interval, top_overlap

    full = f"NDCG@{split.n_items}"

    def ndcg_of(score: ScoreFn) -> dict[str, npt.NDArray[np.float64]]:
        values: dict[str, npt.NDArray[np.float64]] = {}
        evaluate_scores(score, split, (10, split.n_items), per_user=values)
        return values

    pop = per_user["Pop"]
    # over the whole ranking, only users whose held-out item has a training interaction:
    # the others' item is unknown to every model (-inf, never ranked), while Pop places it
    # in an arbitrary tie block of zeros, a deep rank that the whole ranking still credits
    known = _held_out_in_training(split)
    pop_full = ndcg_of(_recommender_scorer(PopularityRecommender().fit(split.train), split))[full]
    own = np.asarray(fitted.labels_, dtype=np.int64)
    own_rows = split.dataset.user_ids.index(fitted.user_ids_.ids, what="user_id")
    segment_rec = model.group_recommender(fitted, own)
    predictors: dict[str, ScoreFn] = {
        "segments": _warm_group_scorer(split, fitted, labels, segment_rec),
        "fine": _warm_user_group_scorer(split, fitted),
        "seed_recipe": _warm_group_scorer(
            split, fitted, seed_labels, model.group_recommender(fitted, seed_labels[own_rows])
        ),
    }
    out: dict[str, Any] = {}
    for i, (name, scorer) in enumerate(predictors.items()):
        values = ndcg_of(scorer)
        # leave-last-out: every warm test user has a held-out item, so the rows line up
        assert len(values[full]) == len(known), "a warm test user without a held-out item"
        entry = ratio_interval(values["NDCG@10"], pop, random_state=random_state + i)
        # the whole ranking: every test user counts, not only the few whose item reaches a
        # top 10, so a lift that is noise at NDCG@10 shows its sign here
        whole = ratio_interval(values[full][known], pop_full[known], random_state=random_state + i)
        entry["full_ranking"] = {
            **{k: round(float(whole[k]), 4) for k in ("value", "low", "high")},
            "n_users": int(known.sum()),
        }
        if name != "seed_recipe":
            tops = [
                ranked_top(
                    _rows_scorer(
                        split, fitted, model.resampled_group_scores(fitted, name, random_state + s)
                    ),
                    split,
                )
                for s in (101, 202)
            ]
            entry["top10_overlap"] = top_overlap(tops[0], tops[1])
        out[name] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in entry.items()}
    fine_metrics = (getattr(fitted, "metrics_", None) or {}).get("choices") or {}
    out["fine"]["n_fine"] = (fine_metrics.get("fine_k") or {}).get("value")
    out["fine"]["partitions"] = (fine_metrics.get("fine_partitions") or {}).get("value")
    return out


def alignment_summary(fitted: FittedGroups) -> dict[str, Any] | None:
    """What the model chose on its validation carve (``metrics_["alignment"]``), if any."""
    report = fitted.metrics_.get("alignment")
    if not report:
        return None
    keys = (
        "method",
        "epochs",
        "direct_val_ndcg",
        "text_weight",
        "n_groups",
        "group_val_ndcg",
        "personal_model",
        "group_part",
        "plain_parts",
        "blend_kept",
        "personal_weight",
        "personal_shrinkage",
        "cold_weight",
        "cold_spread_weight",
        "cold_top_items",
        "new_users",
        "seconds",
    )
    out = {k: report.get(k) for k in keys}
    out["validation_users"] = report.get("validation")
    # each choice with its source: "validation", "config", "default" or "data" (and why)
    out["choices"] = fitted.metrics_.get("choices") or {}
    if "lora" in report:
        out["lora"] = report["lora"]
    return out


def _seed_recipe_kmeans(vectors: npt.ArrayLike, n_groups: int, random_state: int) -> Any:
    """scikit-learn k-means (k-means++, 10 initialisations) on frozen sentence vectors."""
    from sklearn.cluster import KMeans

    x = np.asarray(vectors, dtype=np.float64)
    k = max(1, min(int(n_groups), len(x)))
    return KMeans(n_clusters=k, n_init=10, random_state=random_state).fit(x)


def _to_split_users(split: Split, fitted: FittedGroups, labels: npt.ArrayLike) -> IntVector:
    """Labels over the model's users → labels over the split's users (-1 where unknown)."""
    out = np.full(split.n_users, -1, dtype=np.int64)
    rows = split.dataset.user_ids.index(fitted.user_ids_.ids, what="user_id")
    out[rows] = np.asarray(labels, dtype=np.int64)
    return out


def _pick(metrics: Mapping[str, float], names: Sequence[str]) -> dict[str, float]:
    return {name: float(metrics[name]) for name in names if name in metrics}


def _lift(ndcg: float, pop_ndcg: float) -> float | None:
    """``ndcg ÷ pop_ndcg``; None (JSON null) when Pop scores 0."""
    return _finite(ndcg / pop_ndcg) if pop_ndcg > 0 else None


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

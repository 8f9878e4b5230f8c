"""Model selection: the validation carve and every candidate grid, in the pipeline layer.

:func:`select` is called by :meth:`usergroups.GroupDiscovery.fit` whenever a setting is
``"auto"`` or the text side is aligned. It works on the *training* data it is given, never
on a test split, and reaches the stages only through the small interfaces of
:class:`Stages`, so a swapped stage (another clusterer, another aligner) takes part in
every choice like the built-in one:

1. **Carve** a validation set from the training data (:func:`carve_validation`), with
   the rules of the evaluation protocols (:mod:`usergroups.evaluation.splits`): a seeded
   ``cold_fraction`` of the users with two or more texts are removed entirely and known
   by their first text (by time); every other user with three or more interactions loses
   their last interaction (by time, ties: file order) and the texts about it.
2. **Align**: a fresh aligner is trained on what is left, early-stopped on NDCG@10 of
   the held-out items (skipped with ``align.method = "none"``: the frozen sentence
   vectors stand in, so the ablation is exact).
3. **Choose** on the validation users, by NDCG@10 of the held-out items: the text weight
   and the number of groups (group popularity of each clustering), the personal model
   (EASE or item-kNN; item-kNN alone above ``recommend.ease_max_items`` items) and its
   blend, kept only when it beats popularity, the group part and the personal model alone
   by a paired standard error (else the best of those ranks alone) and, on the held-out new
   users, the text → item ridge and its blend. A number of groups is a candidate only
   when it is *stable*: re-clustering random 80 % subsets of the users with new seeds
   agrees with the clustering of all of them at an adjusted Rand index of at least
   ``clustering.min_stability`` (:mod:`usergroups.clustering.stability`);
   the stable (text weight, number of groups) pair with the best validation NDCG@10 wins.
4. **Refit** the behaviour vectors, the personal model and the ridge on all the training
   data; the aligner stays as early-stopped on the carve. (The personal model is solved
   twice, once per data set: the carve's solve cannot be reused without its held-out
   items.)

Each setting comes back as a :class:`~usergroups.fitted.Choice` that says whether it was
chosen on validation, fixed by the config, or fell back to its default (and why).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from usergroups._typing import FloatMatrix, IntVector
from usergroups.alignment import TextBags, make_bags
from usergroups.clustering.assign import knn_proba
from usergroups.clustering.fine import fit_fine_partitions
from usergroups.config import DiscoveryConfig
from usergroups.data import Dataset
from usergroups.errors import ConfigError
from usergroups.evaluation.metrics import cooccurrence_reach
from usergroups.evaluation.splits import first_text_per_user, last_row_per_user, time_key
from usergroups.fitted import Choice, ChoiceSource, softmax_confidence
from usergroups.linalg import DEFAULT_TEXT_WEIGHT, ease_weights, fuse_blocks, pool_rows, unit_rows
from usergroups.ranking import ndcg_at_k, ndcg_rows
from usergroups.recommend import GroupPopularity
from usergroups.recommend.fine_groups import FineGroups
from usergroups.recommend.hybrid import (
    ItemKNN,
    PrunedEASE,
    blend,
    new_personal,
    personal_candidates,
    personal_weights,
    row_scaled,
)
from usergroups.recommend.new_users import (
    NewUserModel,
    item_documents,
    soft_group_scores,
    spread_scores,
    weight_grid,
)
from usergroups.recommend.text_ridge import TextItemRidge

__all__ = [
    "BLEND_GRID",
    "K_TOLERANCE",
    "MIN_VALIDATION_USERS",
    "RIDGE_GRID",
    "SHRINKAGE_GRID",
    "TEXT_WEIGHT_GRID",
    "Aligner",
    "Selection",
    "Stages",
    "ValidationCarve",
    "carve_validation",
    "fixed_fine_groups",
    "k_grid",
    "select",
]

logger = logging.getLogger(__name__)

TEXT_WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Candidate shares of the text part when ``user_vectors.text_weight = "auto"``."""

K_GRID_POINTS = 7
"""At most this many candidate numbers of groups (every integer when the range is smaller)."""

BLEND_GRID = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
"""Candidate weights of the personal / direct part of a blend."""

RIDGE_GRID = (10.0, 100.0, 1000.0)
"""Candidate regularisation of the text → item ridge for new users."""

TOP_ITEMS_GRID = (10, 20, 50)
"""Candidate numbers of items retrieved from a new user's text before spreading."""

COLD_WEIGHT_STEP = 0.1
"""Grid spacing of the new-user mix (group, ridge, spread): 66 mixes on the simplex."""

FINE_K_GRID = (8, 16, 32, 64)
"""Candidate groups per fine partition (capped so a fine group has ``MIN_FINE_MEMBERS``
users on average)."""

FINE_PARTITIONS_GRID = (5, 10)
"""Candidate numbers of fine partitions averaged; a single partition is left out: its
top-10 lists change with every resample (overlap about 0.5-0.65 at K = 16)."""

MIN_FINE_MEMBERS = 10
"""Users per fine group on average, at least (a smaller group's popularity is noise)."""

FINE_MAX_CELLS = 5_000_000_000
"""Users × items above which fine groups are off (a fallback line says so): every user's
save-time recommendations are then scored densely, about a minute per 5e9 cells here."""

SHRINKAGE_GRID = (0.0, 2.0, 5.0, 10.0, 20.0)
"""Candidate pseudo-counts of the group in the personal blend (0: the same weight for all)."""

K_TOLERANCE = 1.0
"""Parsimony in standard errors, used when the stability rule is off
(``clustering.min_stability = 0``): the fewest groups whose validation NDCG@10 is within
``K_TOLERANCE`` standard errors of the best win (the standard error of the best
candidate's mean over the validation users).

The one-standard-error rule of Breiman et al. (1984): the validation curve of the number
of groups is flat and noisy, so a denser grid would otherwise pick whichever K the noise
favours; a fixed relative tolerance (2 %) does not scale with the number of validation
users."""

MIN_VALIDATION_USERS = 20
"""With fewer validation users, 'auto' settings fall back to their documented defaults
(text weight 0.5, number of groups by the clusterer's own criterion, personal blend 0.5,
new users: ridge 0.4 and spread 0.4 of the top 20 items, ridge l2 100) instead of choosing
on noise; each fallback is flagged in the choices."""

EASE_KEEP_GRID = (128, 256, 512, 1024, 2048)
"""Candidate numbers of EASE weights kept per item (capped by the catalogue)."""

VALIDATION_CELLS = 1 << 26
"""Validation users × items of one dense score matrix (256 MB of float32): the warm
validation users are capped at ``VALIDATION_CELLS // n_items`` (3,000 up to 22,000 items,
671 at 100,000), so the grids' score matrices stay bounded for any catalogue."""

DEFAULTS: dict[str, float] = {
    "ease_keep": 1024,
    "text_weight": DEFAULT_TEXT_WEIGHT,
    "personal_weight": 0.5,
    "personal_shrinkage": 0.0,
    "cold_weight": 0.4,
    "cold_spread_weight": 0.4,
    "cold_top_items": 20,
    "ridge_l2": 100.0,
    "fine_k": 16,
    "fine_partitions": 5,
}
"""Documented defaults of the 'auto' settings, used when they cannot be chosen."""


class Aligner(Protocol):
    """What :func:`select` needs of an aligner (see :class:`usergroups.alignment.AlignmentHead`)."""

    def fit(
        self,
        bags: TextBags,
        x: sp.csr_matrix,
        item_text: FloatMatrix | None,
        *,
        validation: tuple[TextBags, sp.csr_matrix, sp.csr_matrix] | None = None,
        epochs: int | None = None,
    ) -> Any: ...

    def transform(self, vectors: npt.NDArray[Any]) -> FloatMatrix: ...


@dataclass
class Stages:
    """The stage interfaces :func:`select` works through.

    Parameters
    ----------
    new_aligner : callable or None
        ``new_aligner() -> Aligner``, a fresh unfitted aligner; None for no alignment.
    clusterer_at : callable
        ``clusterer_at(k, search, seed=None) -> estimator`` with ``fit(X)`` setting
        ``labels_``: the configured clusterer with ``k`` groups (``None``: its own choice);
        ``search=True`` asks for a cheaper variant used only to rank candidates; ``seed``
        replaces its random seed (the stability resamples).
    can_set_k : bool
        Whether ``clusterer_at`` honours ``k`` (HDBSCAN, say, finds its own number).
    behaviour_of : callable
        ``behaviour_of(x) -> (n_users, b)`` behaviour vectors of a user × item matrix.
    full_behaviour : ndarray of shape (n_users, b), optional
        ``behaviour_of`` of all the training data, where the caller has it already (the
        fit's user vectors): the refit then reuses it instead of a second SVD (issue 25).
    """

    new_aligner: Callable[[], Aligner] | None
    clusterer_at: Callable[..., Any]
    can_set_k: bool
    behaviour_of: Callable[[sp.csr_matrix], FloatMatrix]
    full_behaviour: FloatMatrix | None = None


@dataclass
class ValidationCarve:
    """A validation split cut from training data (rows and columns of the full matrix).

    Attributes
    ----------
    x_train : csr_matrix of shape (n_users, n_items)
        What is left for training (new users' rows are empty).
    text_keep : ndarray of shape (n_texts,), bool
        Texts left for training.
    warm_rows : ndarray of shape (n_warm,)
        Users who lost their last interaction, held in ``held_out``.
    held_out : csr_matrix of shape (n_users, n_items)
    cold_rows : ndarray of shape (n_cold,)
        Held-out new users; ``cold_query`` is the row of their first text and
        ``cold_targets`` (shape (n_cold, n_items)) the rest of their items.
    """

    x_train: sp.csr_matrix
    text_keep: npt.NDArray[np.bool_]
    warm_rows: IntVector
    held_out: sp.csr_matrix
    cold_rows: IntVector
    cold_query: IntVector
    cold_targets: sp.csr_matrix


@dataclass
class Selection:
    """What :func:`select` learned and chose (the pipeline turns it into a FittedState)."""

    head: Any
    text_block: FloatMatrix
    behaviour: FloatMatrix
    text_weight: float
    n_groups: int | None
    personal: PrunedEASE | ItemKNN | None
    personal_weight: float
    personal_shrinkage: float
    cold_weight: float
    ridge: TextItemRidge | None
    choices: dict[str, Choice]
    report: dict[str, Any] = field(default_factory=dict)
    carve: ValidationCarve | None = None
    new_users: NewUserModel | None = None
    fine: FineGroups | None = None
    group_part: str = "groups"


# ----------------------------------------------------------------------------- carve
def carve_validation(
    dataset: Dataset,
    *,
    cold_fraction: float = 0.1,
    max_cold: int = 500,
    max_warm: int = 3000,
    random_state: int = 0,
) -> ValidationCarve:
    """Cut validation users out of ``dataset`` (see the module docstring).

    The last interaction and the cold query follow the evaluation protocols' rules
    (:func:`usergroups.evaluation.splits.warm_split`, ``cold_split``); only the sample
    sizes are capped (``max_cold``, ``max_warm``) to bound the cost of the grids.
    """
    rng = np.random.default_rng(random_state)
    x = sp.csr_matrix(dataset.interaction_matrix(), dtype=np.float32, copy=True)
    x.data[:] = 1.0
    n_users, n_items = x.shape
    texts = dataset.texts
    user_of_text = text_users(dataset)
    item_of_text = text_items(dataset)
    n_texts_per_user = np.bincount(user_of_text, minlength=n_users)
    counts = np.diff(x.indptr)

    eligible_cold = np.flatnonzero((n_texts_per_user >= 2) & (counts >= 2))
    n_cold = min(round(cold_fraction * len(eligible_cold)), max_cold)
    cold_rows = (
        np.sort(rng.choice(eligible_cold, size=n_cold, replace=False)).astype(np.int64)
        if n_cold
        else np.zeros(0, dtype=np.int64)
    )
    is_cold = np.zeros(n_users, dtype=bool)
    is_cold[cold_rows] = True

    # the last interaction (by time, ties: file order) of each warm validation user
    inter = dataset.interactions
    u = dataset.user_ids.index(inter["user_id"])
    i = dataset.item_ids.index(inter["item_id"])
    last = last_row_per_user(u, time_key(inter["timestamp"]))
    last_item = np.full(n_users, -1, dtype=np.int64)
    last_item[u[last]] = i[last]
    eligible_warm = np.flatnonzero((counts >= 3) & ~is_cold & (last_item >= 0))
    if len(eligible_warm) > max_warm:
        eligible_warm = np.sort(rng.choice(eligible_warm, size=max_warm, replace=False))
    warm_rows = eligible_warm.astype(np.int64)
    held = sp.csr_matrix(
        (np.ones(len(warm_rows), np.float32), (warm_rows, last_item[warm_rows])),
        shape=(n_users, n_items),
    )
    x_train = x - x.multiply(held)
    x_train = sp.csr_matrix(sp.diags((~is_cold).astype(np.float32)) @ x_train)
    x_train.eliminate_zeros()

    # texts: new users' texts go; texts about a held-out item go
    text_keep = ~is_cold[user_of_text] if len(texts) else np.zeros(0, dtype=bool)
    if len(texts):
        about_held = (item_of_text >= 0) & (last_item[user_of_text] == item_of_text)
        about_held &= np.isin(user_of_text, warm_rows)
        text_keep &= ~about_held

    # new users: the first text is the query; the rest of their items are the targets
    cold_query = first_text_per_user(dataset)[cold_rows]
    rows, cols = [], []
    for j, user in enumerate(cold_rows):
        items = x.indices[x.indptr[user] : x.indptr[user + 1]]
        items = items[items != item_of_text[cold_query[j]]]
        rows.extend([j] * len(items))
        cols.extend(items.tolist())
    cold_targets = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(cold_rows), n_items)
    )
    return ValidationCarve(
        x_train=x_train,
        text_keep=np.asarray(text_keep, dtype=bool),
        warm_rows=warm_rows,
        held_out=held,
        cold_rows=cold_rows,
        cold_query=cold_query.astype(np.int64),
        cold_targets=cold_targets,
    )


def text_users(dataset: Dataset) -> IntVector:
    """User index of each row of ``dataset.texts``; shape (n_texts,)."""
    texts = dataset.texts
    if not len(texts):
        return np.zeros(0, dtype=np.int64)
    return np.asarray(dataset.user_ids.index(texts["user_id"]), dtype=np.int64)


def text_items(dataset: Dataset) -> IntVector:
    """Item index of each row of ``dataset.texts`` (-1: no item or an unknown one)."""
    texts = dataset.texts
    out = np.full(len(texts), -1, dtype=np.int64)
    if not len(texts):
        return out
    ids = texts["item_id"]
    known = ids.notna().to_numpy() & np.array([v in dataset.item_ids for v in ids], dtype=bool)
    if known.any():
        out[known] = dataset.item_ids.index(ids[known].to_numpy())
    return out


# ----------------------------------------------------------------------------- grids
def k_grid(k_min: int, k_max: int, n_users: int) -> tuple[int, ...]:
    """Candidate numbers of groups from ``k_min .. k_max``.

    Every integer when the range holds at most :data:`K_GRID_POINTS` values, otherwise
    that many points spaced geometrically (both ends included), since the difference
    between 16 and 17 groups matters less than between 2 and 3.

    Raises
    ------
    ConfigError
        When the range is empty, or ``k_min`` is not below the number of users.
    """
    if k_min < 2 or k_max < k_min:
        raise ConfigError(
            f"clustering.k_min={k_min}, k_max={k_max} is not a range of numbers of groups; "
            "use 2 <= k_min <= k_max"
        )
    if k_min >= n_users:
        raise ConfigError(
            f"clustering.k_min={k_min} needs more than {k_min} users and the data has "
            f"{n_users}; lower k_min or add users"
        )
    top = min(k_max, n_users - 1)
    if top - k_min + 1 <= K_GRID_POINTS:
        return tuple(range(k_min, top + 1))
    points = np.unique(np.round(np.geomspace(k_min, top, K_GRID_POINTS)).astype(int))
    return tuple(int(k) for k in points)


def _n_found(labels: IntVector) -> int:
    return int(labels.max()) + 1 if len(labels) and (labels >= 0).any() else 0


# ----------------------------------------------------------------------------- select
@dataclass
class _Run:
    """What every step of :func:`select` reads: the carve, the full 0/1 matrix, the
    validation users' held-out and seen items, and the report and choices the steps fill."""

    config: DiscoveryConfig
    carve: ValidationCarve
    x_full: sp.csr_matrix
    enough: bool
    few: str
    report: dict[str, Any]
    choices: dict[str, Choice]
    rows: IntVector
    held: sp.csr_matrix
    seen: sp.csr_matrix


@dataclass
class _Aligned:
    """The aligner trained on the carve and the carve's text and behaviour blocks."""

    head: Any
    transform: Callable[[npt.NDArray[Any]], FloatMatrix]
    aligned_tr: FloatMatrix
    behaviour_tr: FloatMatrix


@dataclass
class _Groups:
    """The chosen text weight and number of groups, the carve's clustering at them and the
    validation scores of every (text weight, number of groups) pair."""

    text_weight: float
    chosen_k: int | None
    labels_tr: IntVector
    rec_tr: GroupPopularity
    group_val: FloatMatrix
    per_user: dict[tuple[float, int | None], npt.NDArray[np.float64]]
    known: IntVector


@dataclass
class _Personal:
    """The chosen personal model and its blend with the group part."""

    model: str | None
    weight: float
    shrinkage: float
    ease_keep: int
    group_part: str
    item_item_val: Any  # the carve's item-item model, for new users


def select(
    dataset: Dataset,
    text_vectors: npt.NDArray[Any],
    item_vectors: npt.NDArray[Any] | None,
    frozen_semantic: FloatMatrix,
    config: DiscoveryConfig,
    stages: Stages,
) -> Selection:
    """Carve, align, choose and refit (see the module docstring).

    Parameters
    ----------
    dataset : Dataset
        Training data.
    text_vectors : ndarray of shape (len(dataset.texts), dim)
    item_vectors : ndarray of shape (n_items, dim) or None
        Embedded item documents (titles, categories, descriptions).
    frozen_semantic : ndarray of shape (n_users, dim)
        Per-user sentence vectors (the text block when there is no aligner).
    config : DiscoveryConfig
    stages : Stages

    Returns
    -------
    Selection
    """
    started = time.perf_counter()
    run = _carve_step(dataset, config)
    aligned = _align_step(run, dataset, text_vectors, item_vectors, stages)
    groups = _groups_step(run, aligned, stages)
    n_fine, n_partitions, fine_weight, fine_tr = _fine_step(run, aligned, groups)
    if fine_tr is not None:
        groups.group_val = fine_tr.user_scores(run.rows)
    personal = _personal_step(run, groups.group_val)
    # ---- new users: membership in the groups, the text → item ridge and retrieval +
    # spreading (usergroups.recommend.new_users), mixed as the held-out new users prefer
    new_users, cold_report, cold_choices = _choose_new_user_model(
        dataset,
        text_vectors,
        aligned.transform,
        run.carve,
        aligned.aligned_tr,
        groups.labels_tr,
        groups.rec_tr,
        personal.item_item_val,
        run.x_full,
        config,
        fine_part=_new_user_fine_part(fine_tr, aligned.aligned_tr),
    )
    run.report.update(cold_report)
    run.choices.update(cold_choices)
    return _refit_step(
        run,
        dataset,
        text_vectors,
        item_vectors,
        frozen_semantic,
        stages,
        aligned.head,
        groups,
        personal,
        (n_fine, n_partitions, fine_weight),
        new_users,
        started,
    )


def _carve_step(dataset: Dataset, config: DiscoveryConfig) -> _Run:
    """1. Carve the validation set and start the report."""
    ac = config.align
    carve = carve_validation(
        dataset,
        cold_fraction=ac.cold_fraction,
        max_warm=max(
            5 * MIN_VALIDATION_USERS, min(3000, VALIDATION_CELLS // max(dataset.n_items, 1))
        ),
        random_state=config.random_state,
    )
    x_full = sp.csr_matrix(dataset.interaction_matrix(), dtype=np.float32, copy=True)
    x_full.data[:] = 1.0
    n_warm, n_cold = len(carve.warm_rows), len(carve.cold_rows)
    enough = n_warm >= MIN_VALIDATION_USERS
    few = f"only {n_warm} validation users (< {MIN_VALIDATION_USERS})"
    report: dict[str, Any] = {
        "method": ac.method,
        "validation": {"warm_users": n_warm, "cold_users": n_cold, "enough": enough},
    }
    if not enough:
        logger.warning("%s: 'auto' settings take their defaults", few)
    rows = carve.warm_rows
    return _Run(
        config=config,
        carve=carve,
        x_full=x_full,
        enough=enough,
        few=few,
        report=report,
        choices={},
        rows=rows,
        held=carve.held_out[rows],
        seen=carve.x_train[rows],
    )


def _align_step(
    run: _Run,
    dataset: Dataset,
    text_vectors: npt.NDArray[Any],
    item_vectors: npt.NDArray[Any] | None,
    stages: Stages,
) -> _Aligned:
    """2. Align on the carve (early-stopped on its validation users when there are enough)."""
    ac, carve, report = run.config.align, run.carve, run.report
    item_text_tr = _item_text(dataset, text_vectors, item_vectors, carve.text_keep)
    bags_tr = make_bags(dataset, text_vectors, item_vectors, carve.x_train, carve.text_keep)
    head: Any = None
    transform: Callable[[npt.NDArray[Any]], FloatMatrix] = unit_rows
    if stages.new_aligner is not None:
        head = stages.new_aligner()
        val_bags = TextBags(bags_tr.members[carve.warm_rows], bags_tr.vectors)
        validation = (val_bags, carve.x_train[carve.warm_rows], carve.held_out[carve.warm_rows])
        head.fit(
            bags_tr,
            carve.x_train,
            item_text_tr,
            validation=validation if run.enough else None,
            epochs=None if run.enough else min(ac.max_epochs, 20),
        )
        report["epochs"] = getattr(head, "best_epoch_", None)
        report["history"] = getattr(head, "history_", None)
        report["direct_val_ndcg"] = getattr(head, "best_val_ndcg_", None)
        transform = head.transform
    aligned_tr = transform(bags_tr.pooled())
    behaviour_tr = stages.behaviour_of(carve.x_train)
    return _Aligned(head, transform, aligned_tr, behaviour_tr)


def _text_weights(run: _Run, behaviour_dim: int) -> tuple[float, ...]:
    """The text weights to try (one when fixed, forced or defaulted; its choice recorded)."""
    uv, choices = run.config.user_vectors, run.choices
    if behaviour_dim == 0:
        choices["text_weight"] = no_behaviour_choice(run.config)
        return (1.0,)
    if uv.text_weight != "auto":
        choices["text_weight"] = Choice(float(uv.text_weight), "config")
        return (float(uv.text_weight),)
    if not run.enough:
        choices["text_weight"] = Choice(DEFAULTS["text_weight"], "default", run.few)
        return (DEFAULTS["text_weight"],)
    return TEXT_WEIGHT_GRID


def _group_counts(run: _Run, stages: Stages, n_users: int) -> tuple[int | None, ...]:
    """The numbers of groups to try (``None``: the clusterer's own; its choice recorded)."""
    cc, choices = run.config.clustering, run.choices
    if not stages.can_set_k:
        choices["n_groups"] = Choice(None, "config", "the clusterer finds its own number")
        return (None,)
    if cc.n_groups != "auto":
        choices["n_groups"] = Choice(int(cc.n_groups), "config")
        return (int(cc.n_groups),)
    if cc.select != "validation":
        choices["n_groups"] = Choice(None, "config", f"chosen by the clusterer ({cc.select})")
        return (None,)
    if not run.enough:
        choices["n_groups"] = Choice(None, "default", f"{run.few}: chosen by the clusterer")
        return (None,)
    ks = k_grid(cc.k_min, cc.k_max, n_users)
    if cc.k_max > ks[-1]:
        logger.warning(
            "clustering.k_max=%d is above what %d users allow; trying up to %d groups",
            cc.k_max,
            n_users,
            ks[-1],
        )
        run.report["k_max_capped"] = {"asked": cc.k_max, "tried": ks[-1]}
    return ks


def _groups_step(run: _Run, aligned: _Aligned, stages: Stages) -> _Groups:
    """3. The text weight and number of groups, by group popularity on held-out items."""
    rc, carve, report = run.config.recommend, run.carve, run.report
    rows, held, seen = run.rows, run.held, run.seen
    n_users = run.x_full.shape[0]
    aligned_tr, behaviour_tr = aligned.aligned_tr, aligned.behaviour_tr
    weights = _text_weights(run, behaviour_tr.shape[1])
    ks = _group_counts(run, stages, n_users)

    grid: list[dict[str, Any]] = []
    per_user: dict[tuple[float, int | None], npt.NDArray[np.float64]] = {}
    labels_at: dict[tuple[float, int | None], IntVector] = {}
    best: dict[str, Any] | None = None
    search = len(ks) > 1
    # held-out new users have no training rows, so their vectors are blank: clustered with
    # the others they would form a group of their own (at the origin) and make every
    # clustering look unstable; they are left out (label -1) and placed like new users
    known = np.setdiff1d(np.arange(n_users), carve.cold_rows)
    for w in weights:
        fused = fuse_blocks(aligned_tr, behaviour_tr, w)
        for k in ks:
            labels = np.full(n_users, -1, dtype=np.int64)
            labels[known] = stages.clusterer_at(k, search).fit(fused[known]).labels_
            scores = _group_scores(carve.x_train, labels, rc.smoothing).group_scores(labels[rows])
            values = ndcg_rows(scores, held, seen)
            per_user[(w, k)] = values
            labels_at[(w, k)] = labels
            ndcg = float(values.mean()) if len(values) else 0.0
            entry = {"text_weight": w, "k": k, "n_groups": _n_found(labels), "ndcg": round(ndcg, 5)}
            grid.append(entry)
            if best is None or ndcg > best["ndcg"] + 1e-12:
                best = {**entry, "ndcg": ndcg}
    assert best is not None  # both grids are non-empty
    text_weight = float(best["text_weight"])
    chosen_k = best["k"]
    if search:
        fused_cache: dict[float, FloatMatrix] = {}

        def fused_at(w: float) -> FloatMatrix:
            if w not in fused_cache:
                fused_cache[w] = fuse_blocks(aligned_tr, behaviour_tr, w)
            return fused_cache[w]

        text_weight, chosen_k = _choose_groups(
            grid, per_user, labels_at, fused_at, known, stages, run.config, report, run.choices
        )
    run.choices.setdefault("text_weight", Choice(text_weight, "validation"))
    labels_tr = labels_at[(text_weight, chosen_k)]
    rec_tr = _group_scores(carve.x_train, labels_tr, rc.smoothing)
    group_val = rec_tr.group_scores(labels_tr[rows])
    report["grid"] = grid
    report["text_weight"] = text_weight
    report["n_groups"] = chosen_k
    report["group_val_ndcg"] = round(ndcg_at_k(group_val, held, seen), 5) if len(rows) else None
    return _Groups(text_weight, chosen_k, labels_tr, rec_tr, group_val, per_user, known)


def _fine_step(
    run: _Run, aligned: _Aligned, groups: _Groups
) -> tuple[int, int, float, FineGroups | None]:
    """Fine groups: an ensemble of fine partitions behind every group-based answer, on
    vectors fused with their own text weight (chosen for prediction; the segments' weight
    is chosen for stable, readable groups).

    Returns ``(n_fine, n_partitions, text weight, fine groups of the carve or None)``."""
    aligned_tr, behaviour_tr = aligned.aligned_tr, aligned.behaviour_tr

    def fused_at(w: float) -> FloatMatrix:
        return fuse_blocks(aligned_tr, behaviour_tr, w)

    fitted: dict[tuple[float, int], FloatMatrix] = {}
    n_fine, n_partitions, weight = _choose_fine_groups(
        fused_at,
        _fine_weights(run, behaviour_tr.shape[1], groups.text_weight),
        groups.known,
        run.carve,
        groups.per_user[(groups.text_weight, groups.chosen_k)],
        run.config,
        run.enough,
        run.report,
        run.choices,
        fitted,
    )
    fine_tr: FineGroups | None = None
    if n_partitions:
        fused_tr = fused_at(weight)
        seed = run.config.random_state
        fine_tr = FineGroups(smoothing=run.config.recommend.smoothing).fit(
            fused_tr,
            run.carve.x_train,
            _partitions(fitted, fused_tr[groups.known], weight, n_fine, n_partitions, seed),
        )
    return n_fine, n_partitions, weight, fine_tr


def _fine_weights(run: _Run, behaviour_dim: int, segments_weight: float) -> tuple[float, ...]:
    """The candidate text weights of the fine groups' vectors; a single one is recorded as
    the choice here (the config's, 1 without a behaviour block, the segments' when the
    validation users are too few)."""
    cc, choices = run.config.clustering, run.choices
    if behaviour_dim == 0:
        choices["fine_text_weight"] = no_behaviour_choice(run.config)
        return (1.0,)
    if cc.fine_text_weight != "auto":
        choices["fine_text_weight"] = Choice(float(cc.fine_text_weight), "config")
        return (float(cc.fine_text_weight),)
    if not run.enough:
        reason = f"{run.few}: the segments' text weight"
        choices["fine_text_weight"] = Choice(float(segments_weight), "default", reason)
        return (float(segments_weight),)
    return TEXT_WEIGHT_GRID


def _personal_step(run: _Run, group_val: FloatMatrix) -> _Personal:
    """The personal blend: the personal model chosen on validation (EASE or item-kNN,
    item-kNN alone above recommend.ease_max_items), and a blend only where it beats every
    plain part (popularity, the group part, the personal model) on the same users."""
    rc, report, choices = run.config.recommend, run.report, run.choices
    ease_keep = int(DEFAULTS["ease_keep"]) if rc.ease_keep == "auto" else int(rc.ease_keep)
    models, forced = personal_candidates(
        rc.personal, run.x_full.shape[1], rc.ease_max_items, rc.knn_neighbors
    )
    personal_model: str | None = models[0] if models else None
    report["personal_model"] = {"model": personal_model, "setting": rc.personal}
    if forced:
        report["personal_model"]["reason"] = forced
        report.setdefault("fallbacks", []).append(f"recommend.personal: {forced}")
    if personal_model is None:
        for name in ("personal_model", "personal_weight", "personal_shrinkage", "ease_keep"):
            choices[name] = Choice(None, "config", "recommend.personal = 'none'")
        choices["group_part"] = Choice("groups", "config", "no personal model to blend")
        return _Personal(None, 0.0, 0.0, ease_keep, "groups", None)
    options = BLEND_GRID if rc.personal_weight == "auto" else (float(rc.personal_weight),)
    shrinks = SHRINKAGE_GRID if rc.personal_shrinkage == "auto" else (float(rc.personal_shrinkage),)
    outcome: _BlendOutcome | None = None
    item_item_val: Any = None
    group_part = "groups"
    if run.enough:
        personal_model, ease_keep, item_item_val, outcome = _blend_on_carve(
            run, models, ease_keep, group_val, options, shrinks
        )
        group_part = outcome.group_part
        personal_weight, personal_shrinkage = outcome.weight, outcome.shrinkage
    else:
        personal_weight = options[0] if len(options) == 1 else DEFAULTS["personal_weight"]
        personal_shrinkage = shrinks[0] if len(shrinks) == 1 else DEFAULTS["personal_shrinkage"]
    personal = _Personal(
        personal_model, personal_weight, personal_shrinkage, ease_keep, group_part, item_item_val
    )
    _record_personal(run, personal, outcome, len(models) == 1, forced)
    return personal


def _blend_on_carve(
    run: _Run,
    models: Sequence[str],
    ease_keep: int,
    group_val: FloatMatrix,
    options: tuple[float, ...],
    shrinks: tuple[float, ...],
) -> tuple[str, int, Any, _BlendOutcome]:
    """The personal model and its blend, chosen on the validation users.

    Returns ``(personal model, ease_keep, the carve's item-item weights, blend outcome)``."""
    rc, carve, report = run.config.recommend, run.carve, run.report
    held, seen = run.held, run.seen
    candidates: dict[str, PrunedEASE | ItemKNN] = {}
    for name in models:
        if name == "ease":
            dense = ease_weights(carve.x_train, rc.ease_l2)
            ease_keep, keep_curve = _choose_keep(dense, rc.ease_keep, held, seen)
            report["ease_keep_curve"] = keep_curve
            candidates[name] = PrunedEASE(l2=rc.ease_l2, keep=ease_keep).fit_dense(dense)
            del dense
        else:
            candidates[name] = ItemKNN(n_neighbors=rc.knn_neighbors).fit(carve.x_train)
    alone = {name: ndcg_rows(m.scores(seen), held, seen) for name, m in candidates.items()}
    personal_model = _choose_personal_model(alone)
    report["personal_model"].update(
        model=personal_model,
        curve=[{"model": n, "ndcg": round(_mean(v), 5)} for n, v in alone.items()],
        # what an item-item model can reach on the carve: the share of validation
        # users whose held-out item co-occurs with one of theirs (the test
        # protocol's "Reach" line measures the same on the test users)
        validation_reach=round(cooccurrence_reach(carve.x_train, carve.held_out), 4),
    )
    personal_val = candidates[personal_model]
    outcome = _choose_blend(
        group_val,
        _popularity_rows(carve.x_train, len(run.rows)),
        personal_val.scores(seen),
        held,
        seen,
        options,
        shrinks,
        never_lose=rc.personal_weight == "auto",
    )
    report["personal_curve"] = outcome.curve
    report["plain_parts"] = outcome.plain
    report["blend_kept"] = outcome.kept
    return personal_model, ease_keep, personal_val.weights_, outcome


def _record_personal(
    run: _Run,
    personal: _Personal,
    outcome: _BlendOutcome | None,
    one_model: bool,
    forced: str,
) -> None:
    """The personal blend's choices and report lines (chosen, fixed or defaulted)."""
    rc, report, choices, few = run.config.recommend, run.report, run.choices, run.few
    reason = outcome.reason if outcome is not None else ""
    for name, value, setting in (
        ("personal_weight", personal.weight, rc.personal_weight),
        ("personal_shrinkage", personal.shrinkage, rc.personal_shrinkage),
        ("ease_keep", personal.ease_keep, rc.ease_keep),
    ):
        v: float | int = int(value) if name == "ease_keep" else float(value)
        if name == "ease_keep" and personal.model != "ease":
            choices[name] = Choice(None, "config", "the personal model is item-kNN")
        elif setting != "auto":
            choices[name] = Choice(v, "config")
        elif run.enough:
            choices[name] = Choice(v, "validation", reason if name != "ease_keep" else "")
        else:
            choices[name] = Choice(v, "default", few)
    if one_model:
        choices["personal_model"] = Choice(personal.model, "config", forced)
    elif run.enough:
        choices["personal_model"] = Choice(personal.model, "validation")
    else:
        choices["personal_model"] = Choice(personal.model, "default", few)
    if outcome is not None:
        choices["group_part"] = Choice(personal.group_part, "validation", reason)
    else:
        choices["group_part"] = Choice(personal.group_part, "default", few)
    report["personal_weight"] = personal.weight
    report["personal_shrinkage"] = personal.shrinkage
    report["group_part"] = personal.group_part
    report["ease_keep"] = personal.ease_keep if personal.model == "ease" else None


def _refit_step(
    run: _Run,
    dataset: Dataset,
    text_vectors: npt.NDArray[Any],
    item_vectors: npt.NDArray[Any] | None,
    frozen_semantic: FloatMatrix,
    stages: Stages,
    head: Any,
    groups: _Groups,
    personal: _Personal,
    fine_size: tuple[int, int, float],
    new_users: NewUserModel | None,
    started: float,
) -> Selection:
    """4. All the training data: the aligner stays as early-stopped on the carve (the
    carve lacks only one item per validation user and the held-out new users, and
    retraining would double the cost); behaviour and the personal model are refitted."""
    config, x_full, report = run.config, run.x_full, run.report
    rc = config.recommend
    text_weight = groups.text_weight
    bags_full = make_bags(dataset, text_vectors, item_vectors, x_full)
    text_block = head.transform(bags_full.pooled()) if head is not None else frozen_semantic
    # the fit's user vectors hold this very block (same matrix, settings and seed)
    behaviour = (
        stages.full_behaviour if stages.full_behaviour is not None else stages.behaviour_of(x_full)
    )
    # refitted on all the data: sharing the carve's solve would need the held-out items
    fitted_personal = (
        None
        if personal.model is None
        else new_personal(
            personal.model, l2=rc.ease_l2, keep=personal.ease_keep, n_neighbors=rc.knn_neighbors
        ).fit(x_full)
    )
    n_fine, n_partitions, fine_weight = fine_size
    fine: FineGroups | None = None
    if n_partitions:
        fused_full = fuse_blocks(unit_rows(text_block), behaviour, fine_weight)
        fine = FineGroups(smoothing=rc.smoothing).fit(
            fused_full,
            x_full,
            fit_fine_partitions(fused_full, n_fine, n_partitions, random_state=config.random_state),
        )
    report["choices"] = {name: c.to_dict() for name, c in run.choices.items()}
    report["seconds"] = round(time.perf_counter() - started, 2)
    logger.info(
        "selection (%s): text weight %.2f, %s groups, personal weight %.2f, new users: %s",
        config.align.method,
        text_weight,
        groups.chosen_k if groups.chosen_k is not None else config.clustering.n_groups,
        personal.weight,
        new_users.describe() if new_users is not None else "no texts",
    )
    return Selection(
        head=head,
        text_block=unit_rows(text_block),
        behaviour=behaviour,
        text_weight=text_weight,
        n_groups=None if groups.chosen_k is None else int(groups.chosen_k),
        personal=fitted_personal,
        personal_weight=float(personal.weight),
        personal_shrinkage=float(personal.shrinkage),
        cold_weight=float(new_users.weights["ridge"] if new_users is not None else 0.0),
        ridge=new_users.ridge if new_users is not None else None,
        choices=run.choices,
        report=report,
        carve=run.carve,
        new_users=new_users,
        fine=fine,
        group_part=personal.group_part,
    )


def no_behaviour_choice(config: DiscoveryConfig) -> Choice:
    """The text weight when the user vectors have no behaviour block: 1, because the config
    turned the block off or because the data allows none (an SVD needs two items)."""
    if config.user_vectors.behaviour == "none":
        return Choice(1.0, "config", "user_vectors.behaviour = 'none'")
    return Choice(1.0, "data", "no behaviour block: the interactions allow no SVD component")


def fixed_choices(
    config: DiscoveryConfig, *, has_behaviour: bool, has_texts: bool
) -> dict[str, Choice]:
    """The choices of a fit that carves no validation data: every setting from the config."""
    uv, cc = config.user_vectors, config.clustering
    # a number here: fit carves validation data whenever the weight is "auto"
    # (pipeline._needs_validation) and the Spark engine fixes it first (frozen_config)
    w = float(uv.text_weight)
    weight = Choice(w, "config") if has_behaviour else no_behaviour_choice(config)
    choices = {
        "text_weight": weight,
        "n_groups": (
            Choice(int(cc.n_groups), "config")
            if cc.n_groups != "auto"
            else Choice(None, "config", f"chosen by the clusterer ({cc.select})")
        ),
        "personal_model": Choice(None, "config", "no personal model"),
        "group_part": Choice("groups", "config", "no personal model"),
        "personal_weight": Choice(None, "config", "no personal model"),
        "personal_shrinkage": Choice(None, "config", "no personal model"),
        "ease_keep": Choice(None, "config", "no personal model"),
        "cold_weight": Choice(0.0, "config", "no text → item model"),
        "cold_spread_weight": Choice(0.0, "config", "no text → item model"),
        "cold_top_items": Choice(None, "config", "no text → item model"),
        "ridge_l2": Choice(None, "config", "no text → item model"),
        **_fixed_fine_choices(config, weight, has_behaviour),
    }
    if not has_texts:
        for name in ("cold_weight", "cold_spread_weight"):
            choices[name] = Choice(0.0, "default", "the data has no texts")
    return choices


def fixed_fine_groups(
    text_block: FloatMatrix,
    behaviour: FloatMatrix,
    x: sp.spmatrix,
    choices: dict[str, Choice],
    config: DiscoveryConfig,
) -> tuple[FineGroups | None, dict[str, Choice]]:
    """The fine groups of a fit that carves no validation data (every setting fixed, or
    the Spark engine): the sizes and text weight ``choices`` holds (:func:`fixed_choices`),
    ``K`` capped so a fine group has :data:`MIN_FINE_MEMBERS` users on average. Off, with
    source ``"data"`` and the reason, above :data:`FINE_MAX_CELLS` users × items or with
    too few users. Returns the fine groups (or None) and the choices, updated.
    """
    n_fine, n_partitions = choices["fine_k"].value, choices["fine_partitions"].value
    if not n_partitions or not n_fine:
        return None, choices
    weight = choices["fine_text_weight"].value
    fused = fuse_blocks(text_block, behaviour, float(weight if weight is not None else 1.0))
    n_users, n_items = x.shape
    n_known = int(np.any(np.asarray(fused) != 0, axis=1).sum())
    reason = ""
    if n_users * n_items > FINE_MAX_CELLS:
        reason = (
            f"{n_users:,} users x {n_items:,} items is above {FINE_MAX_CELLS:,} cells; the "
            "segments' popularity is the group part"
        )
    elif n_known < 2 * MIN_FINE_MEMBERS:
        reason = f"only {n_known} users with a vector"
    if reason:
        off = {
            "fine_k": Choice(None, "data", reason),
            "fine_partitions": Choice(0, "data", reason),
            "fine_text_weight": Choice(None, "data", reason),
        }
        return None, {**choices, **off}
    k = min(int(n_fine), max(2, n_known // MIN_FINE_MEMBERS))
    if k != n_fine:
        capped = f"capped at {k} so a fine group has {MIN_FINE_MEMBERS} users on average"
        choices = {**choices, "fine_k": Choice(k, "data", capped)}
    centroids = fit_fine_partitions(fused, k, int(n_partitions), random_state=config.random_state)
    fine = FineGroups(smoothing=config.recommend.smoothing).fit(fused, x, centroids)
    return fine, choices


def _fixed_fine_choices(
    config: DiscoveryConfig, text_weight: Choice, has_behaviour: bool
) -> dict[str, Choice]:
    """Fine groups without a validation carve: the config's sizes and text weight, or the
    defaults (the segments' text weight, ``text_weight``)."""
    cc = config.clustering
    if cc.fine_partitions == 0:
        off = "clustering.fine_partitions = 0"
        return {
            "fine_k": Choice(None, "config", off),
            "fine_partitions": Choice(0, "config", off),
            "fine_text_weight": Choice(None, "config", off),
        }
    out: dict[str, Choice] = {}
    no_carve = "no validation carve (every setting is fixed)"
    for name, setting in (("fine_k", cc.fine_k), ("fine_partitions", cc.fine_partitions)):
        out[name] = (
            Choice(int(setting), "config")
            if setting != "auto"
            else Choice(int(DEFAULTS[name]), "default", no_carve)
        )
    if not has_behaviour:  # one block: its weight is 1 whatever the config says
        out["fine_text_weight"] = text_weight
    elif cc.fine_text_weight != "auto":
        out["fine_text_weight"] = Choice(float(cc.fine_text_weight), "config")
    else:
        reason = f"{no_carve}: the segments' text weight"
        out["fine_text_weight"] = Choice(text_weight.value, "default", reason)
    return out


def _choose_groups(
    grid: list[dict[str, Any]],
    per_user: dict[tuple[float, int | None], npt.NDArray[np.float64]],
    labels_at: dict[tuple[float, int | None], IntVector],
    fused_at: Callable[[float], FloatMatrix],
    known: IntVector,
    stages: Stages,
    config: DiscoveryConfig,
    report: dict[str, Any],
    choices: dict[str, Choice],
) -> tuple[float, int]:
    """The text weight and number of groups: the stable pair with the best validation NDCG@10.

    Pairs are tried best first; each gains ``stability`` when measured (the mean ARI of
    resampled re-clusterings of the ``known`` users with the clustering of all users, see
    :mod:`usergroups.clustering.stability`) and ``weakest_group`` (the lowest clusterboot
    Jaccard of its groups), and the first to reach ``clustering.min_stability`` with no
    group below ``clustering.min_group_stability`` wins, so the text weight is chosen with
    stability in view (a weight at which finer groups are stable can win over one at
    which only two are). Every K at the chosen weight is then measured too (the report's
    trade-off curve), and ``within`` marks the stable candidates. When no pair is stable,
    the most stable is taken and the choice says so.

    Among the stable K at that weight, the fewest within one *paired* standard error of
    the best stable one win: a stable split of a real group (two halves that k-means cuts
    the same way every time) must also earn its keep on the same validation users. The
    paired error is the one that fits (the candidates are scored on the same users); the
    unpaired one of issue 12 returned 2 groups on ML-100K, where 4 are as stable and score
    10 % higher.

    With the stability rule off (``min_stability`` or ``stability_resamples`` 0), the best
    pair's weight is kept and the fewest groups within one (unpaired) standard error of
    the best win, the rule of issue 12.

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 76 lines.
    """
    from usergroups.clustering.stability import measure_stability

    cc = config.clustering

    def mean(e: dict[str, Any]) -> float:
        values = per_user[(e["text_weight"], e["k"])]
        return float(values.mean()) if len(values) else 0.0

    ranked = sorted(grid, key=lambda e: (-mean(e), e["k"], e["text_weight"]))
    if cc.stability_resamples == 0 or cc.min_stability == 0:
        return _fewest_within_se(grid, ranked, mean, per_user, report, choices)

    def stability_of(e: dict[str, Any]) -> float:
        if "stability" not in e:
            w, k = float(e["text_weight"]), int(e["k"])

            def fit_labels(z: FloatMatrix, seed: int) -> npt.ArrayLike:
                return stages.clusterer_at(k, True, seed).fit(z).labels_

            measured = measure_stability(
                labels_at[(w, k)][known],
                fit_labels,
                fused_at(w)[known],
                n_resamples=cc.stability_resamples,
                random_state=config.random_state,
            )
            e["stability"] = round(measured.ari, 4)
            groups = measured.groups
            e["weakest_group"] = round(float(np.nanmin(groups)), 4) if len(groups) else 0.0
        return float(e["stability"])

    def stable(e: dict[str, Any]) -> bool:
        # the partition agrees with itself, and no group of it is an arbitrary cut (a
        # stable-looking ARI can hide one group split in two halves that change every run)
        return stability_of(e) >= cc.min_stability and e["weakest_group"] >= cc.min_group_stability

    chosen = next((e for e in ranked if stable(e)), None)
    reason = ""
    if chosen is None:  # every pair was measured
        chosen = max(grid, key=lambda e: (e["stability"], -e["k"]))
        reason = (
            f"no number of groups reached stability {cc.min_stability:g} (ARI over "
            f"{cc.stability_resamples} resamples); the most stable, {chosen['k']} "
            f"({chosen['stability']:.2f}), was taken"
        )
        # logged with the other fallbacks by the pipeline
        report.setdefault("fallbacks", []).append(f"n_groups: {reason}")
    w = float(chosen["text_weight"])
    top = per_user[(w, chosen["k"])]
    for e in grid:
        if e["text_weight"] == w:
            stability_of(e)
        # candidates: stable, at the chosen weight, within one paired SE of the best stable
        e["within"] = bool(
            e["text_weight"] == w
            and "stability" in e
            and stable(e)
            and (e is chosen or _paired_within(top, per_user[(w, e["k"])]))
        )
    if not reason:
        chosen = min((e for e in grid if e["within"]), key=lambda e: e["k"])
    report["min_stability"] = cc.min_stability
    report["stability_checked"] = sum("stability" in e for e in grid)
    choices["n_groups"] = Choice(int(chosen["k"]), "validation", reason)
    return w, int(chosen["k"])


def _fewest_within_se(
    grid: list[dict[str, Any]],
    ranked: list[dict[str, Any]],
    mean: Callable[[dict[str, Any]], float],
    per_user: dict[tuple[float, int | None], npt.NDArray[np.float64]],
    report: dict[str, Any],
    choices: dict[str, Choice],
) -> tuple[float, int]:
    """The stability rule off: the best pair's weight, and the fewest groups within
    ``K_TOLERANCE`` (unpaired) standard errors of the best (issue 12)."""
    w = float(ranked[0]["text_weight"])
    values = per_user[(w, ranked[0]["k"])]
    se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
    report["k_se"] = round(se, 5)
    for e in grid:
        e["within"] = bool(
            e["text_weight"] == w and mean(e) >= mean(ranked[0]) - K_TOLERANCE * se - 1e-12
        )
    k = int(min((e for e in grid if e["within"]), key=lambda e: e["k"])["k"])
    choices["n_groups"] = Choice(k, "validation")
    return w, k


def _choose_fine_groups(
    fused_at: Callable[[float], FloatMatrix],
    weights: tuple[float, ...],
    known: IntVector,
    carve: ValidationCarve,
    segment_values: npt.NDArray[np.float64],
    config: DiscoveryConfig,
    enough: bool,
    report: dict[str, Any],
    choices: dict[str, Choice],
    fitted: dict[tuple[float, int], FloatMatrix],
) -> tuple[int, int, float]:
    """The fine groups' text weight, groups per partition and number of partitions, on
    the validation users.

    ``fused_at(w)`` gives the carve's vectors fused at text weight ``w``. With several
    candidate ``weights``, each is scored at the default size (K = 16 capped, the mean of 5
    partitions) and the best NDCG@10 of the held-out items wins (ties: more text, which
    places new users better). At that weight each candidate (K, P) is the mean of the first
    P of ``max(P grid)`` partitions fitted at K
    (:func:`usergroups.clustering.fine.fit_fine_partitions`), so the candidates of one K
    share their fits. The best mean NDCG@10 wins (ties: more partitions, then fewer
    groups), and then the most partitions within one paired standard error of it at its K
    (more partitions only average out more noise); under ``"auto"`` the fine groups are
    used only when they beat the segments' own group popularity on the same users, else
    they are off and the choice says so.
    Returns ``(n_fine, n_partitions, text weight)``, ``n_partitions = 0`` for off; the
    partitions it fitted are kept in ``fitted`` (:func:`_partitions`).

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 66 lines.
    """
    n_known = int(np.any(fused_at(weights[0])[known] != 0, axis=1).sum())
    search = _FineSearch.of(config, weights, n_known, report, choices)
    if search.ps == (0,):
        return search.decide(None, 0, "config", "clustering.fine_partitions = 0")
    cells = carve.x_train.shape[0] * carve.x_train.shape[1]
    if cells > FINE_MAX_CELLS:
        reason = (
            f"{carve.x_train.shape[0]:,} users x {carve.x_train.shape[1]:,} items is above "
            f"{FINE_MAX_CELLS:,} cells; the segments' popularity is the group part"
        )
        return search.decide(None, 0, "data", reason)
    if n_known < 2 * MIN_FINE_MEMBERS:
        return search.decide(None, 0, "data", f"only {n_known} users with a vector")
    if not enough:
        return search.decide(search.k0, search.p0, "default", "too few validation users")

    rows = carve.warm_rows
    held, seen = carve.held_out[rows], carve.x_train[rows]

    def scored(fused: FloatMatrix, centroids: FloatMatrix) -> npt.NDArray[np.float64]:
        fine = FineGroups(smoothing=config.recommend.smoothing).fit(fused, carve.x_train, centroids)
        return ndcg_rows(fine.user_scores(rows), held, seen)

    def fit_at(w: float, k: int, p: int) -> FloatMatrix:
        return _partitions(fitted, fused_at(w)[known], w, k, p, config.random_state)

    weight_curve = _fine_weight_pass(search, fused_at, fit_at, scored)
    values, curve = _fine_size_pass(search, fused_at(search.weight), fit_at, scored)
    best_k, best_p = max(values, key=lambda kp: (_mean(values[kp]), kp[1], -kp[0]))
    # averaging more partitions only removes the subsamples' noise: the most partitions
    # within one paired standard error of the best at its K (what we recommend is steadier)
    best = values[(best_k, best_p)]
    best_p = max(p for p in search.ps if p == best_p or _paired_within(best, values[(best_k, p)]))
    segments = _mean(segment_values)
    report["fine_groups"] = {
        "weights": weight_curve,
        "curve": curve,
        "segments_ndcg": round(segments, 5),
        "best_ndcg": round(_mean(values[(best_k, best_p)]), 5),
    }
    if not (search.fixed_k and search.fixed_p) and _mean(values[(best_k, best_p)]) <= segments:
        return search.decide(
            None,
            0,
            "validation",
            f"the segments predict as well on validation ({segments:.4f} NDCG@10 against "
            f"{_mean(values[(best_k, best_p)]):.4f} for the best fine groups)",
        )
    return search.decide(best_k, best_p, "validation")


@dataclass
class _FineSearch:
    """The candidates of :func:`_choose_fine_groups` and the choices it records."""

    ks: tuple[int, ...]
    ps: tuple[int, ...]
    fixed_k: bool
    fixed_p: bool
    weights: tuple[float, ...]
    k0: int  # the default size, at which the text weight is chosen
    p0: int
    report: dict[str, Any]
    choices: dict[str, Choice]
    weight: float = 0.0

    @classmethod
    def of(
        cls,
        config: DiscoveryConfig,
        weights: tuple[float, ...],
        n_known: int,
        report: dict[str, Any],
        choices: dict[str, Choice],
    ) -> _FineSearch:
        cc = config.clustering
        cap = max(2, n_known // MIN_FINE_MEMBERS)
        fixed_k, fixed_p = cc.fine_k != "auto", cc.fine_partitions != "auto"
        ks = tuple(sorted({min(int(k), cap) for k in ((cc.fine_k,) if fixed_k else FINE_K_GRID)}))
        ps = (int(cc.fine_partitions),) if fixed_p else FINE_PARTITIONS_GRID
        k0 = ks[0] if fixed_k else min(int(DEFAULTS["fine_k"]), cap)
        p0 = ps[0] if fixed_p else int(DEFAULTS["fine_partitions"])
        return cls(ks, ps, fixed_k, fixed_p, weights, k0, p0, report, choices, weights[0])

    def decide(
        self, k: int | None, p: int, source: ChoiceSource, reason: str = ""
    ) -> tuple[int, int, float]:
        """Record the fine groups' choices; returns ``(n_fine, n_partitions, weight)``."""
        k_source: ChoiceSource = "config" if self.fixed_k and p else source
        p_source: ChoiceSource = "config" if self.fixed_p else source
        choices = self.choices
        choices["fine_k"] = Choice(k if p else None, k_source, "" if p and self.fixed_k else reason)
        choices["fine_partitions"] = Choice(p, p_source, "" if self.fixed_p and p else reason)
        if not p:
            choices["fine_text_weight"] = Choice(None, source, reason)
        elif len(self.weights) > 1:
            choices["fine_text_weight"] = Choice(self.weight, "validation")
        self.report["fine_groups"] = {
            **self.report.get("fine_groups", {}),
            "n_fine": k,
            "partitions": p,
            "text_weight": self.weight if p else None,
        }
        return (int(k) if k else 0), p, self.weight


def _partitions(
    fitted: dict[tuple[float, int], FloatMatrix],
    vectors: FloatMatrix,
    w: float,
    k: int,
    p: int,
    seed: int | None,
) -> FloatMatrix:
    """The first ``p`` fine partitions of ``K = k`` of ``vectors`` (fused at text weight
    ``w``), each fitted once and kept in ``fitted``: partition ``i`` is the same whatever
    the number fitted (one seeded stream), so the first ``p`` of a larger fit serve and a
    smaller one is extended (:func:`usergroups.clustering.fine.fit_fine_partitions`)."""
    have = fitted.get((w, k))
    if have is None or len(have) < p:
        start = 0 if have is None else len(have)
        more = fit_fine_partitions(vectors, k, p, random_state=seed, first=start)
        have = more if have is None else np.concatenate([have, more])
        fitted[(w, k)] = have
    return have[:p]


def _fine_weight_pass(
    search: _FineSearch,
    fused_at: Callable[[float], FloatMatrix],
    fit_at: Callable[[float, int, int], FloatMatrix],
    scored: Callable[[FloatMatrix, FloatMatrix], npt.NDArray[np.float64]],
) -> list[dict[str, Any]]:
    """1. The text weight, at the default size (its fits are reused by the size pass);
    sets ``search.weight`` and returns the curve (empty with one candidate)."""
    if len(search.weights) == 1:
        return []
    by_weight = {
        w: _mean(scored(fused_at(w), fit_at(w, search.k0, search.p0))) for w in search.weights
    }
    search.weight = max(search.weights, key=lambda w: (by_weight[w], w))
    return [{"text_weight": w, "ndcg": round(v, 5)} for w, v in by_weight.items()]


def _fine_size_pass(
    search: _FineSearch,
    fused: FloatMatrix,
    fit_at: Callable[[float, int, int], FloatMatrix],
    scored: Callable[[FloatMatrix, FloatMatrix], npt.NDArray[np.float64]],
) -> tuple[dict[tuple[int, int], npt.NDArray[np.float64]], list[dict[str, Any]]]:
    """2. Every (K, P) at the chosen weight: per-user NDCG@10 and the curve."""
    values: dict[tuple[int, int], npt.NDArray[np.float64]] = {}
    curve: list[dict[str, Any]] = []
    for k in search.ks:
        centroids = fit_at(search.weight, k, max(search.ps))
        for p in search.ps:
            values[(k, p)] = scored(fused, centroids[:p])
            curve.append({"n_fine": k, "partitions": p, "ndcg": round(_mean(values[(k, p)]), 5)})
    return values, curve


def _mean(values: npt.NDArray[np.float64]) -> float:
    return float(values.mean()) if len(values) else 0.0


def _new_user_fine_part(
    fine: FineGroups | None, text_block: FloatMatrix
) -> Callable[[FloatMatrix], FloatMatrix] | None:
    """New users' fine-group scores from their aligned text vector (no behaviour yet):
    soft membership among the fine groups' text centres (their members' mean text,
    ``text_block`` holding the carve users' text vectors), as the fitted model places them
    (:meth:`usergroups.fitted.FittedState.new_user_group_part`)."""
    if fine is None:
        return None
    centroids = fine.text_centroids(text_block)

    def part(query: FloatMatrix) -> FloatMatrix:
        return fine.soft_scores(query, centroids=centroids)

    return part


def _choose_keep(
    dense: npt.NDArray[Any],
    setting: int | str,
    held: sp.csr_matrix,
    seen: sp.csr_matrix,
) -> tuple[int, list[dict[str, Any]]]:
    """The fewest EASE weights per item whose validation NDCG@10 (EASE alone) is within
    one *paired* standard error of the best.

    Pruning only removes information, so the candidates differ by small, systematic
    losses on the same users: the paired standard error of the per-user differences
    detects them, where the standard error of the mean (used for the number of groups)
    would hide a 10 % loss on a few hundred validation users.
    """
    n_items = dense.shape[0]
    if setting != "auto":
        return int(setting), []
    keeps = sorted({min(k, n_items) for k in EASE_KEEP_GRID})
    values = {
        k: ndcg_rows(PrunedEASE(keep=k).fit_dense(dense).scores(seen), held, seen) for k in keeps
    }
    means = {k: float(v.mean()) if len(v) else 0.0 for k, v in values.items()}
    best = max(keeps, key=lambda k: (means[k], -k))

    chosen = min(k for k in keeps if k == best or _paired_within(values[best], values[k]))
    return chosen, [{"keep": k, "ndcg": round(means[k], 5)} for k in keeps]


@dataclass
class _BlendOutcome:
    """What :func:`_choose_blend` chose, and the curve it chose on."""

    group_part: str
    weight: float
    shrinkage: float
    kept: bool
    reason: str
    curve: list[dict[str, Any]]
    plain: dict[str, float]


def _popularity_rows(x: sp.csr_matrix, n_rows: int) -> FloatMatrix:
    """Global popularity (share of users per item) of ``x``, repeated ``n_rows`` times: what
    ``GroupPopularity`` gives a user outside every group, the plain "popularity" part."""
    popularity = np.asarray(x.sum(axis=0), dtype=np.float32).ravel() / max(x.shape[0], 1)
    return np.broadcast_to(popularity, (n_rows, len(popularity)))


def _choose_personal_model(alone: dict[str, npt.NDArray[np.float64]]) -> str:
    """The personal model with the best validation NDCG@10 on its own (EASE on a tie).

    Issue 24: on small catalogues with short histories item-kNN beats EASE by 4-12 %, and
    it was never a candidate.
    """
    order = sorted(alone, key=lambda n: (-_mean(alone[n]), n != "ease"))
    return order[0]


def _choose_blend(
    group: npt.NDArray[Any],
    popularity: npt.NDArray[Any],
    personal: npt.NDArray[Any],
    held: sp.csr_matrix,
    seen: sp.csr_matrix,
    weights: Sequence[float],
    shrinks: Sequence[float],
    *,
    never_lose: bool = True,
) -> _BlendOutcome:
    """The blend of a group part and the personal model, or the best plain part.

    The grid blends each group part (the groups' popularity, global popularity) with the
    personal model at every weight and shrinkage. The plain parts are always measured:
    ``popularity`` (global popularity alone), ``groups`` (the group part alone) and
    ``personal`` (the personal model alone, weight 1 without shrinkage). With
    ``never_lose`` (issue 24) the best blend is kept only when it beats *every* plain part
    by one paired standard error on the same validation users (:func:`_paired_within`);
    otherwise the best plain part is used and ``reason`` says so; popularity, the simplest,
    unless another plain part beats it by a paired standard error. A blend chosen on noise
    lost to its own parts on test (Amazon MI, ML-latest-small), and on Yelp, where the
    held-out item co-occurs with the user's items for 1.4 % of users, a 0.75 personal
    weight fell below popularity. Without ``never_lose`` (a fixed weight) the best entry of
    the grid wins: the weight stays as set and the group part is still chosen, so a refit
    that keeps the weight keeps ranking by popularity where popularity won.
    """
    plain_scores = {"groups": group, "personal": personal, "popularity": popularity}
    plain = {name: ndcg_rows(v, held, seen) for name, v in plain_scores.items()}
    curve: list[dict[str, Any]] = []
    blends: list[tuple[str, float, float, npt.NDArray[np.float64]]] = []
    # each part scaled once, not once per grid entry: blend() of the unscaled scores
    # gives these very numbers (issue 25)
    parts = {"groups": row_scaled(group), "popularity": row_scaled(popularity)}
    scaled_personal = row_scaled(personal)
    for part, scores in parts.items():
        for a in weights:
            for c in shrinks if a > 0 else shrinks[:1]:
                if never_lose and (a == 0.0 or (a == 1.0 and c == 0.0)):
                    continue  # a plain part, measured above
                values = _blend_ndcg(
                    scores, scaled_personal, personal_weights(seen, a, c), held, seen
                )
                blends.append((part, float(a), float(c), values))
                curve.append(
                    {"part": part, "weight": a, "shrinkage": c, "ndcg": round(_mean(values), 5)}
                )
    plain_means = {name: round(_mean(v), 5) for name, v in plain.items()}
    if not never_lose:
        part, a, c, _ = max(blends, key=lambda t: _mean(t[3]))
        return _BlendOutcome(part, a, c, True, "", curve, plain_means)
    best_plain = max(plain, key=lambda n: _mean(plain[n]))  # ties: groups, personal, popularity
    if best_plain != "popularity" and _paired_within(plain[best_plain], plain["popularity"]):
        # the simplest method wins unless another beats it by a paired standard error
        best_plain = "popularity"
    if blends:
        part, a, c, values = max(blends, key=lambda t: _mean(t[3]))
        losers = [n for n, v in plain.items() if _paired_within(values, v)]
        if not losers:
            return _BlendOutcome(part, a, c, True, "", curve, plain_means)
        what = f"{part} with personal weight {a:g}, shrinkage {c:g}"
        reason = (
            f"the best blend ({what}: {_mean(values):.4f}) does not beat "
            f"{', '.join(losers)} alone by a paired standard error on the validation users; "
            f"{best_plain} alone ({_mean(plain[best_plain]):.4f}) is used"
        )
    else:
        reason = f"no blend in the grid; {best_plain} alone is used"
    if best_plain == "personal":
        return _BlendOutcome("groups", 1.0, 0.0, False, reason, curve, plain_means)
    return _BlendOutcome(best_plain, 0.0, 0.0, False, reason, curve, plain_means)


GRID_CELLS = 1 << 22
"""Scores blended and ranked at once by :func:`_blend_ndcg` (16 MB of float32)."""


def grid_threads() -> int:
    """Threads for the validation grids: the cores this process may use, at most 4
    (the blend and the comparisons are NumPy calls that release the GIL)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def _blend_ndcg(
    group: FloatMatrix,
    personal: FloatMatrix,
    weights: npt.NDArray[np.float32],
    held: sp.csr_matrix,
    seen: sp.csr_matrix,
) -> npt.NDArray[np.float64]:
    """``ndcg_rows(_mix_scaled(group, personal, weights), held, seen)``, blended and ranked
    a block of rows at a time on :func:`grid_threads` threads: each row's NDCG is its
    own, so the blocks give the same values, in bounded memory and on every core."""
    n_rows, n_items = group.shape
    step = max(1, GRID_CELLS // max(n_items, 1))
    blocks = [slice(start, start + step) for start in range(0, n_rows, step)]

    def one(rows: slice) -> npt.NDArray[np.float64]:
        mixed = _mix_scaled(group[rows], personal[rows], weights[rows])
        return ndcg_rows(mixed, held[rows], seen[rows])

    if len(blocks) < 2:
        return ndcg_rows(_mix_scaled(group, personal, weights), held, seen)
    with ThreadPoolExecutor(max_workers=min(grid_threads(), len(blocks))) as pool:
        return np.concatenate(list(pool.map(one, blocks)))


def _mix_scaled(
    group: FloatMatrix, personal: FloatMatrix, weights: npt.NDArray[np.float32]
) -> FloatMatrix:
    """:func:`~usergroups.recommend.hybrid.blend` of rows already scaled by
    :func:`~usergroups.recommend.hybrid.row_scaled` (the same arithmetic, so the same
    numbers), with one weight per row."""
    if not len(weights):
        return blend(group, personal, weights)
    w = weights.reshape(-1, 1)
    return (1.0 - w) * group + w * personal


def _paired_within(best: npt.NDArray[np.float64], other: npt.NDArray[np.float64]) -> bool:
    """Whether ``other``'s per-user NDCG is within ``K_TOLERANCE`` *paired* standard errors
    of ``best``'s on the same validation users (False with fewer than two users)."""
    diff = best - other
    if len(diff) < 2:
        return False
    se = float(diff.std(ddof=1) / np.sqrt(len(diff)))
    return float(diff.mean()) <= K_TOLERANCE * se + 1e-12


def _group_scores(x: sp.csr_matrix, labels: IntVector, smoothing: float) -> GroupPopularity:
    return GroupPopularity(smoothing=smoothing).fit(x, labels)


def _choose_new_user_model(
    dataset: Dataset,
    text_vectors: npt.NDArray[Any],
    transform: Callable[[npt.NDArray[Any]], FloatMatrix],
    carve: ValidationCarve,
    aligned_tr: FloatMatrix,
    labels_tr: IntVector,
    rec_tr: GroupPopularity,
    item_item_val: Any,
    x_full: sp.csr_matrix,
    config: DiscoveryConfig,
    fine_part: Callable[[FloatMatrix], FloatMatrix] | None = None,
) -> tuple[NewUserModel | None, dict[str, Any], dict[str, Choice]]:
    """The new-user model (:mod:`usergroups.recommend.new_users`), chosen on the carve's
    held-out new users and refitted on all the texts.

    Each component's own setting is chosen first, alone (the ridge's ``l2``, the number
    of retrieved items), then the mix of the three on a simplex grid; weights the config
    fixes stay fixed. Without an item-item model (``recommend.personal = "none"``) the
    spread is left out.

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 80 lines.
    """
    rc = config.recommend
    report: dict[str, Any] = {}
    choices: dict[str, Choice] = {}
    names = ("cold_weight", "cold_spread_weight", "cold_top_items", "ridge_l2")
    if not len(dataset.texts):
        for name in names:
            value = 0.0 if name in ("cold_weight", "cold_spread_weight") else None
            choices[name] = Choice(value, "default", "the data has no texts")
        report.update(cold_weight=0.0, ridge_l2=None)
        return None, report, choices

    tv = unit_rows(np.asarray(text_vectors, np.float32))
    authors = text_users(dataset)
    items_of_text = text_items(dataset)
    n_items = x_full.shape[1]
    fixed, reasons = _fixed_cold_weights(config)
    ridge_l2 = DEFAULTS["ridge_l2"]
    top_items = int(
        DEFAULTS["cold_top_items"] if rc.cold_top_items == "auto" else rc.cold_top_items
    )
    weights = _default_cold_weights(fixed)

    n_cold = len(carve.cold_rows)
    n_groups_tr = _n_found(labels_tr)
    cold_enough = n_cold >= MIN_VALIDATION_USERS and n_groups_tr > 0
    few_cold = f"only {n_cold} held-out new users (< {MIN_VALIDATION_USERS})"
    if cold_enough and item_item_val is None and "spread" not in fixed:
        fixed["spread"] = weights["spread"] = 0.0
        reasons["spread"] = "no item-item model on the validation carve (too few warm users)"
        weights["group"] = 1.0 - weights["ridge"]
    if cold_enough:
        query = transform(tv[carve.cold_query])
        evaluate = _cold_evaluator(carve, items_of_text)
        parts, curve = _cold_group_parts(
            query, aligned_tr, labels_tr, rec_tr, carve.x_train, config, evaluate, fine_part
        )
        ridge_l2, top_items = _cold_text_parts(
            tv,
            authors,
            items_of_text,
            carve,
            item_item_val,
            n_items,
            config,
            fixed,
            top_items,
            evaluate,
            parts,
            curve,
        )
        weights = _mix_cold_parts(parts, fixed, evaluate, curve, report)

    ridge = TextItemRidge(l2=ridge_l2).fit(tv, x_full[authors])
    docs = item_documents(tv, items_of_text, n_items) if weights["spread"] > 0 else None
    model = NewUserModel(weights, ridge=ridge, item_docs=docs, top_items=top_items)
    choices.update(
        _new_user_choices(config, weights, top_items, ridge_l2, reasons, cold_enough, few_cold)
    )
    spread_on = weights["spread"] > 0
    report.update(
        cold_weight=weights["ridge"],
        cold_spread_weight=weights["spread"],
        cold_top_items=top_items if spread_on else None,
        ridge_l2=ridge_l2,
        new_users=model.describe(),
    )
    return model, report, choices


def _fixed_cold_weights(config: DiscoveryConfig) -> tuple[dict[str, float], dict[str, str]]:
    """The new-user weights the config fixes (``ridge``, ``spread``), and why a weight is
    forced (the spread without an item-item model)."""
    rc = config.recommend
    fixed: dict[str, float] = {}
    reasons: dict[str, str] = {}
    if rc.cold_weight != "auto":
        fixed["ridge"] = float(rc.cold_weight)
    if rc.cold_spread_weight != "auto":
        fixed["spread"] = float(rc.cold_spread_weight)
    if rc.personal == "none":
        if fixed.get("spread", 0.0) > 0:
            raise ConfigError(
                f"recommend.cold_spread_weight={rc.cold_spread_weight} needs the item-item "
                "model of the personal model (recommend.personal='auto', 'ease' or "
                "'itemknn'); set it to 0 or use a personal model"
            )
        fixed["spread"] = 0.0
        reasons["spread"] = "no item-item model (recommend.personal = 'none')"
    return fixed, reasons


def _default_cold_weights(fixed: dict[str, float]) -> dict[str, float]:
    """The new-user mix when it cannot be chosen: the defaults, with the fixed weights,
    scaled so the parts sum to one."""
    defaults = {"ridge": DEFAULTS["cold_weight"], "spread": DEFAULTS["cold_spread_weight"]}
    defaults.update(fixed)
    if defaults["ridge"] + defaults["spread"] > 1.0:
        free = "spread" if "spread" not in fixed else "ridge"
        defaults[free] = 1.0 - defaults["ridge" if free == "spread" else "spread"]
    return {"group": 1.0 - defaults["ridge"] - defaults["spread"], **defaults}


def _cold_evaluator(
    carve: ValidationCarve, items_of_text: IntVector
) -> Callable[[npt.NDArray[Any]], float]:
    """NDCG@10 of the held-out new users' other items, the item of their first text seen."""
    q_items = items_of_text[carve.cold_query]
    has = q_items >= 0
    cold_seen = sp.csr_matrix(
        (np.ones(int(has.sum()), np.float32), (np.flatnonzero(has), q_items[has])),
        shape=carve.cold_targets.shape,
    )

    def evaluate(scores: npt.NDArray[Any]) -> float:
        return ndcg_at_k(scores, carve.cold_targets, cold_seen)

    return evaluate


def _cold_group_parts(
    query: FloatMatrix,
    aligned_tr: FloatMatrix,
    labels_tr: IntVector,
    rec_tr: GroupPopularity,
    x_train: sp.csr_matrix,
    config: DiscoveryConfig,
    evaluate: Callable[[npt.NDArray[Any]], float],
    fine_part: Callable[[FloatMatrix], FloatMatrix] | None,
) -> tuple[dict[str, npt.NDArray[Any]], list[tuple[str, float]]]:
    """The group part of the held-out new users' scores, and the curve that starts with
    popularity and the group answers."""
    n_groups_tr = _n_found(labels_tr)
    # scored the way the model will place new users (assign.method)
    if config.assign.method == "centroid":
        known_tr = labels_tr >= 0
        centres = pool_rows(labels_tr[known_tr], aligned_tr[known_tr], n_groups_tr)
        proba = softmax_confidence(query @ unit_rows(centres).T)
    else:
        proba = knn_proba(query, aligned_tr, labels_tr, n_groups_tr, config.assign.n_neighbors)
    group_rows = rec_tr.group_scores(np.arange(n_groups_tr))
    pop = np.asarray(x_train.sum(axis=0), dtype=np.float32).repeat(len(query), 0)
    parts = {"group": soft_group_scores(proba, group_rows)}
    curve: list[tuple[str, float]] = [
        ("Pop", evaluate(pop)),
        ("group (most probable)", evaluate(group_rows[proba.argmax(axis=1)])),
        ("group (soft membership)", evaluate(parts["group"])),
    ]
    if fine_part is not None:
        # the group part of every answer: the fine groups, by soft membership
        parts["group"] = fine_part(query)
        curve.append(("fine groups (soft membership)", evaluate(parts["group"])))
    return parts, curve


def _cold_text_parts(
    tv: FloatMatrix,
    authors: IntVector,
    items_of_text: IntVector,
    carve: ValidationCarve,
    item_item_val: Any,
    n_items: int,
    config: DiscoveryConfig,
    fixed: dict[str, float],
    top_items: int,
    evaluate: Callable[[npt.NDArray[Any]], float],
    parts: dict[str, npt.NDArray[Any]],
    curve: list[tuple[str, float]],
) -> tuple[float, int]:
    """The text parts of the held-out new users' scores, each setting chosen alone: the
    text → item ridge's ``l2`` and, unless fixed off, the spread's retrieved items.

    Adds them to ``parts`` and their curves to ``curve``; returns ``(ridge_l2, top_items)``."""
    rc = config.recommend
    fit_rows = np.flatnonzero(carve.text_keep)
    q_frozen = tv[carve.cold_query]
    ridges = {
        l2: TextItemRidge(l2=l2).fit(tv[fit_rows], carve.x_train[authors[fit_rows]])
        for l2 in RIDGE_GRID
    }
    ridge_scores = {l2: r.scores(q_frozen) for l2, r in ridges.items()}
    ridge_curve = {l2: evaluate(v) for l2, v in ridge_scores.items()}
    curve += [(f"ridge l2={l2:g}", v) for l2, v in ridge_curve.items()]
    ridge_l2 = max(RIDGE_GRID, key=lambda l2: ridge_curve[l2])
    parts["ridge"] = ridge_scores[ridge_l2]
    if fixed.get("spread") != 0.0:
        docs_tr = item_documents(tv[fit_rows], items_of_text[fit_rows], n_items)
        tops = TOP_ITEMS_GRID if rc.cold_top_items == "auto" else (top_items,)
        spreads = {m: spread_scores(q_frozen, docs_tr, item_item_val, m) for m in tops}
        spread_curve = {m: evaluate(v) for m, v in spreads.items()}
        curve += [(f"spread top {m}", v) for m, v in spread_curve.items()]
        top_items = max(tops, key=lambda m: spread_curve[m])
        parts["spread"] = spreads[top_items]
    return ridge_l2, top_items


def _mix_cold_parts(
    parts: dict[str, npt.NDArray[Any]],
    fixed: dict[str, float],
    evaluate: Callable[[npt.NDArray[Any]], float],
    curve: list[tuple[str, float]],
    report: dict[str, Any],
) -> dict[str, float]:
    """The best mix of the new-user parts on the simplex grid (fixed weights kept); the
    curve and every mix go into ``report``."""
    scaled = {name: row_scaled(v) for name, v in parts.items()}
    mixes = []
    for w in weight_grid(COLD_WEIGHT_STEP, fixed):
        mixed = sum(w[name] * scaled[name] for name in scaled if w[name] > 0)
        mixes.append((w, evaluate(np.asarray(mixed))))
    weights, best = max(mixes, key=lambda t: t[1])
    curve.append((_mix_name(weights), best))
    report["cold_curve"] = [{"method": m, "ndcg": round(v, 5)} for m, v in curve]
    report["cold_mixes"] = [{**w, "ndcg": round(v, 5)} for w, v in mixes]
    return weights


def _new_user_choices(
    config: DiscoveryConfig,
    weights: dict[str, float],
    top_items: int,
    ridge_l2: float,
    reasons: dict[str, str],
    cold_enough: bool,
    few_cold: str,
) -> dict[str, Choice]:
    """The new-user model's choices: fixed by the config, forced, chosen or defaulted."""
    rc = config.recommend

    def choice(value: float | int, setting: Any, component: str = "") -> Choice:
        if setting != "auto":
            return Choice(value, "config")
        if component in reasons:
            return Choice(value, "default", reasons[component])
        if cold_enough:
            return Choice(value, "validation")
        return Choice(value, "default", few_cold)

    choices: dict[str, Choice] = {}
    choices["cold_weight"] = choice(weights["ridge"], rc.cold_weight)
    choices["cold_spread_weight"] = choice(weights["spread"], rc.cold_spread_weight, "spread")
    spread_on = weights["spread"] > 0
    choices["cold_top_items"] = (
        choice(top_items, rc.cold_top_items)
        if spread_on
        else Choice(
            None,
            "config" if rc.cold_top_items != "auto" else "validation" if cold_enough else "default",
            "the spread has no weight",
        )
    )
    choices["ridge_l2"] = choice(float(ridge_l2), "auto")
    return choices


def _mix_name(weights: dict[str, float]) -> str:
    return "mix " + ", ".join(f"{name} {w:g}" for name, w in weights.items())


def _item_text(
    dataset: Dataset,
    text_vectors: npt.NDArray[Any],
    item_vectors: npt.NDArray[Any] | None,
    text_keep: npt.NDArray[np.bool_] | None = None,
) -> FloatMatrix | None:
    """Item text vectors: embedded documents where there are any, else the mean of the
    (kept) reviews about the item."""
    if item_vectors is not None and np.any(item_vectors):
        return unit_rows(item_vectors)
    item_of_text = text_items(dataset)
    ok = item_of_text >= 0
    if text_keep is not None:
        ok &= text_keep
    if not ok.any():
        return None
    return unit_rows(pool_rows(item_of_text[ok], np.asarray(text_vectors)[ok], dataset.n_items))

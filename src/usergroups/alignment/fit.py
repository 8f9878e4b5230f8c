"""Align, fuse, group and blend, with every choice made on validation data.

:func:`fit_aligned` is the heart of :meth:`usergroups.GroupDiscovery.fit` when
``align.method`` is not ``"none"`` (and when a setting is ``"auto"`` and chosen by
validation). It works on the *training* data it is given and never sees a test split:

1. **Carve** a validation set from the training data (:func:`carve_validation`):
   ``cold_fraction`` of the users with two or more texts are removed entirely (they play
   new users known by one text), and every other user with three or more interactions
   loses their latest interaction (and the texts about it) to a held-out set.
2. **Align**: the :class:`~usergroups.alignment.AlignmentHead` is trained on what is
   left, early-stopped on NDCG@10 of the held-out items.
3. **Choose** on the validation users, by NDCG@10 of the held-out items: the share of
   the text part in the fused user vector and the number of groups (group popularity of
   the clustering), the blend of personal (EASE) and group scores, and for new users
   the blend of the group's scores with the head's direct text → item scores.
4. **Refit** the behaviour vectors and the personal model on all the training data; the
   head is kept as early-stopped on the carve.

Without alignment (``align.method = "none"``) the frozen sentence vectors take the
head's place and steps 2 and 4 skip training, so the ablation is exact.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from usergroups._typing import FloatMatrix, IntVector
from usergroups.alignment.head import AlignmentHead, TextBags, _unit, ndcg_at_k
from usergroups.config import DiscoveryConfig
from usergroups.data import Dataset

__all__ = [
    "AlignmentResult",
    "ValidationCarve",
    "carve_validation",
    "fit_aligned",
    "fuse_blocks",
    "knn_proba",
    "make_bags",
]

logger = logging.getLogger(__name__)

TEXT_WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Candidate shares of the text part when ``user_vectors.text_weight = "auto"``."""

K_GRID = (2, 4, 8, 12, 16, 20)
"""Candidate numbers of groups when ``clustering.n_groups = "auto"`` is chosen by validation."""

BLEND_GRID = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
"""Candidate weights of the personal / direct part of a blend."""

RIDGE_GRID = (10.0, 100.0, 1000.0)
"""Candidate regularisation of the text → item ridge for new users."""

SHRINKAGE_GRID = (0.0, 2.0, 5.0, 10.0, 20.0)
"""Candidate pseudo-counts of the group in the personal blend (0: the same weight for all)."""

K_TOLERANCE = 0.02
"""The smallest number of groups within 2 % of the best validation NDCG wins."""

MIN_VALIDATION_USERS = 20
"""With fewer validation users, 'auto' settings fall back to their documented defaults
(text weight 0.5, number of groups by silhouette, blends 0.5) instead of choosing on noise."""


@dataclass
class ValidationCarve:
    """A validation split cut from training data (rows and columns of the full matrix)."""

    x_train: sp.csr_matrix
    text_keep: npt.NDArray[np.bool_]
    warm_rows: IntVector
    held_out: sp.csr_matrix
    cold_rows: IntVector
    cold_query: IntVector
    cold_targets: sp.csr_matrix


def carve_validation(
    dataset: Dataset,
    *,
    cold_fraction: float = 0.1,
    max_cold: int = 500,
    max_warm: int = 3000,
    random_state: int = 0,
) -> ValidationCarve:
    """Cut validation users out of ``dataset`` (see the module docstring)."""
    rng = np.random.default_rng(random_state)
    x = sp.csr_matrix(dataset.interaction_matrix(), dtype=np.float32, copy=True)
    x.data[:] = 1.0
    n_users, n_items = x.shape
    texts = dataset.texts
    user_of_text = (
        dataset.user_ids.index(texts["user_id"]) if len(texts) else np.zeros(0, dtype=np.int64)
    )
    item_of_text = _item_of_text(dataset)
    n_texts_per_user = np.bincount(user_of_text, minlength=n_users)
    counts = np.diff(x.indptr)

    eligible_cold = np.flatnonzero((n_texts_per_user >= 2) & (counts >= 2))
    n_cold = min(round(cold_fraction * len(eligible_cold)), max_cold)
    cold_rows = np.sort(rng.choice(eligible_cold, size=n_cold, replace=False)) if n_cold else None
    cold_rows = np.zeros(0, dtype=np.int64) if cold_rows is None else cold_rows.astype(np.int64)
    is_cold = np.zeros(n_users, dtype=bool)
    is_cold[cold_rows] = True

    # the latest interaction of each warm validation user is held out
    inter = dataset.interactions
    u = dataset.user_ids.index(inter["user_id"])
    i = dataset.item_ids.index(inter["item_id"])
    ts = inter["timestamp"].to_numpy(dtype=np.float64, na_value=np.nan)
    ts = np.where(np.isnan(ts), -np.inf, ts)
    tiebreak = rng.random(len(u))
    order = np.lexsort((tiebreak, ts, u))
    last = np.ones(len(order), dtype=bool)
    last[:-1] = u[order][1:] != u[order][:-1]
    last_item = np.full(n_users, -1, dtype=np.int64)
    last_item[u[order][last]] = i[order][last]
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

    # texts: cold users' texts go; texts about a held-out item go
    text_keep = ~is_cold[user_of_text] if len(texts) else np.zeros(0, dtype=bool)
    if len(texts):
        about_held = (item_of_text >= 0) & (last_item[user_of_text] == item_of_text)
        about_held &= np.isin(user_of_text, warm_rows)
        text_keep &= ~about_held

    # cold users: one random text is the query; the rest of their items are the targets
    cold_query = np.zeros(len(cold_rows), dtype=np.int64)
    rows, cols = [], []
    for j, user in enumerate(cold_rows):
        own = np.flatnonzero(user_of_text == user)
        q = int(rng.choice(own))
        cold_query[j] = q
        items = x.indices[x.indptr[user] : x.indptr[user + 1]]
        items = items[items != item_of_text[q]]
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
        cold_query=cold_query,
        cold_targets=cold_targets,
    )


def _text_users(dataset: Dataset) -> IntVector:
    texts = dataset.texts
    if not len(texts):
        return np.zeros(0, dtype=np.int64)
    return np.asarray(dataset.user_ids.index(texts["user_id"]), dtype=np.int64)


def _item_of_text(dataset: Dataset) -> IntVector:
    texts = dataset.texts
    out = np.full(len(texts), -1, dtype=np.int64)
    if not len(texts):
        return out
    ids = texts["item_id"]
    known = ids.notna().to_numpy() & np.array([v in dataset.item_ids for v in ids], dtype=bool)
    if known.any():
        out[known] = dataset.item_ids.index(ids[known].to_numpy())
    return out


def make_bags(
    dataset: Dataset,
    text_vectors: npt.NDArray[Any],
    item_vectors: npt.NDArray[Any] | None,
    x: sp.csr_matrix,
    text_keep: npt.NDArray[np.bool_] | None = None,
) -> TextBags:
    """Each user's bag: their (kept) texts, or, for users without texts, the text vectors
    of the items in their row of ``x`` (e.g. MovieLens titles)."""
    n_users = x.shape[0]
    texts = dataset.texts
    n_texts = len(texts)
    user_of_text = (
        dataset.user_ids.index(texts["user_id"]) if n_texts else np.zeros(0, dtype=np.int64)
    )
    keep = np.ones(n_texts, dtype=bool) if text_keep is None else text_keep
    t_members = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (user_of_text[keep], np.flatnonzero(keep))),
        shape=(n_users, n_texts),
    )
    has_text = np.zeros(n_users, dtype=bool)
    has_text[user_of_text] = True  # users with texts use only texts, even if all were carved
    vectors = np.asarray(text_vectors, dtype=np.float32)
    if vectors.ndim != 2:
        vectors = vectors.reshape(n_texts, 0)
    if item_vectors is None or not np.any(item_vectors):
        return TextBags(t_members, vectors)
    i_members = sp.csr_matrix(sp.diags((~has_text).astype(np.float32)) @ sp.csr_matrix(x))
    i_members.data[:] = 1.0
    i_members.eliminate_zeros()
    item_vectors = np.asarray(item_vectors, dtype=np.float32)
    if vectors.shape[1] != item_vectors.shape[1]:
        vectors = np.zeros((n_texts, item_vectors.shape[1]), np.float32)
    return TextBags(sp.hstack([t_members, i_members]).tocsr(), np.vstack([vectors, item_vectors]))


def fuse_blocks(aligned: npt.NDArray[Any], behaviour: npt.NDArray[Any], w: float) -> FloatMatrix:
    """``[sqrt(w) a, sqrt(1 - w) b]`` of unit blocks, renormalised; a missing block (zero
    row) leaves the other at full weight."""
    a = _unit(aligned)
    b = _unit(behaviour)
    if b.shape[1] == 0:
        return a
    return _unit(np.hstack([a * np.float32(np.sqrt(w)), b * np.float32(np.sqrt(1.0 - w))]))


def knn_proba(
    query: npt.NDArray[Any],
    reference: npt.NDArray[Any],
    labels: IntVector,
    n_groups: int,
    n_neighbors: int,
    temperature: float = 0.05,
) -> FloatMatrix:
    """Distance-weighted vote of the ``n_neighbors`` most similar reference rows.

    Reference rows with label -1 or a zero vector do not vote. Returns shape
    (n_queries, n_groups); rows sum to 1 (uniform when nobody can vote).
    """
    ok = (labels >= 0) & (np.linalg.norm(reference, axis=1) > 0)
    proba = np.zeros((len(query), n_groups), dtype=np.float64)
    if not ok.any() or n_groups == 0:
        if n_groups:
            proba[:] = 1.0 / n_groups
        return proba.astype(np.float32)
    ref, ref_labels = reference[ok], labels[ok]
    k = min(n_neighbors, len(ref))
    sims = np.asarray(query, dtype=np.float32) @ ref.T
    nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    near = np.take_along_axis(sims, nearest, axis=1)
    weights = np.exp((near - near.max(axis=1, keepdims=True)) / temperature)
    rows = np.repeat(np.arange(len(query)), k)
    np.add.at(proba, (rows, ref_labels[nearest].ravel()), weights.ravel())
    proba /= proba.sum(axis=1, keepdims=True)
    return proba.astype(np.float32)


@dataclass
class AlignmentResult:
    """What :func:`fit_aligned` learned and chose."""

    head: AlignmentHead | None
    aligned: FloatMatrix
    behaviour: FloatMatrix
    text_weight: float
    n_groups: int | None
    personal: Any
    personal_weight: float
    personal_shrinkage: float
    cold_weight: float
    ridge: Any = None
    report: dict[str, Any] = field(default_factory=dict)
    carve: ValidationCarve | None = None


def _group_scores(x: sp.csr_matrix, labels: IntVector, smoothing: float, rows: IntVector) -> Any:
    from usergroups.recommend import GroupPopularity

    rec = GroupPopularity(smoothing=smoothing).fit(x, labels)
    return rec, rec.group_scores(labels[rows])


def _cluster(vectors: FloatMatrix, cfg: DiscoveryConfig, k: int | None) -> IntVector:
    from usergroups.clustering import make_clusterer

    if k is not None and cfg.clustering.method in ("kmeans", "minibatch"):
        # the search only ranks candidates: a lighter k-means (3 initialisations, no
        # post-processing); the final clustering runs with the full configuration
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=k, n_init=3, random_state=cfg.random_state).fit(vectors)
        return np.asarray(model.labels_, dtype=np.int64)
    clustering = cfg.clustering if k is None else cfg.clustering.model_copy(update={"n_groups": k})
    model = make_clusterer(clustering, cfg.random_state).fit(vectors)
    return np.asarray(model.labels_, dtype=np.int64)


def fit_aligned(
    dataset: Dataset,
    text_vectors: npt.NDArray[Any],
    item_vectors: npt.NDArray[Any] | None,
    frozen_semantic: FloatMatrix,
    behaviour_fn: Any,
    config: DiscoveryConfig,
) -> AlignmentResult:
    """Carve, align, choose and refit (see the module docstring).

    Parameters
    ----------
    dataset : Dataset
        Training data.
    text_vectors : ndarray of shape (len(dataset.texts), dim)
    item_vectors : ndarray of shape (n_items, dim) or None
        Embedded item documents (titles, categories, descriptions).
    frozen_semantic : ndarray of shape (n_users, dim)
        The frozen per-user sentence vectors (used when ``align.method = "none"``).
    behaviour_fn : callable
        ``behaviour_fn(x) -> (n_users, b)`` behaviour vectors of a user × item matrix.
    config : DiscoveryConfig
    """
    started = time.perf_counter()
    ac = config.align
    uv = config.user_vectors
    cc = config.clustering
    carve = carve_validation(
        dataset,
        cold_fraction=ac.cold_fraction,
        random_state=config.random_state,
    )
    x_full = sp.csr_matrix(dataset.interaction_matrix(), dtype=np.float32, copy=True)
    x_full.data[:] = 1.0
    n_users = x_full.shape[0]
    item_text_tr = _item_text(dataset, text_vectors, item_vectors, carve.text_keep)
    report: dict[str, Any] = {
        "method": ac.method,
        "validation": {
            "warm_users": len(carve.warm_rows),
            "cold_users": len(carve.cold_rows),
        },
    }

    enough = len(carve.warm_rows) >= MIN_VALIDATION_USERS
    report["validation"]["enough"] = enough
    if not enough:
        logger.warning(
            "only %d validation users (< %d): 'auto' settings take their defaults",
            len(carve.warm_rows),
            MIN_VALIDATION_USERS,
        )

    # ---- 2. align on the carve
    bags_tr = make_bags(dataset, text_vectors, item_vectors, carve.x_train, carve.text_keep)
    head: AlignmentHead | None = None
    if ac.method == "none":  # "lora" trains the head here, then the encoder (pipeline)
        aligned_tr = bags_tr.pooled()
        transform = _unit
    else:
        head = _new_head(config)
        val_bags = TextBags(bags_tr.members[carve.warm_rows], bags_tr.vectors)
        head.fit(
            bags_tr,
            carve.x_train,
            item_text_tr,
            validation=(val_bags, carve.x_train[carve.warm_rows], carve.held_out[carve.warm_rows])
            if enough
            else None,
            epochs=None if enough else min(ac.max_epochs, 20),
        )
        report["epochs"] = head.best_epoch_
        report["history"] = head.history_
        report["direct_val_ndcg"] = head.best_val_ndcg_
        aligned_tr = head.transform(bags_tr.pooled())
        transform = head.transform
    behaviour_tr = behaviour_fn(carve.x_train)

    # ---- 3. choose text weight and number of groups by group popularity on held-out items
    rows = carve.warm_rows
    held = carve.held_out[rows]
    seen = carve.x_train[rows]
    weights = (
        (TEXT_WEIGHT_GRID if enough else (0.5,))
        if uv.text_weight == "auto"
        else (float(uv.text_weight),)
    )
    if behaviour_tr.shape[1] == 0:
        weights = (1.0,)
    by_validation = enough and cc.n_groups == "auto" and cc.select == "validation"
    ks: tuple[int | None, ...] = (
        tuple(k for k in K_GRID if cc.k_min <= k <= cc.k_max and k < n_users)
        if by_validation
        else (None,)
    )
    grid: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for w in weights:
        fused = fuse_blocks(aligned_tr, behaviour_tr, w)
        for k in ks:
            labels = _cluster(fused, config, k)
            _, scores = _group_scores(carve.x_train, labels, config.recommend.smoothing, rows)
            ndcg = ndcg_at_k(scores, held, seen) if len(rows) else 0.0
            n_found = int(labels.max()) + 1 if (labels >= 0).any() else 0
            entry = {"text_weight": w, "k": k, "n_groups": n_found, "ndcg": round(ndcg, 5)}
            grid.append(entry)
            if best is None or ndcg > best["ndcg"] + 1e-12:
                best = {**entry, "ndcg": ndcg, "labels": labels, "fused": fused}
    assert best is not None
    # parsimony: the fewest groups within K_TOLERANCE of the best, at the best text weight
    chosen_k = best["k"]
    if by_validation:
        near = [
            e
            for e in grid
            if e["text_weight"] == best["text_weight"]
            and e["ndcg"] >= best["ndcg"] * (1.0 - K_TOLERANCE)
        ]
        chosen_k = min(near, key=lambda e: e["k"])["k"]
    text_weight = float(best["text_weight"])
    fused_tr = fuse_blocks(aligned_tr, behaviour_tr, text_weight)
    labels_tr = best["labels"] if chosen_k == best["k"] else _cluster(fused_tr, config, chosen_k)
    n_groups_tr = int(labels_tr.max()) + 1 if (labels_tr >= 0).any() else 0
    rec_tr, group_val = _group_scores(carve.x_train, labels_tr, config.recommend.smoothing, rows)
    report["grid"] = grid
    report["text_weight"] = text_weight
    report["n_groups"] = chosen_k
    report["group_val_ndcg"] = round(ndcg_at_k(group_val, held, seen), 5) if len(rows) else None

    # ---- personal blend
    personal = None
    personal_weight = 0.0
    personal_shrinkage = 0.0
    rc = config.recommend
    if rc.personal == "ease" and not enough:
        personal_weight = 0.5 if rc.personal_weight == "auto" else float(rc.personal_weight)
        personal_shrinkage = (
            0.0 if rc.personal_shrinkage == "auto" else float(rc.personal_shrinkage)
        )
    elif rc.personal == "ease":
        from usergroups.recommend.hybrid import PrunedEASE, blend, personal_weights

        ease_tr = PrunedEASE(l2=rc.ease_l2, keep=rc.ease_keep).fit(carve.x_train)
        personal_val = ease_tr.scores(seen)
        options = BLEND_GRID if rc.personal_weight == "auto" else (float(rc.personal_weight),)
        shrinks = (
            SHRINKAGE_GRID if rc.personal_shrinkage == "auto" else (float(rc.personal_shrinkage),)
        )
        curve = []
        for a in options:
            for c in shrinks if a > 0 else shrinks[:1]:
                mixed = blend(group_val, personal_val, personal_weights(seen, a, c))
                curve.append((a, c, ndcg_at_k(mixed, held, seen)))
        personal_weight, personal_shrinkage, _ = max(curve, key=lambda t: t[2])
        report["personal_curve"] = [
            {"weight": a, "shrinkage": c, "ndcg": round(v, 5)} for a, c, v in curve
        ]
        report["personal_weight"] = personal_weight
        report["personal_shrinkage"] = personal_shrinkage

    # ---- cold blend on the held-out new users
    cold_weight = 0.5 if rc.cold_weight == "auto" else float(rc.cold_weight)
    ridge_l2 = RIDGE_GRID[1]
    ridge = None
    tv = _unit(np.asarray(text_vectors, np.float32))
    authors = _text_users(dataset)
    if len(carve.cold_rows) >= MIN_VALIDATION_USERS and n_groups_tr:
        query = transform(tv[carve.cold_query])
        proba = knn_proba(query, aligned_tr, labels_tr, n_groups_tr, config.assign.n_neighbors)
        group_cold = rec_tr.group_scores(proba.argmax(axis=1))
        item_of_text = _item_of_text(dataset)
        q_items = item_of_text[carve.cold_query]
        cold_seen = sp.csr_matrix(
            (
                np.ones(int((q_items >= 0).sum()), np.float32),
                (np.flatnonzero(q_items >= 0), q_items[q_items >= 0]),
            ),
            shape=carve.cold_targets.shape,
        )
        pop_cold = np.asarray(carve.x_train.sum(axis=0), dtype=np.float32).repeat(
            len(query), axis=0
        )
        curve_c = [
            ("Pop", ndcg_at_k(pop_cold, carve.cold_targets, cold_seen)),
            ("group", ndcg_at_k(group_cold, carve.cold_targets, cold_seen)),
        ]
        from usergroups.alignment.ridge import TextItemRidge
        from usergroups.recommend.hybrid import blend

        fit_rows = np.flatnonzero(carve.text_keep)
        q_frozen = tv[carve.cold_query]
        options = BLEND_GRID if rc.cold_weight == "auto" else (cold_weight,)
        scored = []
        for l2 in RIDGE_GRID:
            ridge_tr = TextItemRidge(l2=l2).fit(tv[fit_rows], carve.x_train[authors[fit_rows]])
            direct = ridge_tr.scores(q_frozen)
            for a in options:
                mixed = blend(group_cold, direct, a)
                scored.append((l2, a, ndcg_at_k(mixed, carve.cold_targets, cold_seen)))
        ridge_l2, cold_weight, _ = max(scored, key=lambda t: t[2])
        curve_c += [(f"ridge l2={l2:g} blend {a}", v) for l2, a, v in scored]
        report["cold_curve"] = [{"method": m, "ndcg": round(v, 5)} for m, v in curve_c]
        report["ridge_l2"] = ridge_l2
    if len(text_vectors):
        from usergroups.alignment.ridge import TextItemRidge

        ridge = TextItemRidge(l2=ridge_l2).fit(tv, x_full[authors])
    else:
        cold_weight = 0.0
    report["cold_weight"] = cold_weight

    # ---- 4. all the training data: the head stays as trained on the carve (early-stopped
    # at its best validation epoch; the carve lacks only one item per validation user and
    # the held-out new users, and retraining would double the cost); behaviour vectors and
    # the personal model are refitted on everything
    bags_full = make_bags(dataset, text_vectors, item_vectors, x_full)
    aligned = head.transform(bags_full.pooled()) if head is not None else _unit(frozen_semantic)
    behaviour = behaviour_fn(x_full)
    if rc.personal == "ease":
        from usergroups.recommend.hybrid import PrunedEASE

        personal = PrunedEASE(l2=rc.ease_l2, keep=rc.ease_keep).fit(x_full)
    report["seconds"] = round(time.perf_counter() - started, 2)
    logger.info(
        "alignment (%s): text weight %.2f, %s groups, personal weight %.2f, cold weight %.2f",
        ac.method,
        text_weight,
        chosen_k if chosen_k is not None else cc.n_groups,
        personal_weight,
        cold_weight,
    )
    return AlignmentResult(
        head=head,
        aligned=aligned,
        behaviour=behaviour,
        text_weight=text_weight,
        n_groups=chosen_k,
        personal=personal,
        personal_weight=float(personal_weight),
        personal_shrinkage=float(personal_shrinkage),
        cold_weight=float(cold_weight),
        ridge=ridge,
        report=report,
        carve=carve,
    )


def _new_head(config: DiscoveryConfig) -> AlignmentHead:
    ac = config.align
    return AlignmentHead(
        dim=ac.dim,
        max_epochs=ac.max_epochs,
        patience=ac.patience,
        lr=ac.lr,
        weight_decay=ac.weight_decay,
        batch_size=ac.batch_size,
        min_keep=ac.min_keep,
        time_budget_s=ac.time_budget_s,
        random_state=config.random_state,
    )


def _item_text(
    dataset: Dataset,
    text_vectors: npt.NDArray[Any],
    item_vectors: npt.NDArray[Any] | None,
    text_keep: npt.NDArray[np.bool_] | None = None,
) -> FloatMatrix | None:
    """Item text vectors: embedded documents where there are any, else the mean of the
    (kept) reviews about the item."""
    if item_vectors is not None and np.any(item_vectors):
        return _unit(item_vectors)
    item_of_text = _item_of_text(dataset)
    ok = item_of_text >= 0
    if text_keep is not None:
        ok &= text_keep
    if not ok.any():
        return None
    from usergroups.fusion.vectors import pool_rows

    return _unit(pool_rows(item_of_text[ok], np.asarray(text_vectors)[ok], dataset.n_items))

"""`GroupDiscovery`: the one orchestrator that wires the stages together.

Stages meet only here. Each is a constructor argument with a small interface, so any of
them can be swapped:

- ``encoder``: ``name``, ``dim``, ``encode(texts, show_progress=False) -> (n, dim) float32``
  (see :mod:`usergroups.embedding`);
- ``clusterer``: a scikit-learn style estimator whose ``fit(X)`` sets ``labels_`` (-1 for
  noise) and ``centroids_`` (see :mod:`usergroups.clustering`);
- user vectors (:class:`usergroups.fusion.UserVectorBuilder`), the recommender
  (:class:`usergroups.recommend.GroupPopularity`) and profiles
  (:func:`usergroups.profiling.build_profiles`) are configured through the config.

Examples
--------
>>> from usergroups import GroupDiscovery, DiscoveryConfig
>>> from usergroups.testing import make_planted
>>> planted = make_planted(n_users=120, n_groups=3, random_state=0)
>>> cfg = DiscoveryConfig.model_validate({"embedding": {"model": "hashing"},
...                                       "clustering": {"n_groups": 3}})
>>> gd = GroupDiscovery(cfg).fit(planted.dataset)
>>> len(gd.groups_)
3
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from usergroups.config import DiscoveryConfig
from usergroups.data import Dataset, IdVocab
from usergroups.errors import DataError, NotFittedError
from usergroups.fusion import UserVectorBuilder, l2_normalise, pool_rows
from usergroups.profiling import build_profiles
from usergroups.recommend import GroupPopularity

__all__ = ["GroupDiscovery"]

logger = logging.getLogger(__name__)

_CONFIDENCE_TEMPERATURE = 0.05
"""Softmax temperature over cosine similarities to the group centroids.

Cosines between a user and the centroids differ by a few hundredths; 0.05 turns a margin of
0.1 into odds of about e^2 = 7.4 : 1.
"""


def softmax_confidence(similarities: np.ndarray) -> np.ndarray:
    """Row-wise softmax of cosine similarities at the fixed temperature; shape kept."""
    z = similarities / _CONFIDENCE_TEMPERATURE
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32)


class GroupDiscovery:
    """Discover, explain and use groups of users.

    Parameters
    ----------
    config : DiscoveryConfig, optional
        Every setting; defaults to ``DiscoveryConfig()``.
    encoder : Encoder, optional
        Overrides ``config.embedding`` (for a custom or pre-loaded encoder).
    clusterer : estimator, optional
        Overrides ``config.clustering``.

    Attributes
    ----------
    groups_ : DataFrame
        One row per group: ``group_id, size, share, label, keywords, top_items,
        top_item_titles, top_item_lifts``, the rest of the profile (categories, rating
        behaviour, user attributes, representative texts; see
        :class:`usergroups.profiling.GroupProfile`) and ``llm_label, llm_description``
        (None unless ``config.labels.endpoint`` is set and the endpoint answered).
    assignments_ : DataFrame
        ``user_id, group_id, confidence`` for every user (group -1 = noise).
    labels_ : ndarray of shape (n_users,)
    user_vectors_ : ndarray of shape (n_users, n_features)
    centroids_ : ndarray of shape (n_groups, n_features)
    metrics_ : dict
        Timings, cache statistics, silhouette and the choice-of-K curve.
    """

    def __init__(
        self,
        config: DiscoveryConfig | None = None,
        *,
        encoder: Any = None,
        clusterer: Any = None,
    ) -> None:
        self.config = config if config is not None else DiscoveryConfig()
        self.encoder = encoder
        self.clusterer = clusterer

    # ------------------------------------------------------------------ stages
    def _get_encoder(self) -> Any:
        if self.encoder is None:
            from usergroups.embedding import make_encoder

            self.encoder = make_encoder(self.config.embedding)
        return self.encoder

    def _encode(self, texts: list[str], show_progress: bool) -> np.ndarray:
        # make_encoder wraps the model in cleaning and caching as the config says; an
        # encoder passed in by the caller gets the raw texts
        encoder = self._get_encoder()
        if not texts:
            return np.zeros((0, int(encoder.dim)), dtype=np.float32)
        return np.asarray(encoder.encode(texts, show_progress=show_progress), dtype=np.float32)

    def _make_clusterer(self) -> Any:
        if self.clusterer is not None:
            from sklearn.base import clone

            return clone(self.clusterer)
        from usergroups.clustering import make_clusterer

        return make_clusterer(self.config.clustering, self.config.random_state)

    # --------------------------------------------------------------------- fit
    def fit(self, dataset: Dataset, *, show_progress: bool = False) -> GroupDiscovery:
        """Embed, build user vectors, cluster, profile and prepare recommendations.

        Parameters
        ----------
        dataset : Dataset
        show_progress : bool
            Show a progress bar while embedding (the CLI turns it on).
        """
        if not isinstance(dataset, Dataset):
            raise DataError(
                f"fit expects a usergroups Dataset, got {type(dataset).__name__}; build one with "
                "usergroups.build_dataset(...) or usergroups.datasets.load_dataset(name)"
            )
        cfg = self.config
        timings: dict[str, float] = {}
        t = time.perf_counter()
        text_vectors = self._encode(dataset.texts["text"].tolist(), show_progress)
        item_vectors = None
        if dataset.items is not None and (dataset.items["title"] != "").any():
            item_docs = _item_documents(dataset)
            item_vectors = self._encode(item_docs, show_progress)
        timings["embedding"] = time.perf_counter() - t
        cache = {
            "hits": int(getattr(self.encoder, "total_hits", getattr(self.encoder, "last_hits", 0))),
            "misses": int(
                getattr(self.encoder, "total_misses", getattr(self.encoder, "last_misses", 0))
            ),
        }

        t = time.perf_counter()
        uv = cfg.user_vectors
        builder = UserVectorBuilder(
            text_pooling=uv.text_pooling,
            behaviour=uv.behaviour,
            n_components=uv.n_components,
            text_weight=uv.text_weight,
            random_state=cfg.random_state,
        ).fit(dataset, text_vectors, item_vectors)
        timings["user_vectors"] = time.perf_counter() - t
        # kept for engines that project more users with the fitted SVD (usergroups.spark)
        self.user_vector_builder_ = builder

        t = time.perf_counter()
        clusterer = self._make_clusterer().fit(builder.vectors_)
        labels = np.asarray(clusterer.labels_, dtype=np.int64)
        timings["clustering"] = time.perf_counter() - t

        t = time.perf_counter()
        x = dataset.interaction_matrix()
        self._set_state(
            user_ids=dataset.user_ids,
            item_ids=dataset.item_ids,
            item_titles=dataset.item_titles(),
            labels=labels,
            user_vectors=builder.vectors_,
            semantic=builder.semantic_,
            behaviour_dim=builder.behaviour_.shape[1],
            seen=x,
            recommender=GroupPopularity(smoothing=cfg.recommend.smoothing).fit(x, labels),
        )
        pc = cfg.profile
        profiles = build_profiles(
            dataset,
            labels,
            n_keywords=pc.n_keywords,
            n_items=pc.n_items,
            min_support=pc.min_support,
            language=pc.language,
            text_vectors=text_vectors,
            semantic_centroids=self.semantic_centroids_,
            n_texts=pc.n_texts,
            text_chars=pc.text_chars,
            low_rating=pc.low_rating,
            n_categories=pc.n_categories,
            n_attribute_values=pc.n_attribute_values,
        )
        timings["profiles"] = time.perf_counter() - t
        llm_labels: list[Any] = [None] * len(profiles)
        if cfg.labels.endpoint:
            from usergroups.labeling import label_profiles

            t = time.perf_counter()
            llm_labels = label_profiles(profiles, cfg.labels)
            timings["llm_labels"] = time.perf_counter() - t
        records = []
        for profile, llm in zip(profiles, llm_labels, strict=True):
            record = profile.to_record()
            record["llm_label"] = None if llm is None else llm.label
            record["llm_description"] = None if llm is None else llm.description
            records.append(record)
        self.groups_ = pd.DataFrame(records)
        if self.groups_.empty:
            self.groups_ = pd.DataFrame(columns=["group_id", "size", "share", "label"])

        self.metrics_: dict[str, Any] = {
            "dataset": dataset.name,
            "data": dataset.summary(),
            "dropped": dataset.report.to_records(),
            "n_groups": int(self.centroids_.shape[0]),
            "n_noise": int((labels < 0).sum()),
            "silhouette": _maybe_float(getattr(clusterer, "silhouette_", None)),
            # NaN (silhouette undefined) becomes null so metrics.json stays valid JSON
            "k_scores": {
                str(k): _maybe_float(v)
                for k, v in (getattr(clusterer, "k_scores_", {}) or {}).items()
            },
            "merged": [list(map(int, p)) for p in getattr(clusterer, "merged_", [])],
            "folded": [int(g) for g in getattr(clusterer, "folded_", [])],
            "embedding_cache": cache,
            "encoder": str(getattr(self.encoder, "name", type(self.encoder).__name__)),
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
        logger.info("found %d groups in %s", self.metrics_["n_groups"], dataset.name)
        return self

    def _set_state(
        self,
        *,
        user_ids: IdVocab,
        item_ids: IdVocab,
        item_titles: dict[str, str],
        labels: np.ndarray,
        user_vectors: np.ndarray,
        semantic: np.ndarray,
        behaviour_dim: int,
        seen: sp.csr_matrix,
        recommender: GroupPopularity,
    ) -> None:
        """Derive every learned attribute from the arrays (shared by fit and load)."""
        n_groups = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
        members = labels >= 0
        self.user_ids_ = user_ids
        self.item_ids_ = item_ids
        self.item_titles_ = item_titles
        self.labels_ = labels
        self.user_vectors_ = user_vectors
        self.semantic_ = semantic
        self.behaviour_dim_ = behaviour_dim
        self.seen_ = sp.csr_matrix(seen, dtype=np.float32)
        self.recommender_ = recommender
        self.centroids_ = l2_normalise(pool_rows(labels[members], user_vectors[members], n_groups))
        self.semantic_centroids_ = l2_normalise(
            pool_rows(labels[members], semantic[members], n_groups)
        )
        sims = user_vectors @ self.centroids_.T if n_groups else np.zeros((len(labels), 0))
        conf = np.zeros(len(labels), dtype=np.float32)
        if n_groups:
            probs = softmax_confidence(sims)
            conf[members] = probs[members, labels[members]]
        self.assignments_ = pd.DataFrame(
            {"user_id": user_ids.ids, "group_id": labels, "confidence": conf}
        )
        self._knn = None

    # ----------------------------------------------------------------- using it
    def _check_fitted(self) -> None:
        if not hasattr(self, "labels_"):
            raise NotFittedError(
                "this GroupDiscovery is not fitted; call fit(dataset) or GroupDiscovery.load(dir)"
            )

    @property
    def n_groups_(self) -> int:
        self._check_fitted()
        return int(self.centroids_.shape[0])

    def _text_semantic(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            raise DataError("predict needs at least one text")
        return l2_normalise(self._encode(texts, show_progress=False))

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Group probabilities of new users known only by one text each.

        Parameters
        ----------
        texts : list of str, length n

        Returns
        -------
        ndarray of shape (n, n_groups)
        """
        self._check_fitted()
        semantic = self._text_semantic(texts)
        if self.n_groups_ == 0:
            return np.zeros((len(semantic), 0), dtype=np.float32)
        if self.config.assign.method == "centroid":
            return softmax_confidence(semantic @ self.semantic_centroids_.T)
        return self._knn_proba(semantic)

    def _knn_proba(self, semantic: np.ndarray) -> np.ndarray:
        # distance-weighted vote of the nearest members in the encoder's space
        members = (self.labels_ >= 0) & (np.linalg.norm(self.semantic_, axis=1) > 0)
        if not members.any():
            return softmax_confidence(semantic @ self.semantic_centroids_.T)
        ref = self.semantic_[members]
        ref_labels = self.labels_[members]
        k = min(self.config.assign.n_neighbors, len(ref))
        sims = semantic @ ref.T
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        near_sims = np.take_along_axis(sims, nearest, axis=1)
        weights = np.exp((near_sims - near_sims.max(axis=1, keepdims=True)) / 0.05)
        proba = np.zeros((len(semantic), self.n_groups_), dtype=np.float64)
        rows = np.repeat(np.arange(len(semantic)), k)
        np.add.at(proba, (rows, ref_labels[nearest].ravel()), weights.ravel())
        proba /= proba.sum(axis=1, keepdims=True)
        return proba.astype(np.float32)

    def predict(self, texts: list[str]) -> np.ndarray:
        """Group id of each new user from their text; shape (n,)."""
        proba = self.predict_proba(texts)
        if proba.shape[1] == 0:
            return np.full(len(proba), -1, dtype=np.int64)
        return np.asarray(proba.argmax(axis=1), dtype=np.int64)

    def assign(self, texts: list[str], *, n: int = 10) -> pd.DataFrame:
        """Place new users into groups and recommend from their group.

        Returns
        -------
        DataFrame with columns ``text, group_id, confidence, label, items, titles``.
        """
        proba = self.predict_proba(texts)
        groups = proba.argmax(axis=1) if proba.shape[1] else np.full(len(proba), -1, dtype=np.int64)
        conf = proba[np.arange(len(proba)), groups] if proba.shape[1] else np.zeros(len(proba))
        idx, _ = self.recommender_.recommend_groups(groups, n=n)
        labels = dict(zip(self.groups_["group_id"], self.groups_["label"], strict=True))
        return pd.DataFrame(
            {
                "text": list(texts) if not isinstance(texts, str) else [texts],
                "group_id": groups.astype(np.int64),
                "confidence": np.round(conf.astype(np.float64), 4),
                "label": [labels.get(int(g), "noise") for g in groups],
                "items": [self._item_list(row) for row in idx],
                "titles": [[self.item_titles_.get(i, "") for i in self._item_list(r)] for r in idx],
            }
        )

    def _item_list(self, row: np.ndarray) -> list[str]:
        return [str(self.item_ids_.ids[i]) for i in row if i >= 0]

    def recommend(self, user_ids: list[str] | str, n: int = 10) -> pd.DataFrame:
        """Top-``n`` items from each user's group, excluding what the user has seen.

        Returns
        -------
        DataFrame with columns ``user_id, rank, item_id, title, score, group_id``.
        """
        self._check_fitted()
        if isinstance(user_ids, str):
            user_ids = [user_ids]
        user_ids = [str(u) for u in user_ids]
        rows = self.user_ids_.index(user_ids, what="user_id")
        groups = self.labels_[rows]
        idx, scores = self.recommender_.recommend_groups(groups, n=n, exclude=self.seen_[rows])
        valid = idx >= 0
        rr, cc = np.nonzero(valid)
        items = self.item_ids_.ids[idx[valid]]
        return pd.DataFrame(
            {
                "user_id": np.asarray(user_ids, dtype=object)[rr],
                "rank": (cc + 1).astype(np.int64),
                "item_id": items,
                "title": [self.item_titles_.get(str(i), "") for i in items],
                "score": scores[valid].astype(np.float64),
                "group_id": groups[rr],
            }
        )

    # ------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write the model directory atomically; see :mod:`usergroups.persistence`."""
        self._check_fitted()
        from usergroups.persistence.model_dir import save_model

        return save_model(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path) -> GroupDiscovery:
        """Load a model directory written by :meth:`save` (no pickle)."""
        from usergroups.persistence.model_dir import load_model

        return load_model(cls, Path(directory))


def _item_documents(dataset: Dataset) -> list[str]:
    assert dataset.items is not None
    items = dataset.items.set_index("item_id").reindex(dataset.item_ids.ids)
    title = items["title"].fillna("")
    cats = items["categories"].fillna("").str.replace("|", ", ", regex=False)
    desc = items["description"].fillna("")
    docs = (title + ". " + cats + ". " + desc).str.strip(" .")
    return [str(d) for d in docs.tolist()]


def _maybe_float(v: object) -> float | None:
    """``float(v)``, or None for None and NaN."""
    if v is None:
        return None
    f = float(v)  # type: ignore[arg-type]
    return None if np.isnan(f) else f

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
from usergroups.recommend import GroupPopularity, top_n

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

            embedding = self.config.embedding
            adapter = getattr(self, "adapter_dir_", None)
            if adapter is not None:
                # LoRA-aligned: the base model with the adapters merged in
                from usergroups.alignment.lora import merged_model_dir
                from usergroups.embedding.sentence_transformer import resolve_model

                merged = merged_model_dir(
                    resolve_model(embedding.model)[0], adapter, _lora_cache(self.config)
                )
                embedding = embedding.model_copy(update={"model": str(merged)})
            self.encoder = make_encoder(embedding)
        return self.encoder

    def _encode(self, texts: list[str], show_progress: bool) -> np.ndarray:
        # make_encoder wraps the model in cleaning and caching as the config says; an
        # encoder passed in by the caller gets the raw texts
        encoder = self._get_encoder()
        if not texts:
            return np.zeros((0, int(encoder.dim)), dtype=np.float32)
        return np.asarray(encoder.encode(texts, show_progress=show_progress), dtype=np.float32)

    def _embed(self, dataset: Dataset, show_progress: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Vectors of the users' texts and, when items have titles, of the item documents."""
        text_vectors = self._encode(dataset.texts["text"].tolist(), show_progress)
        item_vectors = None
        if dataset.items is not None and (dataset.items["title"] != "").any():
            item_vectors = self._encode(_item_documents(dataset), show_progress)
        return text_vectors, item_vectors

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
        text_vectors, item_vectors = self._embed(dataset, show_progress)
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
            text_weight=0.5 if uv.text_weight == "auto" else uv.text_weight,
            random_state=cfg.random_state,
        ).fit(dataset, text_vectors, item_vectors)
        timings["user_vectors"] = time.perf_counter() - t
        # kept for engines that project more users with the fitted SVD (usergroups.spark)
        self.user_vector_builder_ = builder

        aligned = None
        x = dataset.interaction_matrix()
        user_vectors = builder.vectors_
        behaviour_dim = builder.behaviour_.shape[1]
        clusterer_model = self._make_clusterer()
        if self.clusterer is None and _needs_validation(cfg):
            from usergroups.alignment import fit_aligned, fuse_blocks

            t = time.perf_counter()
            result = fit_aligned(
                dataset,
                text_vectors,
                item_vectors,
                builder.semantic_,
                lambda m: _behaviour(builder, m, cfg),
                cfg,
            )
            if cfg.align.method == "lora":
                text_vectors, item_vectors, result = self._lora(
                    dataset, result, show_progress, builder, timings
                )
            timings["alignment"] = time.perf_counter() - t
            aligned = result.aligned
            user_vectors = fuse_blocks(result.aligned, result.behaviour, result.text_weight)
            behaviour_dim = result.behaviour.shape[1]
            if result.n_groups is not None:
                from usergroups.clustering import make_clusterer

                chosen = cfg.clustering.model_copy(update={"n_groups": result.n_groups})
                clusterer_model = make_clusterer(chosen, cfg.random_state)
            self.alignment_ = result

        t = time.perf_counter()
        clusterer = clusterer_model.fit(user_vectors)
        labels = np.asarray(clusterer.labels_, dtype=np.int64)
        timings["clustering"] = time.perf_counter() - t

        t = time.perf_counter()
        result_or_none = getattr(self, "alignment_", None) if aligned is not None else None
        self._set_state(
            user_ids=dataset.user_ids,
            item_ids=dataset.item_ids,
            item_titles=dataset.item_titles(),
            labels=labels,
            user_vectors=user_vectors,
            semantic=builder.semantic_,
            behaviour_dim=behaviour_dim,
            seen=x,
            recommender=GroupPopularity(smoothing=cfg.recommend.smoothing).fit(x, labels),
            aligned=aligned,
            head=None if result_or_none is None else result_or_none.head,
            personal=None if result_or_none is None else result_or_none.personal,
            personal_weight=0.0 if result_or_none is None else result_or_none.personal_weight,
            personal_shrinkage=(
                0.0 if result_or_none is None else result_or_none.personal_shrinkage
            ),
            cold_weight=0.0 if result_or_none is None else result_or_none.cold_weight,
            ridge=None if result_or_none is None else result_or_none.ridge,
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
            "k_selection": "silhouette" if getattr(clusterer, "k_scores_", None) else "fixed",
            "merged": [list(map(int, p)) for p in getattr(clusterer, "merged_", [])],
            "folded": [int(g) for g in getattr(clusterer, "folded_", [])],
            "embedding_cache": cache,
            "encoder": str(getattr(self.encoder, "name", type(self.encoder).__name__)),
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
        if result_or_none is not None:
            report = result_or_none.report
            self.metrics_["alignment"] = report
            if result_or_none.n_groups is not None:
                # the number of groups was chosen by validation NDCG@10 of group popularity
                self.metrics_["k_scores"] = {
                    str(e["k"]): e["ndcg"]
                    for e in report["grid"]
                    if e["text_weight"] == report["text_weight"]
                }
                self.metrics_["k_selection"] = "validation"
        logger.info("found %d groups in %s", self.metrics_["n_groups"], dataset.name)
        return self

    def _lora(
        self,
        dataset: Dataset,
        first: Any,
        show_progress: bool,
        builder: UserVectorBuilder,
        timings: dict[str, float],
    ) -> tuple[np.ndarray, np.ndarray | None, Any]:
        """Fine-tune the encoder with LoRA on the carve, re-embed, and align again."""
        import tempfile

        from usergroups.alignment import fit_aligned
        from usergroups.alignment.lora import fine_tune_lora
        from usergroups.embedding.sentence_transformer import resolve_model
        from usergroups.errors import ConfigError

        cfg = self.config
        if first.head is None or first.carve is None:
            raise ConfigError("align.method='lora' needs texts and a trained alignment head")
        if len(dataset.texts) == 0:
            raise ConfigError(
                "align.method='lora' fine-tunes the encoder on users' texts, and this dataset "
                "has none; use align.method='head'"
            )
        carve = first.carve
        keep = np.flatnonzero(carve.text_keep)
        texts = dataset.texts["text"].astype(str).to_numpy()[keep].tolist()
        users = dataset.user_ids.index(dataset.texts["user_id"])[keep]
        ac = cfg.align
        work = Path(tempfile.mkdtemp(prefix="lora-", dir=_lora_cache(cfg, create=True)))
        t = time.perf_counter()
        lora = fine_tune_lora(
            resolve_model(cfg.embedding.model)[0],
            texts,
            users,
            carve.x_train,
            first.head,
            work / "adapter",
            rank=ac.lora_rank,
            budget_s=ac.lora_budget_s,
            max_seq_length=ac.lora_max_seq_length,
            batch_size=ac.lora_batch_size,
            random_state=cfg.random_state,
        )
        timings["lora"] = time.perf_counter() - t
        self.adapter_dir_ = lora.adapter_dir
        self.encoder = None  # the next encode uses the merged model
        t = time.perf_counter()
        text_vectors, item_vectors = self._embed(dataset, show_progress)
        timings["embedding_lora"] = time.perf_counter() - t
        builder.fit(dataset, text_vectors, item_vectors)
        result = fit_aligned(
            dataset,
            text_vectors,
            item_vectors,
            builder.semantic_,
            lambda m: _behaviour(builder, m, cfg),
            cfg.with_overrides({"align.method": "head"}),
        )
        result.report["method"] = "lora"
        result.report["lora"] = {
            "steps": lora.steps,
            "texts_seen": lora.texts_seen,
            "seconds": round(lora.seconds, 1),
            "first_loss": round(float(np.mean(lora.losses[:20])), 4) if lora.losses else None,
            "last_loss": round(float(np.mean(lora.losses[-20:])), 4) if lora.losses else None,
            "head_only_val_ndcg": first.report.get("direct_val_ndcg"),
        }
        return text_vectors, item_vectors, result

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
        aligned: np.ndarray | None = None,
        head: Any = None,
        personal: Any = None,
        personal_weight: float = 0.0,
        personal_shrinkage: float = 0.0,
        cold_weight: float = 0.0,
        ridge: Any = None,
    ) -> None:
        """Derive every learned attribute from the arrays (shared by fit and load).

        ``aligned`` (users' vectors in the aligned space; defaults to ``semantic``),
        ``head`` (:class:`~usergroups.alignment.AlignmentHead`), ``personal``
        (:class:`~usergroups.recommend.hybrid.PrunedEASE`) and the two blend weights
        come from :func:`usergroups.alignment.fit_aligned`.
        """
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
        self.aligned_ = semantic if aligned is None else np.asarray(aligned, dtype=np.float32)
        self.head_ = head
        self.personal_ = personal
        self.personal_weight_ = float(personal_weight)
        self.personal_shrinkage_ = float(personal_shrinkage)
        self.cold_weight_ = float(cold_weight)
        self.ridge_ = ridge
        self.aligned_centroids_ = l2_normalise(
            pool_rows(labels[members], self.aligned_[members], n_groups)
        )
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

    def _new_users(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Group probabilities, aligned vectors and frozen vectors of new users known by
        one text each."""
        self._check_fitted()
        semantic = self._text_semantic(texts)
        query = semantic if self.head_ is None else self.head_.transform(semantic)
        if self.n_groups_ == 0:
            return np.zeros((len(semantic), 0), dtype=np.float32), query, semantic
        if self.config.assign.method == "centroid":
            return softmax_confidence(query @ self.aligned_centroids_.T), query, semantic
        from usergroups.alignment import knn_proba

        proba = knn_proba(
            query, self.aligned_, self.labels_, self.n_groups_, self.config.assign.n_neighbors
        )
        return proba, query, semantic

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Group probabilities of new users known only by one text each.

        The text goes through the encoder and, when the model is aligned, the alignment
        head; then a distance-weighted vote of the nearest members (``assign.method =
        "knn"``) or the softmax over the group centroids (``"centroid"``) decides.

        Parameters
        ----------
        texts : list of str, length n

        Returns
        -------
        ndarray of shape (n, n_groups)
        """
        return self._new_users(texts)[0]

    def new_user_scores(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Group probabilities and item scores of new users known by one text each.

        The scores are what :meth:`assign` ranks: the most probable group's popularity,
        blended by ``cold_weight_`` with the text → item ridge of
        :class:`~usergroups.alignment.ridge.TextItemRidge` when the model has one.

        Returns
        -------
        proba : ndarray of shape (n, n_groups)
        scores : ndarray of shape (n, n_items)
        """
        proba, _, semantic = self._new_users(texts)
        groups = proba.argmax(axis=1) if proba.shape[1] else np.full(len(proba), -1, dtype=np.int64)
        return proba, self._cold_scores(groups, semantic)

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
        proba, scores = self.new_user_scores(texts)
        groups = proba.argmax(axis=1) if proba.shape[1] else np.full(len(proba), -1, dtype=np.int64)
        conf = proba[np.arange(len(proba)), groups] if proba.shape[1] else np.zeros(len(proba))
        idx, _ = top_n(scores, n)
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

    def _cold_scores(self, groups: np.ndarray, semantic: np.ndarray) -> np.ndarray:
        scores = self.recommender_.group_scores(groups)
        if self.ridge_ is not None and self.cold_weight_ > 0:
            from usergroups.recommend.hybrid import blend

            scores = blend(scores, self.ridge_.scores(semantic), self.cold_weight_)
        return scores

    def text_scores(self, texts: list[str]) -> np.ndarray:
        """Item scores for new users known by one text each, as :meth:`assign` ranks them
        (see :meth:`new_user_scores`); shape (n, n_items)."""
        return self.new_user_scores(texts)[1]

    def user_scores(self, user_ids: list[str] | str) -> np.ndarray:
        """Item scores of known users, as :meth:`recommend` ranks them (seen items not masked).

        The group's popularity, blended with the personal model (EASE) by
        ``personal_weight_`` when there is one; shape (n, n_items).
        """
        self._check_fitted()
        if isinstance(user_ids, str):
            user_ids = [user_ids]
        rows = self.user_ids_.index([str(u) for u in user_ids], what="user_id")
        return self._user_scores(rows)

    def _user_scores(self, rows: np.ndarray) -> np.ndarray:
        return self.blend_scores(self.labels_[rows], self.seen_[rows])

    def blend_scores(self, groups: np.ndarray, seen: sp.spmatrix) -> np.ndarray:
        """Item scores of users in ``groups`` who have seen ``seen`` (rows of items).

        The group's popularity, blended with the personal model (EASE on ``seen``) by
        ``personal_weight_ * n / (n + personal_shrinkage_)`` for a user with ``n`` items;
        what :meth:`recommend` ranks, and what the service uses for users whose group or
        items changed online. Seen items are not masked; shape (len(groups), n_items).
        """
        scores = self.recommender_.group_scores(np.asarray(groups, dtype=np.int64))
        if self.personal_ is not None and self.personal_weight_ > 0:
            from usergroups.recommend.hybrid import blend, personal_weights

            weights = personal_weights(seen, self.personal_weight_, self.personal_shrinkage_)
            scores = blend(scores, self.personal_.scores(seen), weights)
        return scores

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
        scores = self._user_scores(rows)
        seen = self.seen_[rows]
        r, c = seen.nonzero()
        scores[r, c] = -np.inf
        idx, scores = top_n(scores, n)
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


def _lora_cache(cfg: DiscoveryConfig, create: bool = False) -> Path:
    """Where merged LoRA models and training work live: ``lora/`` beside the embeddings."""
    from usergroups.embedding import default_cache_dir

    root = Path(cfg.embedding.cache_dir) if cfg.embedding.cache_dir else default_cache_dir()
    path = root.parent / "lora"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def _needs_validation(cfg: DiscoveryConfig) -> bool:
    """Whether fit carves validation data: to align, or to choose an 'auto' setting."""
    rc = cfg.recommend
    return (
        cfg.align.method != "none"
        or cfg.user_vectors.text_weight == "auto"
        or (cfg.clustering.n_groups == "auto" and cfg.clustering.select == "validation")
        or (rc.personal != "none" and rc.personal_weight == "auto")
    )


def _behaviour(builder: UserVectorBuilder, x: sp.csr_matrix, cfg: DiscoveryConfig) -> np.ndarray:
    """Behaviour vectors of a user × item matrix, as ``user_vectors.behaviour`` says."""
    from usergroups.fusion.vectors import _row_mean, _svd_behaviour

    kind = cfg.user_vectors.behaviour
    if kind == "svd":
        return l2_normalise(_svd_behaviour(x, cfg.user_vectors.n_components, cfg.random_state)[0])
    if kind == "item_mean":
        return l2_normalise(_row_mean(x, builder.item_vectors_))
    return np.zeros((x.shape[0], 0), dtype=np.float32)


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

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
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from usergroups._typing import FloatMatrix, IntVector
from usergroups.config import DiscoveryConfig
from usergroups.data import Dataset
from usergroups.errors import ConfigError, DataError, NotFittedError
from usergroups.fitcache import FitCache, fit_cache_for
from usergroups.fitted import Choice, FittedState, softmax_confidence
from usergroups.linalg import DEFAULT_TEXT_WEIGHT, fuse_blocks
from usergroups.recommend import GroupPopularity, top_n

if TYPE_CHECKING:
    from usergroups.alignment.lora import LoraResult
    from usergroups.fusion import UserVectorBuilder
    from usergroups.profiling.clean import PreparedTexts
    from usergroups.recommend.fine_groups import FineGroups
    from usergroups.selection import Selection, Stages

# Fitting needs scikit-learn, the validation grids and the profilers; a loaded model does
# not: those modules are imported where a fit uses them, so `assign`, `recommend` and the
# service start without them (scikit-learn alone is about 1 s of a CLI call).

__all__ = ["GroupDiscovery", "softmax_confidence"]

logger = logging.getLogger(__name__)

_N_GROUPS_PARAMS = ("n_groups", "base__n_groups", "n_clusters")
"""Parameter names through which a clusterer takes its number of groups (ours, ours wrapped
in post-processing, scikit-learn's)."""


@dataclass
class _Chosen:
    """What :meth:`GroupDiscovery.fit` clusters with: the selection (None when every
    setting is fixed), the text vectors (re-embedded after LoRA), the blocks to fuse and
    the settings chosen or fixed."""

    selection: Selection | None
    text_vectors: np.ndarray
    item_vectors: np.ndarray | None
    text_block: FloatMatrix
    behaviour: FloatMatrix
    text_weight: float
    n_groups: int | None
    choices: dict[str, Choice]


class GroupDiscovery:
    """Discover, explain and use groups of users.

    Parameters
    ----------
    config : DiscoveryConfig, optional
        Every setting; defaults to ``DiscoveryConfig()``.
    encoder : Encoder, optional
        Overrides ``config.embedding`` (for a custom or pre-loaded encoder).
    aligner : estimator, optional
        Overrides the alignment head of ``config.align`` (``align.method`` must not be
        ``"none"``): cloned and trained on the validation carve; needs ``fit(bags, x,
        item_text, *, validation=None, epochs=None)`` and ``transform(vectors)`` (see
        :class:`usergroups.selection.Aligner`).
    clusterer : estimator, optional
        Overrides ``config.clustering``: cloned for every candidate; takes part in the
        choice of the number of groups when it has an ``n_groups`` (or ``n_clusters``)
        parameter.

    Attributes
    ----------
    state_ : FittedState
        Everything fit learned and chose (:class:`usergroups.fitted.FittedState`); the
        attributes below read from it.
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
        aligner: Any = None,
        clusterer: Any = None,
    ) -> None:
        self.config = config if config is not None else DiscoveryConfig()
        self.encoder = encoder
        self.aligner = aligner
        self.clusterer = clusterer

    # ------------------------------------------------------------------ stages
    def _get_encoder(self) -> Any:
        if self.encoder is None:
            from usergroups.embedding import make_encoder

            embedding = self.config.embedding
            adapter = self.__dict__.get("_adapter_dir")
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

    def _resolve_encoder(self, dataset: Dataset, fits: FitCache | None = None) -> dict[str, Any]:
        """Resolve ``embedding.model='auto'`` from the texts, once, into ``self.config``.

        The resolved config is what :meth:`save` writes, so a loaded model (``assign``,
        the service, refits) rebuilds exactly this encoder. Returns the choice as a
        record for ``metrics_["encoder_choice"]``.
        """
        from usergroups.embedding.language import resolve_auto_model

        english_only = None
        if self.config.align.method == "lora" and self.encoder is None:
            english_only = (
                "LoRA alignment (align.method='lora') needs a sentence-transformers model"
            )
        texts = dataset.texts["text"]
        embedding, choice = (fits or FitCache(None)).get_or_compute(
            "language",
            (texts, self.config.embedding, self.config.random_state, english_only),
            lambda: resolve_auto_model(
                self.config.embedding,
                texts.tolist(),
                seed=self.config.random_state,
                english_only=english_only,
            ),
        )
        from usergroups.embedding.factory import resolve_backend

        backend, backend_fallback = resolve_backend(embedding.model, embedding.backend)
        if english_only and embedding.backend == "auto":
            # LoRA trains and merges adapters on torch; its merged model embeds there too
            # (an ONNX export per adapter would cost more than it saves)
            backend, backend_fallback = "torch", None
        if backend != embedding.backend:
            embedding = embedding.model_copy(update={"backend": backend})
        if embedding is not self.config.embedding:
            self.config = self.config.model_copy(update={"embedding": embedding})
        record = choice.to_record()
        record["backend"] = backend
        if backend_fallback:
            logger.warning("%s", backend_fallback)
            fallbacks = [record["fallback"], backend_fallback]
            record["fallback"] = "; ".join(f for f in fallbacks if f)
        if self.encoder is not None:
            # a caller's encoder embeds; the config's model is only what a reload builds
            record["reason"] += "; the encoder passed to GroupDiscovery was used for this fit"
        logger.info("encoder: %s (%s)", choice.model, choice.reason)
        return record

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

    def _clusterer_at(self, k: int | None, search: bool = False, seed: int | None = None) -> Any:
        """The configured (or swapped-in) clusterer with ``k`` groups (None: its own choice).

        ``search=True`` gives the cheaper variant :func:`usergroups.selection.select` uses
        to rank candidates: for the built-in k-means family, three initialisations, a
        smaller silhouette sample and no post-processing. ``seed`` replaces the
        clusterer's ``random_state`` (the stability resamples), where it has one.
        """
        model = self._make_clusterer()
        if seed is not None and hasattr(model, "get_params"):
            params = model.get_params()
            key = next((p for p in ("random_state", "base__random_state") if p in params), None)
            if key is not None:
                model.set_params(**{key: int(seed)})
        if k is not None:
            params = model.get_params() if hasattr(model, "get_params") else {}
            key = next((p for p in _N_GROUPS_PARAMS if p in params), None)
            if key is None:
                raise ConfigError(
                    f"{type(model).__name__} has no n_groups parameter, so the number of "
                    "groups cannot be chosen for it; set clustering.n_groups or "
                    "clustering.select='silhouette'"
                )
            model.set_params(**{key: int(k)})
        if search and self.clusterer is None:
            from usergroups.clustering import PostProcessedGroups

            base = model.base if isinstance(model, PostProcessedGroups) else model
            params = base.get_params()
            if "n_init" in params and self.config.clustering.method in ("kmeans", "minibatch"):
                base.set_params(n_init=min(3, int(params["n_init"])))
                if "silhouette_sample" in params:
                    base.set_params(silhouette_sample=min(1000, int(params["silhouette_sample"])))
                return base
        return model

    def _can_set_k(self) -> bool:
        model = self._make_clusterer()
        if self.clusterer is None and self.config.clustering.method == "hdbscan":
            return False
        params = model.get_params() if hasattr(model, "get_params") else {}
        return any(p in params for p in _N_GROUPS_PARAMS)

    def _stages(self, builder: UserVectorBuilder) -> Stages:
        from usergroups.selection import Stages

        cfg = self.config
        new_aligner = None
        if cfg.align.method != "none":
            if self.aligner is not None:
                from sklearn.base import clone

                aligner = self.aligner

                def new_aligner() -> Any:
                    return clone(aligner, safe=False)  # deep copy for non-sklearn aligners
            else:

                def new_aligner() -> Any:
                    return _new_head(cfg)

        return Stages(
            new_aligner=new_aligner,
            clusterer_at=self._clusterer_at,
            can_set_k=self._can_set_k(),
            behaviour_of=lambda m: _behaviour(builder, m, cfg),
            full_behaviour=builder.behaviour_,
        )

    def _fit_cache(self, dataset: Dataset) -> FitCache:
        """The fit cache (:func:`usergroups.fitcache.fit_cache_for`), off when a component
        was passed in: an aligner or clusterer object cannot be hashed."""
        if self.aligner is not None or self.clusterer is not None:
            return FitCache(None)
        return fit_cache_for(self.config, dataset.n_users)

    # --------------------------------------------------------------------- fit
    def fit(self, dataset: Dataset, *, show_progress: bool = False) -> GroupDiscovery:
        """Embed, build user vectors, choose settings, cluster, profile.

        Settings that are ``"auto"`` and the alignment head are chosen and trained on
        validation data carved from ``dataset`` (:func:`usergroups.selection.select`);
        everything learned and chosen ends up in :attr:`state_`.

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
        fits = self._fit_cache(dataset)
        encoder_choice = self._resolve_encoder(dataset, fits)
        self._adapter_dir: Path | None = None
        timings: dict[str, float] = {}
        text_vectors, item_vectors, cache = self._embed_step(dataset, show_progress, timings)
        builder = self._user_vectors_step(dataset, text_vectors, item_vectors, fits, timings)
        # kept for engines that project more users with the fitted SVD (usergroups.spark)
        self.user_vector_builder_ = builder
        chosen = self._select_step(
            dataset, text_vectors, item_vectors, builder, fits, show_progress, timings
        )
        fused, clusterer, labels = self._cluster_step(chosen, fits, timings)
        # the texts prepared for keywords once, for the item names, profiles and sub-interests
        memo = _texts_memo(dataset)
        titles, item_names = self._item_names_step(dataset, memo, fits, timings)
        # timings["profiles"] covers the fine groups and the state as well
        t = time.perf_counter()
        x = dataset.interaction_matrix()
        fine = self._fine_step(x, chosen, fits)
        self.state_ = self._state_step(
            dataset, x, titles, item_names, chosen, builder, labels, fine
        )
        profiles = self._profile_step(dataset, labels, chosen.text_vectors, memo, fits)
        timings["profiles"] = time.perf_counter() - t
        stability = self._stability_step(fused, labels, chosen.n_groups, profiles, fits, timings)
        self._sub_interests_step(dataset, labels, fine, memo, fits, timings)
        self._groups_step(profiles, timings)
        self._metrics_step(
            dataset,
            chosen.selection,
            clusterer,
            labels,
            stability,
            encoder_choice,
            cache,
            fits,
            timings,
        )
        return self

    def _embed_step(
        self, dataset: Dataset, show_progress: bool, timings: dict[str, float]
    ) -> tuple[np.ndarray, np.ndarray | None, dict[str, int]]:
        """Embed the texts and item documents; returns them and the embedding cache's
        hits and misses."""
        t = time.perf_counter()
        text_vectors, item_vectors = self._embed(dataset, show_progress)
        timings["embedding"] = time.perf_counter() - t
        cache = {
            "hits": int(getattr(self.encoder, "total_hits", getattr(self.encoder, "last_hits", 0))),
            "misses": int(
                getattr(self.encoder, "total_misses", getattr(self.encoder, "last_misses", 0))
            ),
        }
        return text_vectors, item_vectors, cache

    def _user_vectors_step(
        self,
        dataset: Dataset,
        text_vectors: np.ndarray,
        item_vectors: np.ndarray | None,
        fits: FitCache,
        timings: dict[str, float],
    ) -> UserVectorBuilder:
        """The user vectors' builder (text pooling, behaviour SVD), fitted on all the data."""
        from usergroups.fusion import UserVectorBuilder

        cfg = self.config
        t = time.perf_counter()
        uv = cfg.user_vectors
        builder: UserVectorBuilder = fits.get_or_compute(
            "user_vectors",
            (dataset, text_vectors, item_vectors, uv, cfg.random_state),
            lambda: UserVectorBuilder(
                text_pooling=uv.text_pooling,
                behaviour=uv.behaviour,
                n_components=uv.n_components,
                text_weight=DEFAULT_TEXT_WEIGHT if uv.text_weight == "auto" else uv.text_weight,
                random_state=cfg.random_state,
            ).fit(dataset, text_vectors, item_vectors),
        )
        timings["user_vectors"] = time.perf_counter() - t
        return builder

    def _select_step(
        self,
        dataset: Dataset,
        text_vectors: np.ndarray,
        item_vectors: np.ndarray | None,
        builder: UserVectorBuilder,
        fits: FitCache,
        show_progress: bool,
        timings: dict[str, float],
    ) -> _Chosen:
        """The settings: chosen on validation data (:func:`usergroups.selection.select`,
        LoRA included) when one is ``"auto"`` or the text side is aligned, else the config's."""
        from usergroups.selection import fixed_choices, select

        cfg = self.config
        if not _needs_validation(cfg):
            behaviour = builder.behaviour_
            has_behaviour = behaviour.shape[1] > 0
            return _Chosen(
                selection=None,
                text_vectors=text_vectors,
                item_vectors=item_vectors,
                text_block=builder.semantic_,
                behaviour=behaviour,
                text_weight=float(builder.text_weight) if has_behaviour else 1.0,
                n_groups=None,
                choices=fixed_choices(
                    cfg, has_behaviour=has_behaviour, has_texts=len(text_vectors) > 0
                ),
            )
        t = time.perf_counter()
        # select reads the data, the vectors and every setting but how texts are
        # embedded (the vectors say that), how groups are described, and reuse itself
        selection: Selection = fits.get_or_compute(
            "selection",
            (
                dataset,
                text_vectors,
                item_vectors,
                builder.semantic_,
                cfg.model_dump(mode="json", exclude={"embedding", "profile", "labels", "reuse"}),
            ),
            lambda: select(
                dataset,
                text_vectors,
                item_vectors,
                builder.semantic_,
                cfg,
                self._stages(builder),
            ),
        )
        if cfg.align.method == "lora":
            text_vectors, item_vectors, selection = self._lora(
                dataset, selection, show_progress, builder, timings
            )
        timings["alignment"] = time.perf_counter() - t
        return _Chosen(
            selection=selection,
            text_vectors=text_vectors,
            item_vectors=item_vectors,
            text_block=selection.text_block,
            behaviour=selection.behaviour,
            text_weight=selection.text_weight,
            n_groups=selection.n_groups,
            choices=selection.choices,
        )

    def _cluster_step(
        self, chosen: _Chosen, fits: FitCache, timings: dict[str, float]
    ) -> tuple[FloatMatrix, Any, IntVector]:
        """Cluster the fused vectors; returns them, the fitted clusterer and its labels.

        A clusterer that finds its own number of groups sets ``chosen.choices["n_groups"]``."""
        cfg = self.config
        n_groups = chosen.n_groups
        t = time.perf_counter()
        fused = fuse_blocks(chosen.text_block, chosen.behaviour, chosen.text_weight)
        clusterer = fits.get_or_compute(
            "clustering",
            (fused, n_groups, cfg.clustering, cfg.random_state),
            lambda: self._clusterer_at(n_groups).fit(fused),
        )
        labels = np.asarray(clusterer.labels_, dtype=np.int64)
        timings["clustering"] = time.perf_counter() - t
        if n_groups is None:
            found = int(labels.max()) + 1 if (labels >= 0).any() else 0
            previous = chosen.choices["n_groups"]
            chosen.choices = {**chosen.choices, "n_groups": replace(previous, value=found)}
        return fused, clusterer, labels

    def _item_names_step(
        self, dataset: Dataset, memo: PreparedTexts, fits: FitCache, timings: dict[str, float]
    ) -> tuple[dict[str, str], Any]:
        """The items' titles and names (their titles, else the words of their own reviews)."""
        from usergroups.profiling import derive_item_names

        cfg = self.config
        t = time.perf_counter()
        titles = dataset.item_titles()
        # items without a title are shown by the words of their own reviews
        item_names = fits.get_or_compute(
            "item_names",
            (dataset.texts, titles, cfg.profile.language),
            lambda: derive_item_names(
                dataset.texts, exclude=titles, language=cfg.profile.language, texts_memo=memo
            ),
        )
        timings["item_names"] = time.perf_counter() - t
        return titles, item_names

    def _fine_step(self, x: sp.csr_matrix, chosen: _Chosen, fits: FitCache) -> FineGroups | None:
        """The fine groups: the selection's, or fitted at the config's sizes (which then
        set ``chosen.choices``); their representative partition marked."""
        from usergroups.selection import fixed_fine_groups

        cfg = self.config
        if chosen.selection is not None:
            fine = chosen.selection.fine
        else:
            choices = chosen.choices
            text_block, behaviour = chosen.text_block, chosen.behaviour
            fine, chosen.choices = fits.get_or_compute(
                "fine_groups",
                (text_block, behaviour, x, {k: c.to_dict() for k, c in choices.items()}, cfg),
                lambda: fixed_fine_groups(text_block, behaviour, x, choices, cfg),
            )
        if fine is not None:
            from usergroups.clustering.fine import representative_partition

            # the partition whose groups are shown as sub-interests (the most agreed-with)
            fine.representative_ = representative_partition(fine.labels_)
        return fine

    def _state_step(
        self,
        dataset: Dataset,
        x: sp.csr_matrix,
        titles: dict[str, str],
        item_names: Any,
        chosen: _Chosen,
        builder: UserVectorBuilder,
        labels: IntVector,
        fine: FineGroups | None,
    ) -> FittedState:
        """Everything learned and chosen, as one :class:`FittedState`."""
        cfg = self.config
        selection = chosen.selection
        return FittedState(
            user_ids=dataset.user_ids,
            item_ids=dataset.item_ids,
            item_titles=titles,
            item_names=item_names,
            labels=labels,
            text_block=chosen.text_block,
            semantic=builder.semantic_,
            behaviour=chosen.behaviour,
            text_weight=chosen.text_weight,
            seen=x,
            recommender=GroupPopularity(smoothing=cfg.recommend.smoothing).fit(x, labels),
            head=None if selection is None else selection.head,
            personal=None if selection is None else selection.personal,
            personal_weight=0.0 if selection is None else selection.personal_weight,
            personal_shrinkage=0.0 if selection is None else selection.personal_shrinkage,
            cold_weight=0.0 if selection is None else selection.cold_weight,
            ridge=None if selection is None else selection.ridge,
            new_users=None if selection is None else selection.new_users,
            choices=chosen.choices,
            adapter_dir=self._adapter_dir,
            fine=fine,
        )

    def _profile_step(
        self,
        dataset: Dataset,
        labels: IntVector,
        text_vectors: np.ndarray,
        memo: PreparedTexts,
        fits: FitCache,
    ) -> list[Any]:
        """Each group's profile (keywords, items, example texts, categories)."""
        from usergroups.profiling import build_profiles

        pc = self.config.profile
        centroids = self.state_.semantic_centroids
        profiles: list[Any] = fits.get_or_compute(
            "profiles",
            (dataset, labels, pc, text_vectors, centroids, self.state_.item_names),
            lambda: build_profiles(
                dataset,
                labels,
                n_keywords=pc.n_keywords,
                n_items=pc.n_items,
                min_support=pc.min_support,
                language=pc.language,
                text_vectors=text_vectors,
                semantic_centroids=centroids,
                n_texts=pc.n_texts,
                text_chars=pc.text_chars,
                low_rating=pc.low_rating,
                n_categories=pc.n_categories,
                n_attribute_values=pc.n_attribute_values,
                item_names=self.state_.item_names,
                texts_memo=memo,
            ),
        )
        return profiles

    def _stability_step(
        self,
        fused: FloatMatrix,
        labels: IntVector,
        n_groups: int | None,
        profiles: list[Any],
        fits: FitCache,
        timings: dict[str, float],
    ) -> dict[str, Any] | None:
        """Each group's stability over resamples (:meth:`_group_stability`), set on its
        profile."""
        cfg = self.config
        t = time.perf_counter()
        stability: dict[str, Any] | None = fits.get_or_compute(
            "stability",
            (fused, labels, n_groups, cfg.clustering, cfg.random_state),
            lambda: self._group_stability(fused, labels, n_groups),
        )
        if stability is not None:
            for profile in profiles:
                value = stability["groups"].get(str(profile.group_id))
                profile.stability = value
                profile.unstable = value is not None and value < cfg.clustering.min_group_stability
        timings["stability"] = time.perf_counter() - t
        return stability

    def _sub_interests_step(
        self,
        dataset: Dataset,
        labels: IntVector,
        fine: FineGroups | None,
        memo: PreparedTexts,
        fits: FitCache,
        timings: dict[str, float],
    ) -> None:
        """The sub-interests of each group, from the fine groups (:attr:`sub_interests_`)."""
        cfg = self.config
        pc = cfg.profile
        t = time.perf_counter()
        self.sub_interests_ = fits.get_or_compute(
            "sub_interests",
            (
                dataset,
                labels,
                None if fine is None else (fine.labels_, fine.representative_),
                pc,
                cfg.clustering.min_group_stability,
                self.state_.item_names,
            ),
            lambda: _sub_interests(dataset, labels, fine, cfg, self.state_.item_names, memo=memo),
        )
        timings["sub_interests"] = time.perf_counter() - t

    def _groups_step(self, profiles: list[Any], timings: dict[str, float]) -> None:
        """The group table (:attr:`groups_`): the profiles, with LLM labels when configured."""
        cfg = self.config
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

    def _metrics_step(
        self,
        dataset: Dataset,
        selection: Selection | None,
        clusterer: Any,
        labels: IntVector,
        stability: dict[str, Any] | None,
        encoder_choice: dict[str, Any],
        cache: dict[str, int],
        fits: FitCache,
        timings: dict[str, float],
    ) -> None:
        """:attr:`metrics_`, then one warning per fallback and the closing INFO line."""
        self.metrics_: dict[str, Any] = {
            "dataset": dataset.name,
            "data": dataset.summary(),
            "dropped": dataset.report.to_records(),
            "n_groups": self.state_.n_groups,
            "n_noise": int((labels < 0).sum()),
            "silhouette": _maybe_float(getattr(clusterer, "silhouette_", None)),
            # NaN (silhouette undefined) becomes null so metrics.json stays valid JSON
            "k_scores": {
                str(k): _maybe_float(v)
                for k, v in (getattr(clusterer, "k_scores_", {}) or {}).items()
            },
            "k_selection": "silhouette" if getattr(clusterer, "k_scores_", None) else "fixed",
            "choices": self.state_.choices_report(),
            "fallbacks": [
                f"{name}: {c.reason}"
                for name, c in self.state_.choices.items()
                if c.source == "default"
            ],
            "merged": [list(map(int, p)) for p in getattr(clusterer, "merged_", [])],
            "folded": [int(g) for g in getattr(clusterer, "folded_", [])],
            "embedding_cache": cache,
            "encoder": str(getattr(self.encoder, "name", type(self.encoder).__name__)),
            # embedding.model='auto': the detected language and the model it chose
            "encoder_choice": encoder_choice,
            "timings": {k: round(v, 3) for k, v in timings.items()},
            # steps whose result came from the fit cache (identical inputs; see fitcache)
            "reused": list(fits.reused),
        }
        # peak resident memory of this process so far (fit and whatever ran before it)
        self.metrics_["memory"] = {"peak_rss_mb": peak_rss_mb()}
        if selection is not None and "personal_model" in selection.report:
            # EASE or item-kNN, and why when the catalogue's size decided it
            self.metrics_["personal_model"] = selection.report["personal_model"]
        self._fallback_metrics(encoder_choice)
        if selection is not None:
            self._selection_metrics(selection.report)
        if stability is not None:
            self.metrics_["stability"] = stability
        for line in self.metrics_["fallbacks"]:
            logger.warning("fell back to a default: %s", line)
        logger.info("found %d groups in %s", self.metrics_["n_groups"], dataset.name)

    def _fallback_metrics(self, encoder_choice: dict[str, Any]) -> None:
        """The encoder's, int8's and post-processing's fallbacks, into :attr:`metrics_`."""
        if encoder_choice["fallback"]:
            self.metrics_["fallbacks"].append(f"embedding.model: {encoder_choice['fallback']}")
        check = _int8_check(self.encoder)
        if check is not None:
            # what the int8 self-check measured on this CPU (None when every text was cached)
            self.metrics_["int8_check"] = {
                k: check[k] for k in ("recipe", "fallback", "mean_cosine", "min_cosine", "target")
            }
            if check["fallback"]:
                self.metrics_["fallbacks"].append(
                    f"embedding.backend: int8 disagrees with fp32 on this {check['target']} CPU "
                    f"(mean cosine {check['mean_cosine']:.3f}); fp32 ONNX vectors were used"
                )
        fine = self.state_.choices.get("fine_partitions")
        if fine is not None and fine.source == "data" and not fine.value:
            # the data turned the fine groups off (too large, too few users): said in one line
            self.metrics_["fallbacks"].append(f"fine groups: off: {fine.reason}")
        asked = self.state_.choices["n_groups"].value
        kept = self.metrics_["n_groups"]
        if asked is not None and kept < int(asked):
            # post-processing joined groups: fewer groups than chosen, said in one line
            self.metrics_["fallbacks"].append(
                f"n_groups: {int(asked)} chosen, {kept} kept after post-processing "
                f"({len(self.metrics_['merged'])} merged into a near-identical group, "
                f"{len(self.metrics_['folded'])} folded for fewer than "
                f"clustering.min_group_size={self.config.clustering.min_group_size} members)"
            )

    def _selection_metrics(self, report: dict[str, Any]) -> None:
        """The selection's report, K curve and fallbacks, into :attr:`metrics_`."""
        self.metrics_["alignment"] = report
        if self.state_.choices["n_groups"].source == "validation":
            # the number of groups was chosen by validation NDCG@10 of group popularity
            self.metrics_["k_scores"] = {
                str(e["k"]): e["ndcg"]
                for e in report["grid"]
                if e["text_weight"] == report["text_weight"]
            }
            self.metrics_["k_selection"] = "validation"
            self.metrics_["k_stability"] = {
                str(e["k"]): e["stability"]
                for e in report["grid"]
                if e["text_weight"] == report["text_weight"] and "stability" in e
            }
        self.metrics_["fallbacks"].extend(report.get("fallbacks", []))

    def _group_stability(
        self, vectors: FloatMatrix, labels: IntVector, n_groups: int | None
    ) -> dict[str, Any] | None:
        """Re-cluster resampled users; each group's best-match Jaccard (clusterboot).

        None when ``clustering.stability_resamples`` is 0 or there are too few users to
        resample. The runs use the final clusterer (post-processing included) with the
        chosen number of groups and fresh seeds.
        """
        from usergroups.clustering.stability import measure_stability

        cc = self.config.clustering
        n_found = int(labels.max()) + 1 if (labels >= 0).any() else 0
        if cc.stability_resamples == 0 or n_found == 0 or len(labels) < 4 * max(n_found, 2):
            return None

        def fit_labels(z: FloatMatrix, seed: int) -> npt.ArrayLike:
            return self._clusterer_at(n_groups, False, seed).fit(z).labels_

        measured = measure_stability(
            labels,
            fit_labels,
            vectors,
            n_resamples=cc.stability_resamples,
            random_state=self.config.random_state + 1,
        )
        groups = {
            str(g): round(float(v), 4) for g, v in enumerate(measured.groups) if np.isfinite(v)
        }
        unstable = sorted(int(g) for g, v in groups.items() if v < cc.min_group_stability)
        if unstable:
            logger.warning(
                "%d of %d groups are unstable (Jaccard over resamples below %.2f): %s",
                len(unstable),
                n_found,
                cc.min_group_stability,
                ", ".join(map(str, unstable)),
            )
        return {
            "ari": round(measured.ari, 4),
            "resamples": cc.stability_resamples,
            "fraction": 0.8,
            "groups": groups,
            "min_group_stability": cc.min_group_stability,
            "unstable": unstable,
        }

    def _lora(
        self,
        dataset: Dataset,
        first: Selection,
        show_progress: bool,
        builder: UserVectorBuilder,
        timings: dict[str, float],
    ) -> tuple[np.ndarray, np.ndarray | None, Selection]:
        """Fine-tune the encoder with LoRA on the carve, re-embed, and select again."""
        from usergroups.selection import select

        cfg = self.config
        t = time.perf_counter()
        lora = self._fine_tune(dataset, first, show_progress)
        timings["lora"] = time.perf_counter() - t
        self._adapter_dir = lora.adapter_dir
        self.encoder = None  # the next encode uses the merged model
        t = time.perf_counter()
        text_vectors, item_vectors = self._embed(dataset, show_progress)
        timings["embedding_lora"] = time.perf_counter() - t
        builder.fit(dataset, text_vectors, item_vectors)
        result = select(
            dataset,
            text_vectors,
            item_vectors,
            builder.semantic_,
            cfg.with_overrides({"align.method": "head"}),
            self._stages(builder),
        )
        result.report["method"] = "lora"
        result.report["lora"] = _lora_report(lora, first, result, timings["lora"])
        return text_vectors, item_vectors, result

    def _fine_tune(self, dataset: Dataset, first: Selection, show_progress: bool) -> LoraResult:
        """LoRA adapters trained on the texts the first selection's carve kept for training."""
        from usergroups.alignment.lora import fine_tune_lora
        from usergroups.embedding.sentence_transformer import resolve_model
        from usergroups.selection import text_items

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
        contrastive = ac.lora_objective == "contrastive"
        # item documents start with the title; one entry per item index ("" for none)
        by_id = dataset.item_titles() if contrastive else {}
        titles = [str(by_id.get(i, "")) for i in dataset.item_ids.ids] if contrastive else None
        return fine_tune_lora(
            resolve_model(cfg.embedding.model)[0],
            texts,
            users,
            carve.x_train,
            first.head,
            objective=ac.lora_objective,
            item_of_text=text_items(dataset)[keep] if contrastive else None,
            item_titles=titles,
            rank=ac.lora_rank,
            budget_s=ac.lora_budget_s,
            max_seq_length=ac.lora_max_seq_length,
            batch_size=ac.lora_batch_size,
            n_item_reviews=ac.lora_item_reviews,
            temperature=ac.lora_temperature,
            cache_dir=_lora_cache(cfg, create=True),
            show_progress=show_progress,
            random_state=cfg.random_state,
        )

    @classmethod
    def from_state(
        cls,
        state: FittedState,
        *,
        config: DiscoveryConfig | None = None,
        groups: pd.DataFrame | None = None,
        metrics: dict[str, Any] | None = None,
        encoder: Any = None,
        sub_interests: pd.DataFrame | None = None,
    ) -> Self:
        """A fitted model from its state (what ``load``, refit and the Spark engine use).

        Parameters
        ----------
        state : FittedState
        config : DiscoveryConfig, optional
            The settings the state was fitted with.
        groups : DataFrame, optional
            The profiles (:attr:`groups_`); an empty table when not given.
        metrics : dict, optional
        encoder : Encoder, optional
        sub_interests : DataFrame, optional
            The segments' sub-interests (:attr:`sub_interests_`); empty when not given.
        """
        model = cls(config, encoder=encoder)
        model.state_ = state
        model._adapter_dir = state.adapter_dir
        model.groups_ = (
            groups
            if groups is not None
            else pd.DataFrame(columns=["group_id", "size", "share", "label"])
        )
        model.metrics_ = dict(metrics or {})
        if sub_interests is None:
            from usergroups.profiling.sub_interests import SUB_INTEREST_COLUMNS

            sub_interests = pd.DataFrame(columns=list(SUB_INTEREST_COLUMNS))
        model.sub_interests_ = sub_interests
        return model

    # ------------------------------------------------------------ fitted state
    def _state(self) -> FittedState:
        self._check_fitted()
        return self.state_

    user_ids_ = property(lambda self: self._state().user_ids)
    item_ids_ = property(lambda self: self._state().item_ids)
    item_titles_ = property(lambda self: self._state().item_titles)
    item_names_ = property(lambda self: self._state().item_names)
    labels_ = property(lambda self: self._state().labels)
    user_vectors_ = property(lambda self: self._state().user_vectors)
    semantic_ = property(lambda self: self._state().semantic)
    aligned_ = property(lambda self: self._state().text_block)
    behaviour_dim_ = property(lambda self: self._state().behaviour_dim)
    seen_ = property(lambda self: self._state().seen)
    recommender_ = property(lambda self: self._state().recommender)
    head_ = property(lambda self: self._state().head)
    personal_ = property(lambda self: self._state().personal)
    personal_weight_ = property(lambda self: self._state().personal_weight)
    personal_shrinkage_ = property(lambda self: self._state().personal_shrinkage)

    @property
    def group_part_(self) -> str:
        """What the group part of :meth:`recommend` ranks by: ``"groups"`` (the group's
        popularity) or ``"popularity"`` (global popularity, chosen on validation when it
        beats the groups: issue 24); models saved before the choice rank by groups."""
        return self._state().group_part_name

    cold_weight_ = property(lambda self: self._state().cold_weight)
    ridge_ = property(lambda self: self._state().ridge)

    new_users_ = property(lambda self: self._state().new_user_model)
    """How new users' texts become item scores (:attr:`FittedState.new_user_model`)."""

    centroids_ = property(lambda self: self._state().centroids)
    aligned_centroids_ = property(lambda self: self._state().aligned_centroids)
    semantic_centroids_ = property(lambda self: self._state().semantic_centroids)
    assignments_ = property(lambda self: self._state().assignments())
    adapter_dir_ = property(lambda self: self._state().adapter_dir)

    # ----------------------------------------------------------------- using it
    def _check_fitted(self) -> None:
        if "state_" not in self.__dict__:
            raise NotFittedError(
                "this GroupDiscovery is not fitted; call fit(dataset) or GroupDiscovery.load(dir)"
            )

    @property
    def n_groups_(self) -> int:
        self._check_fitted()
        return int(self.centroids_.shape[0])

    def _text_semantic(self, texts: list[str]) -> np.ndarray:
        from usergroups.answers import text_vectors

        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            raise DataError("predict needs at least one text")
        return text_vectors(self._get_encoder(), texts)

    def _new_users(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Group probabilities, aligned vectors and frozen vectors of new users known by
        one text each (:func:`usergroups.answers.place_new_users`)."""
        from usergroups.answers import place_new_users

        self._check_fitted()
        semantic = self._text_semantic(texts)
        proba, query = place_new_users(
            self._state(),
            semantic,
            method=self.config.assign.method,
            n_neighbors=self.config.assign.n_neighbors,
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

        The scores are what :meth:`assign` ranks: the new-user model of
        :mod:`usergroups.recommend.new_users` (``new_users_``): the groups' popularity
        weighted by membership, the text → item ridge, and the items whose reviews match
        the text spread to co-consumed items, mixed with weights chosen on validation.

        Returns
        -------
        proba : ndarray of shape (n, n_groups)
        scores : ndarray of shape (n, n_items)
        """
        proba, query, semantic = self._new_users(texts)
        return proba, self._cold_scores(proba, query, semantic)

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
        DataFrame with columns ``text, group_id, confidence, label, items, titles, names,
        name_sources``: ``names`` is what to show for each item (its title, else a name
        derived from its reviews, else ``""``) and ``name_sources`` where it came from
        (``"title"``, ``"reviews"`` or ``""``).
        """
        from usergroups.answers import assign_columns

        proba, scores = self.new_user_scores(texts)
        return pd.DataFrame(
            assign_columns(
                texts,
                proba,
                scores,
                n,
                group_labels=dict(
                    zip(self.groups_["group_id"], self.groups_["label"], strict=True)
                ),
                item_ids=self.item_ids_.ids,
                title_of=lambda i: self.item_titles_.get(i, ""),
                name_of=self._state().item_name,
            )
        )

    def _cold_scores(
        self, proba: np.ndarray, query: np.ndarray, semantic: np.ndarray
    ) -> np.ndarray:
        from usergroups.answers import new_user_scores

        return new_user_scores(self._state(), proba, query, semantic)

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
        return self.blend_scores(
            self.labels_[rows], self.seen_[rows], group_part=self.user_group_scores(rows)
        )

    def user_group_scores(self, rows: np.ndarray) -> np.ndarray:
        """The group part of the scores of known users, by row (``user_ids_`` order): the
        mean of their fine groups' smoothed popularity, or their segment's when the model
        has no fine groups (:meth:`FittedState.group_part`); shape (n, n_items)."""
        return self._state().group_part(np.asarray(rows, dtype=np.int64))

    def blend_scores(
        self, groups: np.ndarray, seen: sp.spmatrix, *, group_part: np.ndarray | None = None
    ) -> np.ndarray:
        """Item scores of users in ``groups`` who have seen ``seen`` (rows of items).

        The group part (``group_part`` when given: :meth:`FittedState.group_part`, the
        fine groups' mean or the segment's popularity; else the segments' popularity of
        ``groups``, or global popularity with ``group_part_ = "popularity"``), blended with
        the personal model (EASE or item-kNN on ``seen``) by
        ``personal_weight_ * n / (n + personal_shrinkage_)`` for a user with ``n`` items;
        what :meth:`recommend` ranks, and what the service uses for users whose group or
        items changed online. Seen items are not masked; shape (len(groups), n_items).
        """
        from usergroups.answers import blended_scores
        from usergroups.recommend.hybrid import group_rows_for

        group = (
            group_part
            if group_part is not None
            else self.recommender_.group_scores(group_rows_for(groups, self.group_part_))
        )
        return blended_scores(
            group,
            self.personal_,
            seen,
            np.diff(sp.csr_matrix(seen).indptr),
            self.personal_weight_,
            self.personal_shrinkage_,
        )

    def recommend(self, user_ids: list[str] | str, n: int = 10) -> pd.DataFrame:
        """Top-``n`` items from each user's group, excluding what the user has seen.

        Returns
        -------
        DataFrame with columns ``user_id, rank, item_id, title, name, name_source, score,
        group_id``: ``name`` is what to show (the title, else a name derived from the item's
        reviews, else ``""``) and ``name_source`` where it came from (``"title"``,
        ``"reviews"`` or ``""``).
        """
        self._check_fitted()
        if isinstance(user_ids, str):
            user_ids = [user_ids]
        user_ids = [str(u) for u in user_ids]
        rows = self.user_ids_.index(user_ids, what="user_id")
        groups = self.labels_[rows]
        scores = self.blend_scores(
            groups, self.seen_[rows], group_part=self.user_group_scores(rows)
        )
        seen = self.seen_[rows]
        r, c = seen.nonzero()
        scores[r, c] = -np.inf
        idx, scores = top_n(scores, n)
        return self._recommendation_frame(np.asarray(user_ids, dtype=object), groups, idx, scores)

    # --- issue 16: every user's recommendations in batches of bounded memory
    def recommend_all(self, n: int = 10, *, batch_size: int | None = None) -> pd.DataFrame:
        """:meth:`recommend` for every user, computed in batches
        (:func:`usergroups.recommend.batched.top_n_blended`): the same rows, without an
        ``n_users × n_items`` score matrix."""
        idx, scores = self.top_n_all(n, batch_size=batch_size)
        return self._recommendation_frame(self.user_ids_.ids, self.labels_, idx, scores)

    def top_n_all(
        self, n: int = 10, *, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every user's top-``n`` item indices and scores (``-1`` and ``-inf`` pad), the
        arrays behind :meth:`recommend_all`; the model directory writes them in parts."""
        from usergroups.recommend.batched import top_n_blended
        from usergroups.recommend.hybrid import group_rows_for

        self._check_fitted()
        state = self._state()
        return top_n_blended(
            self.recommender_,
            self.personal_,
            group_rows_for(self.labels_, self.group_part_),
            self.seen_,
            n,
            personal_weight=self.personal_weight_,
            personal_shrinkage=self.personal_shrinkage_,
            batch_size=batch_size,
            # the fine groups' mean has no fixed candidate order: scored densely
            group_part=(
                state.group_part
                if state.fine is not None and self.group_part_ == "groups"
                else None
            ),
        )

    def _recommendation_frame(
        self, user_ids: np.ndarray, groups: np.ndarray, idx: np.ndarray, scores: np.ndarray
    ) -> pd.DataFrame:
        from usergroups.answers import recommendation_columns

        return pd.DataFrame(
            recommendation_columns(
                user_ids,
                groups,
                idx,
                scores,
                item_ids=self.item_ids_.ids,
                title_of=lambda i: self.item_titles_.get(i, ""),
                name_of=self._state().item_name,
            )
        )

    # --- end issue 16

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


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MB (``getrusage``), None where unknown."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    peak = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    # kilobytes on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def _lora_report(
    lora: LoraResult, first: Selection, result: Selection, wall_seconds: float
) -> dict[str, Any]:
    """``metrics["alignment"]["lora"]``: the LoRA run and the validation figures of the
    head alone (``first``) against the head on the adapted encoder (``result``)."""
    return {
        "objective": lora.objective,
        "steps": lora.steps,
        "texts_seen": lora.texts_seen,
        # training seconds of the run that made the adapters; this fit's cost is
        # timings["lora"] (about 0 on a cache hit)
        "seconds": round(lora.seconds, 1),
        "train_seconds": round(lora.seconds, 1),
        "cache_hit": lora.cache_hit,
        "wall_seconds": round(wall_seconds, 2),
        "adapter": lora.adapter_dir.name,
        "first_loss": round(float(np.mean(lora.losses[:20])), 4) if lora.losses else None,
        "last_loss": round(float(np.mean(lora.losses[-20:])), 4) if lora.losses else None,
        "head_only_val_ndcg": first.report.get("direct_val_ndcg"),
        "val_ndcg": result.report.get("direct_val_ndcg"),
        "head_only_val_cold_ndcg": _best_cold(first.report),
        "val_cold_ndcg": _best_cold(result.report),
    }


def _best_cold(report: dict[str, Any]) -> float | None:
    """Best new-user NDCG@10 of a selection report's validation curve, or None."""
    curve = report.get("cold_curve") or []
    return max((float(row["ndcg"]) for row in curve), default=None)


def _int8_check(encoder: Any) -> dict[str, Any] | None:
    """The int8 agreement check of an ONNX encoder inside the cache/cleaning wrappers."""
    while encoder is not None:
        check = getattr(encoder, "int8_check_", None)
        if check is not None:
            return dict(check)
        encoder = getattr(encoder, "inner", None)
    return None


def _lora_cache(cfg: DiscoveryConfig, create: bool = False) -> Path:
    """Where LoRA adapters (``adapter-<key>/``) and merged models live: ``lora/`` beside
    the embeddings."""
    from usergroups.embedding import default_cache_dir

    root = Path(cfg.embedding.cache_dir) if cfg.embedding.cache_dir else default_cache_dir()
    path = root.parent / "lora"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def _sub_interests(
    dataset: Dataset,
    labels: np.ndarray,
    fine: Any,
    cfg: DiscoveryConfig,
    item_names: Any,
    memo: PreparedTexts | None = None,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """The sub-interest table of a fit: the groups of the fine groups' representative
    partition nested under the segments (empty without fine groups). ``rows``: the fit's
    rows of ``dataset``'s users when it holds a sample of them (the Spark engine's profile
    sample; ``labels`` are theirs); the stability is over every user either way."""
    from usergroups.profiling.sub_interests import SUB_INTEREST_COLUMNS, build_sub_interests

    if fine is None:
        return pd.DataFrame(columns=list(SUB_INTEREST_COLUMNS))
    from usergroups.clustering.fine import fine_group_stability

    rep = fine.representative_
    stability = fine_group_stability(fine.labels_, rep)
    pc = cfg.profile
    return build_sub_interests(
        dataset,
        labels,
        fine.labels_[:, rep] if rows is None else fine.labels_[rows, rep],
        stability,
        min_stability=cfg.clustering.min_group_stability,
        min_support=pc.min_support,
        language=pc.language,
        item_names=item_names,
        texts_memo=memo,
    )


def _texts_memo(dataset: Dataset) -> PreparedTexts:
    """``dataset.texts`` to be prepared for keywords once per fit
    (:class:`usergroups.profiling.clean.PreparedTexts`)."""
    from usergroups.profiling.clean import PreparedTexts

    return PreparedTexts.of(dataset.texts)


def _needs_validation(cfg: DiscoveryConfig) -> bool:
    """Whether fit carves validation data: to align, or to choose an 'auto' setting."""
    rc = cfg.recommend
    return (
        cfg.align.method != "none"
        or cfg.user_vectors.text_weight == "auto"
        or (cfg.clustering.n_groups == "auto" and cfg.clustering.select == "validation")
        or (rc.personal != "none" and rc.personal_weight == "auto")
    )


def _new_head(config: DiscoveryConfig) -> Any:
    from usergroups.alignment import AlignmentHead

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


def _behaviour(builder: UserVectorBuilder, x: sp.csr_matrix, cfg: DiscoveryConfig) -> np.ndarray:
    """Behaviour vectors of a user × item matrix, as ``user_vectors.behaviour`` says
    (:func:`usergroups.fusion.vectors.behaviour_block`, fitted on ``x``)."""
    from usergroups.fusion.vectors import behaviour_block

    uv = cfg.user_vectors
    block, _ = behaviour_block(
        x,
        uv.behaviour,
        n_components=uv.n_components,
        random_state=cfg.random_state,
        item_vectors=builder.item_vectors_,
    )
    return block


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

"""The Spark engine: the discovery pipeline on DataFrames, the local engine's model directory out.

:class:`SparkGroupDiscovery` runs the stages of :class:`usergroups.GroupDiscovery` with
Spark doing the work that grows with the data:

1. **Embedding** in a pandas UDF (see :mod:`usergroups.spark.embed`), each distinct text
   once, through the same encoder, cleaning and embedding cache as the local engine.
2. **User vectors** with group-bys: the (rating-weighted) mean of a user's text vectors,
   or the mean of their items' vectors; the behaviour part is the popularity-damped,
   row-normalised interaction row projected on SVD components, computed by MLlib's
   ``RowMatrix.computeSVD`` (from scratch) or taken from a model fitted locally on a
   sample (``fit_sample``); the two fused with the configured weight.
3. **Groups**: MLlib ``KMeans`` (``kmeans`` and ``minibatch``; ``n_init`` restarts, the
   lowest cost wins) or ``BisectingKMeans`` (``agglomerative``, the divisive
   counterpart), with ``n_groups="auto"`` by cosine silhouette on a seeded sample, then
   the local engine's merge / fold / relabel computed from group summaries; or, with
   ``fit_sample``, every user to the nearest centroid of the local model.
4. **Group statistics** in Spark SQL: group–item counts, sizes, popularity and top-``n``
   recommendations with seen items excluded; the items each group over-consumes are ranked
   on the driver from those counts by the local profiler's own ranking
   (:func:`usergroups.profiling.profiles.rank_top_items`: the lift's 90 % lower bound).
5. **Output**: the model directory of the local engine (``usergroups groups / assign /
   recommend / report`` read it unchanged) plus partitioned Parquet under ``spark/``
   (``assignments`` and ``recommendations`` by ``group_id``, ``group_items``).

Keywords, representative texts, categories and rating profiles come from the local
profiler run on a seeded sample of at most ``profile_sample`` users (all users when there
are fewer); sizes, shares and top items are computed over everyone in Spark.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from usergroups.clustering.base import candidate_ks, normalize_rows, select_n_groups
from usergroups.config import DiscoveryConfig
from usergroups.data import Dataset, IdVocab
from usergroups.errors import ConfigError, DataError, NotFittedError
from usergroups.linalg import fuse_blocks, unit_rows
from usergroups.spark.data import POS, SparkDataset
from usergroups.spark.embed import embed_column, encoder_dim, resolve_on_driver
from usergroups.spark.local import components_for, frozen_config, postprocess_summary, text_weight

__all__ = ["SparkGroupDiscovery"]

logger = logging.getLogger(__name__)

_ALGORITHMS = {"kmeans": "kmeans", "minibatch": "kmeans", "agglomerative": "bisecting"}


# ------------------------------------------------------------------ array expressions


_UDFS: dict[str, Any] = {}


def _float_rows(values: pd.Series) -> np.ndarray:
    """A batch of equal-length arrays as one float32 matrix (``(0, 0)`` when empty)."""
    if len(values) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return _stack(values).astype(np.float32)


def _l2_batch(values: pd.Series) -> pd.Series:
    return pd.Series(list(unit_rows(_float_rows(values))))


def _l2(col: Any) -> Any:
    """Rows scaled to unit length in float32 (:func:`usergroups.linalg.unit_rows`), as a
    vectorised pandas UDF."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    if "l2" not in _UDFS:
        _UDFS["l2"] = pandas_udf(_l2_batch, "array<float>")  # type: ignore[call-overload]
    return _UDFS["l2"](col if not isinstance(col, str) else F.col(col))


def _fuse_udf(weight: float) -> Any:
    """:func:`usergroups.linalg.fuse_blocks` of the semantic and behaviour columns, batch by
    batch: the arithmetic of :meth:`UserVectorBuilder.fuse` and of the local engine."""
    from pyspark.sql.functions import pandas_udf

    w = float(weight)

    def fuse(semantic: pd.Series, behaviour: pd.Series) -> pd.Series:
        return pd.Series(list(fuse_blocks(_float_rows(semantic), _float_rows(behaviour), w)))

    return pandas_udf(fuse, "array<float>")  # type: ignore[call-overload]


def _sum_arrays(col: Any, dim: int) -> Any:
    """Aggregate: element-wise sum of the arrays in ``col`` (length ``dim``), as doubles."""
    from pyspark.sql import functions as F

    zero = F.array_repeat(F.lit(0.0).cast("double"), dim)
    return F.aggregate(
        F.collect_list(col.cast("array<double>")),
        zero,
        lambda acc, x: F.zip_with(acc, x, lambda a, b: a + b),
    )


def _arrow_columns(table: Any) -> dict[str, np.ndarray]:
    """The columns of an Arrow table as NumPy arrays; a column of equal-length lists as a
    ``(n_rows, length)`` matrix (``(n_rows, 0)`` for empty lists), strings as objects."""
    import pyarrow as pa

    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            chunks = [chunk.flatten() for chunk in column.chunks]
            flat = pa.concat_arrays(chunks) if chunks else pa.array([], column.type.value_type)
            values = flat.to_numpy(zero_copy_only=False)
            out[name] = values.reshape(len(column), -1 if len(values) else 0)
        else:
            out[name] = column.to_numpy()
    return out


def _stack(values: Any) -> np.ndarray:
    """Rows of a pandas Series of arrays as one 2-D array."""
    return np.asarray(np.stack(list(values)))


def _zeros(dim: int) -> Any:
    from pyspark.sql import functions as F

    return F.array_repeat(F.lit(0.0).cast("double"), dim)


def _index(df: Any, column: str, name: str) -> Any:
    """``df`` (distinct values of ``column``) with a dense 0-based ``name`` in sorted order."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.orderBy(column)
    return df.select(column).withColumn(name, (F.row_number().over(order) - 1).cast("long"))


@dataclass
class _Run:
    """What the steps of :meth:`SparkGroupDiscovery.fit` hand on, in the order they fill it."""

    data: SparkDataset
    cfg: DiscoveryConfig
    encoder_choice: Any
    timings: dict[str, float] = field(default_factory=dict)
    local_model: Any = None
    # _index_ids: ``user_id, uidx``, ``item_id, iidx``, ``uidx, iidx, rating``
    users: Any = None
    items: Any = None
    inter: Any = None
    n_users: int = 0
    n_items: int = 0
    # _embed: ``texts + vector, uidx``, ``iidx, ivec``, encoder dimension, cache counts
    texts_v: Any = None
    item_vec: Any = None
    dim: int = 0
    cache: dict[str, int] = field(default_factory=dict)
    # _user_vectors: ``uidx, semantic, behaviour, vector`` and the weight they were fused with
    fused: Any = None
    text_weight: float = 1.0
    # _groups: ``uidx, group_id`` and the clustering's metrics
    labels: Any = None
    clustering: dict[str, Any] = field(default_factory=dict)
    # fit: the CPU seconds the driver, the JVM and its workers spent in it
    cpu: dict[str, float] | None = None


@dataclass
class _Stats:
    """Group statistics of :meth:`SparkGroupDiscovery._collect`: Spark tables and the
    driver arrays of the model directory (rows in ``uidx`` order, columns in ``iidx``)."""

    counts: Any
    vectors: dict[str, np.ndarray] | None
    labels: np.ndarray
    seen: sp.csr_matrix
    sizes: np.ndarray
    popularity: np.ndarray
    group_counts: np.ndarray
    recommender: Any
    titles_df: Any
    item_ids: list[Any]
    titles: dict[str, str]


class SparkGroupDiscovery:
    """Discover groups with Spark; save the same model directory as the local engine.

    Parameters
    ----------
    config : DiscoveryConfig, optional
        The same configuration as the local engine. Settings that need a validation split
        on one machine (alignment, the personal model, ``"auto"`` weights) run as their
        fixed counterparts (see :func:`usergroups.spark.local.frozen_config`), with a
        warning; ``method="hdbscan"`` is not available.
    spark : SparkSession, optional
        Default: :func:`usergroups.spark.spark_session` with ``master`` and ``conf``.
    master : str, default "local[2]"
    conf : dict of str to str, optional
        ``spark.*`` settings.
    fit_sample : int or float, optional
        Fit the local engine on a seeded sample of users (a count, or a fraction in
        (0, 1)) and assign every user to its centroids in Spark.
    profile_sample : int, default 20000
        Users whose texts feed the keywords and representative texts of the profiles.

    Attributes
    ----------
    model_ : GroupDiscovery
        The fitted model, as :meth:`GroupDiscovery.load` would return it.
    assignments_ : DataFrame (Spark)
        ``user_id, group_id, confidence``.
    recommendations_ : DataFrame (Spark)
        ``user_id, rank, item_id, title, score, group_id``.
    group_items_ : DataFrame (Spark)
        ``group_id, item_id, count, share, lift, score``.
    metrics_ : dict

    Examples
    --------
    >>> from usergroups.spark import SparkGroupDiscovery, read_files  # doctest: +SKIP
    >>> engine = SparkGroupDiscovery(cfg, master="local[2]")  # doctest: +SKIP
    >>> data = read_files(engine.spark, texts="reviews.parquet")  # doctest: +SKIP
    >>> engine.fit(data).save("runs/x")  # doctest: +SKIP
    """

    def __init__(
        self,
        config: DiscoveryConfig | None = None,
        *,
        spark: Any = None,
        master: str | None = "local[2]",
        conf: dict[str, str] | None = None,
        fit_sample: float | None = None,
        profile_sample: int = 20000,
    ) -> None:
        self.config = config if config is not None else DiscoveryConfig()
        self.master = master
        self.conf = conf
        self.fit_sample = fit_sample
        self.profile_sample = profile_sample
        self._spark = spark

    @property
    def spark(self) -> Any:
        if self._spark is None:
            from usergroups.spark.session import spark_session

            self._spark = spark_session(self.master, self.conf)
        return self._spark

    # -------------------------------------------------------------------- checks
    def _check_params(self) -> DiscoveryConfig:
        cfg, changed = frozen_config(self.config)
        if changed:
            warnings.warn(
                "the Spark engine runs frozen text vectors and group popularity; it uses "
                + ", ".join(changed),
                UserWarning,
                stacklevel=3,
            )
        if cfg.clustering.method not in _ALGORITHMS:
            raise ConfigError(
                f"clustering.method={cfg.clustering.method!r} is not available in the Spark "
                f"engine; use one of {', '.join(map(repr, _ALGORITHMS))}, or --fit-sample to "
                "cluster a sample locally with any method"
            )
        fs = self.fit_sample
        if fs is not None and (isinstance(fs, bool) or not (fs > 0)):
            raise ConfigError(
                f"fit_sample={fs!r} must be a number of users (>= 1) or a fraction in (0, 1)"
            )
        return cfg

    # ----------------------------------------------------------------------- fit
    def fit(
        self, data: SparkDataset | Dataset, *, fitted: Any = None, show_progress: bool = False
    ) -> SparkGroupDiscovery:
        """Embed, build user vectors, group, profile and recommend; see the module docs.

        The steps, in order: :meth:`_start` (check the input, choose the encoder),
        :meth:`_index_ids`, :meth:`_embed`, :meth:`_user_vectors`, :meth:`_groups`,
        :meth:`_finish` (statistics, state, recommendations, profiles), :meth:`_record`.

        Parameters
        ----------
        data : SparkDataset or Dataset
        fitted : GroupDiscovery, optional
            A model fitted in this process: every user is assigned to its centroids in
            its vector space (what ``fit_sample`` does with a model of a sample).
        """
        from usergroups.spark.session import CpuMeter

        run = self._start(data)
        run.local_model = fitted
        meter = CpuMeter(self.spark).start()
        try:
            t0 = time.perf_counter()
            for stage, step in (
                ("indexing", self._index_ids),
                ("embedding", self._embed),
                ("user_vectors", self._user_vectors),
                ("clustering", self._groups),
            ):
                t = time.perf_counter()
                step(run)
                run.timings[stage] = time.perf_counter() - t
                logger.info("spark %s: %.1f s", stage, run.timings[stage])
            self._finish(run)
            run.timings["total_fit"] = time.perf_counter() - t0
        finally:
            run.cpu = meter.stop()
        self._record(run)
        return self

    def _start(self, data: SparkDataset | Dataset) -> _Run:
        """Check the settings and the input; choose ``embedding.model='auto'`` on the driver."""
        from usergroups.spark.data import from_dataset

        cfg = self._check_params()
        self.config_ = cfg
        if isinstance(data, Dataset):
            data = from_dataset(self.spark, data)
        if not isinstance(data, SparkDataset):
            raise DataError(
                f"fit expects a SparkDataset or a Dataset, got {type(data).__name__}; read one "
                "with usergroups.spark.read_files(spark, ...)"
            )
        self.data_ = data
        # embedding.model='auto': chosen once on the driver, so executors and the saved
        # model (built from cfg) all use the same concrete encoder
        embedding, choice = resolve_on_driver(cfg.embedding, data.texts, seed=cfg.random_state)
        if embedding is not cfg.embedding:
            cfg = self.config_ = cfg.model_copy(update={"embedding": embedding})
        if choice.fallback:
            logger.warning("fell back to a default: embedding.model: %s", choice.fallback)
        return _Run(data=data, cfg=cfg, encoder_choice=choice)

    def _index_ids(self, run: _Run) -> None:
        """Dense ``uidx`` / ``iidx`` in sorted id order; interactions as index pairs."""
        data = run.data
        run.users = _index(
            data.interactions.select("user_id").union(data.texts.select("user_id")).distinct(),
            "user_id",
            "uidx",
        ).localCheckpoint()
        run.items = self._item_index(data).localCheckpoint()
        run.n_users, run.n_items = run.users.count(), run.items.count()
        if run.n_users == 0:
            raise DataError("the dataset is empty: no interactions and no texts")
        run.inter = (
            data.interactions.join(run.users, "user_id")
            .join(run.items, "item_id")
            .select("uidx", "iidx", "rating")
        ).localCheckpoint()

    def _embed(self, run: _Run) -> None:
        """Text vectors (each distinct text once) and item vectors; the cache's hit counts."""
        cfg, stats = run.cfg, dict[str, Any]()
        run.dim = encoder_dim(cfg.embedding, 0)
        texts_v = embed_column(run.data.texts, "text", cfg.embedding, stats=stats)
        # checkpoints cut the lineage: the plans of later joins stay small
        run.texts_v = texts_v.join(run.users, "user_id").localCheckpoint()
        run.item_vec = self._item_vectors(
            run.data, run.items, run.texts_v, run.dim, stats
        ).localCheckpoint()
        run.cache = {"hits": int(stats["hits"].value), "misses": int(stats["misses"].value)}
        for key in ("item_hits", "item_misses"):
            if key in stats:
                run.cache[key.split("_")[1]] += int(stats[key].value)

    def _user_vectors(self, run: _Run) -> None:
        """``uidx, semantic, behaviour, vector``: the two blocks and their fusion."""
        from pyspark.sql import functions as F

        cfg = run.cfg
        if run.local_model is None and self.fit_sample is not None:
            run.local_model = self._fit_sample_model(run.data, run.users, run.n_users, cfg)
        semantic = self._semantic(run.texts_v, run.inter, run.item_vec, run.users, run.dim, cfg)
        behaviour, k = self._behaviour(run)
        run.text_weight = text_weight(cfg) if k else 1.0
        run.fused = (
            semantic.join(behaviour, "uidx", "left")
            .withColumn("behaviour", F.coalesce("behaviour", _zeros(k)))
            .withColumn("vector", _fuse_udf(run.text_weight)(F.col("semantic"), F.col("behaviour")))
            .withColumn("semantic", F.col("semantic").cast("array<float>"))
            .withColumn("behaviour", F.col("behaviour").cast("array<float>"))
            .select("uidx", "semantic", "behaviour", "vector")
        ).localCheckpoint()

    def _groups(self, run: _Run) -> None:
        """``uidx, group_id``: the fitted model's centroids, or MLlib clustering."""
        if run.local_model is not None:
            labels = self._assign(run.fused, run.local_model.centroids_)
            run.clustering = {"silhouette": None, "k_scores": {}, "merged": [], "folded": []}
        else:
            labels, run.clustering = self._cluster(run.fused, run.n_users, run.cfg)
        run.labels = labels.localCheckpoint()

    def _record(self, run: _Run) -> None:
        """``metrics_``: the data's counts, the choices, fallbacks and per-stage timings."""
        from usergroups.spark.embed import executor_encoder

        model, cfg, texts = self.model_, run.cfg, run.data.texts
        encoder = executor_encoder(cfg.embedding.model_dump_json(), 0)
        model.metrics_ = {
            "dataset": run.data.name,
            "data": {
                "n_users": run.n_users,
                "n_items": run.n_items,
                "n_interactions": int(run.inter.count()),
                "n_texts": int(texts.count()),
                "n_users_with_text": int(texts.select("user_id").distinct().count()),
            },
            "dropped": run.data.report.to_records(),
            "n_groups": int(model.centroids_.shape[0]),
            "n_noise": int((model.labels_ < 0).sum()),
            **run.clustering,
            "embedding_cache": run.cache,
            "encoder": str(getattr(encoder, "name", cfg.embedding.model)),
            "encoder_choice": run.encoder_choice.to_record(),
            "engine": {
                "name": "spark",
                "master": self.spark.sparkContext.master,
                "spark": self.spark.version,
                "fit_sample": self.fit_sample,
                "algorithm": "local"
                if run.local_model is not None
                else _ALGORITHMS[cfg.clustering.method],
            },
            "item_names": getattr(self, "_item_names_info", {}),
            "timings": {k_: round(v, 3) for k_, v in run.timings.items()},
            "cpu_seconds": _cpu_report(run.cpu),
            "choices": model.state_.choices_report(),
            "fallbacks": _fallbacks(model.state_.choices),
        }
        for line in model.metrics_["fallbacks"]:
            logger.warning("fell back to a default: %s", line)
        self.metrics_ = model.metrics_
        logger.info("found %d groups in %s with Spark", model.metrics_["n_groups"], run.data.name)

    # -------------------------------------------------------------------- stages
    def _item_index(self, data: SparkDataset) -> Any:
        from pyspark.sql import functions as F

        seen = data.interactions.select("item_id").distinct()
        first = _index(seen, "item_id", "iidx")
        if data.items is None:
            return first
        extra = data.items.select("item_id").distinct().join(seen, "item_id", "left_anti")
        n_first = first.count()
        extra_idx = _index(extra, "item_id", "iidx").withColumn(
            "iidx", F.col("iidx") + F.lit(n_first)
        )
        return first.union(extra_idx)

    def _item_vectors(
        self, data: SparkDataset, items: Any, texts_v: Any, dim: int, stats: dict[str, Any]
    ) -> Any:
        """``iidx, ivec``: unit item vectors in the encoder's space (zero where none)."""
        from pyspark.sql import functions as F

        cfg = self.config_
        has_titles = (
            data.items is not None and data.items.filter(F.col("title") != "").limit(1).count() > 0
        )
        if has_titles:
            meta = items.join(data.items, "item_id", "left")
            cats = F.regexp_replace(F.coalesce("categories", F.lit("")), r"\|", ", ")
            doc = F.concat_ws(
                ". ",
                F.coalesce("title", F.lit("")),
                cats,
                F.coalesce("description", F.lit("")),
            )
            # str.strip(" .") of the local engine
            doc = F.regexp_replace(doc, r"^[ .]+|[ .]+$", "")
            docs = meta.select("iidx", doc.alias("doc"))
            item_stats: dict[str, Any] = {}
            out = embed_column(docs, "doc", cfg.embedding, out="ivec", stats=item_stats)
            stats["item_hits"], stats["item_misses"] = item_stats["hits"], item_stats["misses"]
            return out.select("iidx", _l2(F.col("ivec").cast("array<double>")).alias("ivec"))
        about = texts_v.filter(F.col("item_id").isNotNull()).join(items, "item_id")
        pooled = about.groupBy("iidx").agg(
            _sum_arrays(F.col("vector"), dim).alias("s"), F.count(F.lit(1)).alias("n")
        )
        mean = F.transform("s", lambda x: x / F.col("n"))
        return (
            items.select("iidx")
            .join(pooled.select("iidx", _l2(mean).alias("ivec")), "iidx", "left")
            .withColumn("ivec", F.coalesce("ivec", _zeros(dim)))
        )

    def _semantic(
        self, texts_v: Any, inter: Any, item_vec: Any, users: Any, dim: int, cfg: DiscoveryConfig
    ) -> Any:
        """``uidx, semantic``: pooled text vectors, else the mean of the user's item vectors."""
        from pyspark.sql import functions as F

        if cfg.user_vectors.text_pooling == "rating":
            weight = F.greatest(F.coalesce(F.col("rating"), F.lit(1.0)), F.lit(0.5))
        else:
            weight = F.lit(1.0)
        weighted = texts_v.withColumn("w", weight.cast("double")).withColumn(
            "wv", F.transform(F.col("vector").cast("array<double>"), lambda x: x * F.col("w"))
        )
        pooled = weighted.groupBy("uidx").agg(
            _sum_arrays(F.col("wv"), dim).alias("s"), F.sum("w").alias("tw")
        )
        text_part = pooled.select(
            "uidx", _l2(F.transform("s", lambda x: x / F.col("tw"))).alias("text_sem")
        )
        im = (
            inter.join(item_vec, "iidx")
            .groupBy("uidx")
            .agg(_sum_arrays(F.col("ivec"), dim).alias("s"), F.count(F.lit(1)).alias("n"))
        )
        item_part = im.select("uidx", _l2(F.transform("s", lambda x: x / F.col("n"))).alias("im"))
        out = (
            users.select("uidx")
            .join(text_part, "uidx", "left")
            .join(item_part, "uidx", "left")
            .select(
                "uidx",
                _l2(F.coalesce("text_sem", "im", _zeros(dim))).alias("semantic"),
            )
        )
        return out

    def _damped(self, inter: Any, n_users: int) -> Any:
        """``uidx, iidx, xn``: binary rows damped by 1/sqrt(popularity), unit length."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        pop = Window.partitionBy("iidx")
        row = Window.partitionBy("uidx")
        damped = inter.withColumn(
            "d", (1.0 / F.sqrt(F.greatest(F.count(F.lit(1)).over(pop), F.lit(1)))).cast("float")
        )
        norm = F.sqrt(F.sum(F.col("d") * F.col("d")).over(row))
        return damped.select("uidx", "iidx", (F.col("d") / norm).alias("xn"))

    def _behaviour(self, run: _Run) -> tuple[Any, int]:
        """``uidx, behaviour`` (unnormalised) and its dimension."""
        from pyspark.sql import functions as F

        cfg, local_model = run.cfg, run.local_model
        inter, users, items = run.inter, run.users, run.items
        n_users, n_items = run.n_users, run.n_items
        uv = cfg.user_vectors
        spark = self.spark
        if uv.behaviour == "none":
            return users.select("uidx", _zeros(0).alias("behaviour")), 0
        if uv.behaviour == "item_mean":
            raise ConfigError(
                "user_vectors.behaviour='item_mean' is not available in the Spark engine; "
                "use 'svd' or 'none'"
            )
        xn = self._damped(inter, n_users).localCheckpoint()
        if local_model is not None:
            builder = local_model.user_vector_builder_
            if not hasattr(builder, "svd_components_") or builder.svd_components_.shape[0] == 0:
                return users.select("uidx", _zeros(0).alias("behaviour")), 0
            item_ids = np.asarray(
                [r[0] for r in items.orderBy("iidx").select("item_id").collect()], dtype=object
            )
            comps = components_for(builder.svd_components_, local_model.item_ids_.ids, item_ids)
        else:
            k = int(min(uv.n_components, n_users - 1, n_items - 1))
            if k < 1 or xn.limit(1).count() == 0:
                return users.select("uidx", _zeros(0).alias("behaviour")), 0
            comps = self._svd(xn, n_items, k, cfg.random_state)
        k = int(comps.shape[1])
        comp_df = spark.createDataFrame(
            pd.DataFrame({"iidx": np.arange(len(comps), dtype=np.int64), "c": list(comps)}),
            "iidx long, c array<float>",
        )
        contrib = xn.join(F.broadcast(comp_df), "iidx").select(
            "uidx", F.transform("c", lambda x: x * F.col("xn")).alias("cx")
        )
        out = contrib.groupBy("uidx").agg(_sum_arrays(F.col("cx"), k).alias("behaviour"))
        return out, k

    def _svd(self, xn: Any, n_items: int, k: int, random_state: int) -> np.ndarray:
        """Top-``k`` right singular vectors (n_items, k) of the damped matrix.

        Randomised subspace iteration (as scikit-learn's randomized SVD, 7 power
        iterations): each iteration is one pass over the data, every partition adding
        ``X_p^T (X_p Q)`` with scipy; the small Rayleigh-Ritz problem is solved on the
        driver. The arbitrary sign of each component is fixed (largest entry positive).
        """
        from pyspark.sql import functions as F

        rows = xn.groupBy("uidx").agg(F.collect_list(F.struct("iidx", "xn")).alias("e"))

        def to_csr(part: Any) -> Any:
            indptr, indices, data = [0], [], []
            for r in part:
                for e in r[1]:
                    indices.append(int(e[0]))
                    data.append(float(e[1]))
                indptr.append(len(indices))
            if len(indptr) > 1:
                yield sp.csr_matrix(
                    (np.asarray(data, np.float64), np.asarray(indices, np.int64), indptr),
                    shape=(len(indptr) - 1, n_items),
                )

        blocks = rows.rdd.mapPartitions(to_csr).cache()
        sc = self.spark.sparkContext
        rng = np.random.default_rng(random_state)
        width = min(n_items, k + 10)
        q = np.linalg.qr(rng.standard_normal((n_items, width)))[0]

        def gram_times(q: np.ndarray) -> np.ndarray:
            bq = sc.broadcast(q)
            z = blocks.map(lambda m: m.T @ (m @ bq.value)).reduce(lambda a, b: a + b)
            bq.unpersist()
            return np.asarray(z)

        for _ in range(7):
            q = np.linalg.qr(gram_times(q))[0]
        small = q.T @ gram_times(q)
        values, vectors = np.linalg.eigh((small + small.T) / 2)
        order = np.argsort(-values)[:k]
        keep = order[values[order] > values.max() * 1e-9] if values.size else order
        v = (q @ vectors[:, keep]).astype(np.float32)
        blocks.unpersist()
        signs = np.sign(v[np.argmax(np.abs(v), axis=0), np.arange(v.shape[1])])
        return v * np.where(signs == 0, 1.0, signs).astype(np.float32)

    def _fit_sample_model(
        self, data: SparkDataset, users: Any, n_users: int, cfg: DiscoveryConfig
    ) -> Any:
        """The local engine fitted on a seeded sample of users."""
        from pyspark.sql import functions as F

        from usergroups.pipeline import GroupDiscovery

        fs = float(self.fit_sample or 0)
        fraction = fs if fs < 1 else min(1.0, fs / max(n_users, 1))
        sample = users.filter(
            (F.abs(F.xxhash64("user_id", F.lit(cfg.random_state))) % 1_000_000)
            < F.lit(round(fraction * 1_000_000))
        ).select("user_id")
        local = self._local_dataset(data, sample, name=f"{data.name}-sample")
        logger.info("fitting the local engine on a sample of %d users", local.n_users)
        return GroupDiscovery(cfg).fit(local)

    def _local_dataset(self, data: SparkDataset, users: Any, *, name: str) -> Dataset:
        """The rows of ``users`` (a DataFrame of user_id) as a local Dataset."""
        from pyspark.sql import functions as F

        inter = data.interactions.join(F.broadcast(users), "user_id").orderBy(POS)
        texts = data.texts.join(F.broadcast(users), "user_id").orderBy(POS)
        inter_pd = inter.select("user_id", "item_id", "rating", "timestamp").toPandas()
        texts_pd = texts.select("user_id", "text", "item_id", "rating", "timestamp").toPandas()
        if len(inter_pd) == 0 and len(texts_pd) == 0:
            raise DataError(
                "the sample holds no users; raise fit_sample (a count of users, or a fraction)"
            )
        items_pd = None
        if data.items is not None:
            wanted = inter.select("item_id").union(texts.select("item_id")).distinct()
            items_pd = data.items.join(wanted, "item_id").toPandas()
        users_pd = None
        if data.users is not None:
            users_pd = data.users.join(F.broadcast(users), "user_id").toPandas()
        for frame in (inter_pd, texts_pd):
            for col in ("user_id", "item_id", "text"):
                if col in frame:
                    frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
        return Dataset(
            interactions=inter_pd, texts=texts_pd, items=items_pd, users=users_pd, name=name
        )

    def _assign(self, fused: Any, centroids: np.ndarray) -> Any:
        """``uidx, raw`` labels: the nearest centroid by cosine (ties: the lower index)."""
        from pyspark.sql import functions as F
        from pyspark.sql.functions import pandas_udf

        c = normalize_rows(np.asarray(centroids, dtype=np.float32))
        bc = self.spark.sparkContext.broadcast(c)

        @pandas_udf("long")  # type: ignore[call-overload]
        def nearest(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
            cents = bc.value
            for vectors in batches:
                if len(vectors) == 0:
                    yield pd.Series([], dtype=np.int64)
                    continue
                x = normalize_rows(_stack(vectors).astype(np.float32))
                if cents.shape[0] == 0:
                    yield pd.Series(np.full(len(x), -1, dtype=np.int64))
                else:
                    yield pd.Series(np.argmax(x @ cents.T, axis=1).astype(np.int64))

        return fused.select("uidx", nearest(F.col("vector")).alias("group_id"))

    def _cluster(
        self, fused: Any, n_users: int, cfg: DiscoveryConfig
    ) -> tuple[Any, dict[str, Any]]:
        """MLlib clustering, auto-K by silhouette on a sample, then merge / fold / relabel."""
        from pyspark.ml.functions import array_to_vector
        from pyspark.sql import functions as F

        from usergroups.clustering import cosine_silhouette

        cc = cfg.clustering
        features = fused.select("uidx", array_to_vector(F.col("vector")).alias("features")).cache()
        sample_frac = min(1.0, cc.silhouette_sample / max(n_users, 1))
        sample = (
            fused.sample(fraction=sample_frac, seed=cfg.random_state) if sample_frac < 1 else fused
        )
        sample_pd = sample.select("uidx", "vector").orderBy("uidx").toPandas()
        x_sample = _stack(sample_pd["vector"]).astype(np.float32)
        sample_feats = features.join(sample.select("uidx"), "uidx").orderBy("uidx").cache()
        models: dict[int, Any] = {}

        def fit_k(k: int) -> Any:
            if k not in models:
                models[k] = self._mllib_fit(
                    features, k, _ALGORITHMS[cc.method], cc.n_init, cfg.random_state
                )
            return models[k]

        def sample_labels(k: int) -> np.ndarray:
            pred = fit_k(k).transform(sample_feats).select("prediction").toPandas()
            return pred["prediction"].to_numpy(np.int64)

        k, k_scores = _choose_k(x_sample, sample_labels, n_users, cfg)
        raw = fit_k(k).transform(features)
        raw = raw.select("uidx", F.col("prediction").cast("long").alias("g"))
        labels, merged, folded = self._postprocess(raw, fused, x_sample.shape[1], cfg)
        final_sample = labels.join(sample.select("uidx"), "uidx").orderBy("uidx").toPandas()
        sil = cosine_silhouette(
            x_sample,
            final_sample["group_id"].to_numpy(np.int64),
            sample_size=len(x_sample),
            random_state=cfg.random_state,
        )
        return labels, {
            "silhouette": None if np.isnan(sil) else float(sil),
            "k_scores": {
                str(k_): (None if np.isnan(v) else float(v)) for k_, v in k_scores.items()
            },
            "merged": [list(map(int, p)) for p in merged],
            "folded": folded,
        }

    def _postprocess(
        self, raw: Any, fused: Any, dim: int, cfg: DiscoveryConfig
    ) -> tuple[Any, Any, Any]:
        """``uidx, group_id`` after the local merge / fold / relabel rules
        (:func:`postprocess_summary`), computed from each raw group's vector sum and size."""
        from pyspark.sql import functions as F

        cc = cfg.clustering
        raw = raw.join(fused.select("uidx", "vector"), "uidx").localCheckpoint()
        n_raw = int(raw.agg(F.max("g")).first()[0]) + 1
        summary = (
            raw.groupBy("g")
            .agg(_sum_arrays(F.col("vector"), dim).alias("s"), F.count(F.lit(1)).alias("n"))
            .toPandas()
        )
        sums = np.zeros((n_raw, dim))
        counts = np.zeros(n_raw, dtype=np.int64)
        for g, s, n in zip(summary["g"], summary["s"], summary["n"], strict=True):
            sums[int(g)] = np.asarray(s, dtype=np.float64)
            counts[int(g)] = int(n)
        label_map, merged, folded = postprocess_summary(
            sums, counts, min_group_size=cc.min_group_size, merge_threshold=cc.merge_threshold
        )
        mapping = self.spark.createDataFrame(
            pd.DataFrame({"g": list(label_map), "group_id": list(label_map.values())}),
            "g long, group_id long",
        )
        labels = raw.join(F.broadcast(mapping), "g").select("uidx", "group_id")
        return labels, merged, folded

    @staticmethod
    def _mllib_fit(features: Any, k: int, algorithm: str, n_init: int, seed: int) -> Any:
        from pyspark.ml.clustering import BisectingKMeans, KMeans

        if algorithm == "bisecting":
            return BisectingKMeans(k=k, seed=seed, maxIter=50).fit(features)
        best, best_cost = None, np.inf
        # MLlib has no n_init: restart with new seeds and keep the lowest cost, as sklearn does
        for i in range(n_init):
            model = KMeans(k=k, seed=seed + i, maxIter=100, tol=1e-6, initSteps=2).fit(features)
            cost = float(model.summary.trainingCost)
            if cost < best_cost - 1e-9:
                best, best_cost = model, cost
        return best

    # -------------------------------------------------------------- statistics
    def _finish(self, run: _Run) -> None:
        """Group statistics, the fitted state, recommendations and profiles; builds
        ``model_`` from the same :class:`~usergroups.fitted.FittedState` the local engine
        builds. Timed as ``statistics``, ``recommendations`` and ``profiles``."""
        from usergroups.pipeline import GroupDiscovery

        t = time.perf_counter()
        stats = self._collect(run)
        self.group_items_ = self._group_items(run, stats)
        state = self._fitted_state(run, stats)
        stats.vectors = None  # the largest driver table: the state holds its arrays now
        model = GroupDiscovery.from_state(state, config=run.cfg)
        self.model_ = model
        self.assignments_ = self.spark.createDataFrame(model.assignments_)
        run.timings["statistics"] = time.perf_counter() - t
        logger.info("spark statistics: %.1f s", run.timings["statistics"])

        t = time.perf_counter()
        self._recommend_everyone(run, stats)
        run.timings["recommendations"] = time.perf_counter() - t
        logger.info("spark recommendations: %.1f s", run.timings["recommendations"])

        t = time.perf_counter()
        model.groups_ = self._profiles(
            run.data,
            model,
            run.labels,
            run.users,
            run.texts_v,
            _top_items(stats, run.cfg),
            stats.sizes,
            run.n_users,
        )
        run.timings["profiles"] = time.perf_counter() - t
        logger.info("spark profiles: %.1f s", run.timings["profiles"])

    def _collect(self, run: _Run) -> _Stats:
        """Group–item counts in Spark SQL; the arrays the model directory needs, collected
        to the driver once (user vectors and labels in ``uidx`` order, seen items)."""
        from pyspark.sql import functions as F

        from usergroups.recommend import GroupPopularity

        spark, n_users, n_items = self.spark, run.n_users, run.n_items
        run.labels.createOrReplaceTempView("ug_labels")
        run.inter.select("uidx", "iidx").createOrReplaceTempView("ug_inter")
        counts = spark.sql(
            "SELECT l.group_id, i.iidx, COUNT(*) AS n FROM ug_inter i "
            "JOIN ug_labels l ON i.uidx = l.uidx WHERE l.group_id >= 0 "
            "GROUP BY l.group_id, i.iidx"
        ).localCheckpoint()
        # the blocks only (the state fuses them again), through Arrow into matrices: a
        # pandas frame of array columns costs the driver a Python object per user and block
        vectors = _arrow_columns(
            run.fused.select("uidx", "semantic", "behaviour")
            .join(run.labels, "uidx")
            .join(run.users, "uidx")
            .orderBy("uidx")
            .toArrow()
        )
        seen_uv = _arrow_columns(run.inter.select("uidx", "iidx").toArrow())
        labels = vectors["group_id"].astype(np.int64)
        seen = sp.csr_matrix(
            (
                np.ones(len(seen_uv["uidx"]), dtype=np.float32),
                (seen_uv["uidx"].astype(np.int64), seen_uv["iidx"].astype(np.int64)),
            ),
            shape=(n_users, n_items),
        )
        del seen_uv
        members = labels >= 0
        n_groups = int(labels.max()) + 1 if members.any() else 0
        sizes = np.bincount(labels[members], minlength=n_groups).astype(np.float32)
        popularity = np.asarray(seen.sum(axis=0)).ravel().astype(np.float32) / max(n_users, 1)
        counts_pd = counts.toPandas()
        group_counts = np.zeros((n_groups, n_items), dtype=np.float32)
        group_counts[
            counts_pd["group_id"].to_numpy(np.int64), counts_pd["iidx"].to_numpy(np.int64)
        ] = counts_pd["n"].to_numpy(np.float32)
        if run.data.items is not None:
            titles_df = run.items.join(run.data.items.select("item_id", "title"), "item_id", "left")
        else:
            titles_df = run.items.withColumn("title", F.lit(""))
        titles_df = titles_df.withColumn("title", F.coalesce("title", F.lit(""))).localCheckpoint()
        return _Stats(
            counts=counts,
            vectors=vectors,
            labels=labels,
            seen=seen,
            sizes=sizes,
            popularity=popularity,
            group_counts=group_counts,
            recommender=GroupPopularity.from_arrays(
                group_counts, sizes, popularity, run.cfg.recommend.smoothing
            ),
            titles_df=titles_df,
            item_ids=[r[0] for r in run.items.orderBy("iidx").select("item_id").collect()],
            titles={
                str(r["item_id"]): str(r["title"])
                for r in titles_df.filter(F.col("title") != "").select("item_id", "title").collect()
            },
        )

    def _group_items(self, run: _Run, stats: _Stats) -> Any:
        """``group_id, item_id, count, score, lift, rank``: every group's item scores (the
        group-popularity formula, in float32) and the plain lift over the population."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        spark, n_groups = self.spark, len(stats.sizes)
        s = F.lit(float(run.cfg.recommend.smoothing)).cast("float")
        pop_df = spark.createDataFrame(
            pd.DataFrame({"iidx": np.arange(run.n_items, dtype=np.int64), "p": stats.popularity}),
            "iidx long, p float",
        )
        groups_df = spark.createDataFrame(
            pd.DataFrame({"group_id": np.arange(n_groups, dtype=np.int64), "size": stats.sizes}),
            "group_id long, size float",
        )
        grid = groups_df.crossJoin(pop_df).join(stats.counts, ["group_id", "iidx"], "left")
        grid = grid.withColumn("c", F.coalesce(F.col("n").cast("float"), F.lit(0.0).cast("float")))
        score = (F.col("c") + s * F.col("p")).cast("float") / (F.col("size") + s).cast("float")
        grid = grid.withColumn("score", score.cast("float"))
        rank_w = Window.partitionBy("group_id").orderBy(F.col("score").desc(), F.col("iidx"))
        ranked = grid.withColumn("grank", F.row_number().over(rank_w))
        share = F.col("n") / F.greatest(F.col("size").cast("double"), F.lit(1.0))
        lift = stats.counts.join(groups_df, "group_id").withColumn("share", share)
        # popularity in float32, then float64, exactly as the local profiler rounds it,
        # so equal lifts tie (and break ties) the same way
        pop_exact = run.inter.groupBy("iidx").agg(
            (F.count(F.lit(1)).cast("float") / F.lit(float(max(run.n_users, 1))).cast("float"))
            .cast("float")
            .cast("double")
            .alias("pe")
        )
        lift = lift.join(pop_exact, "iidx").withColumn(
            "lift", F.when(F.col("pe") > 0, F.col("share") / F.col("pe")).otherwise(0.0)
        )
        return (
            ranked.join(stats.titles_df.select("iidx", "item_id"), "iidx")
            .join(lift.select("group_id", "iidx", "lift"), ["group_id", "iidx"], "left")
            .select(
                "group_id",
                "item_id",
                F.col("c").cast("long").alias("count"),
                F.col("score").cast("double").alias("score"),
                "lift",
                F.col("grank").alias("rank"),
            )
        )

    def _fitted_state(self, run: _Run, stats: _Stats) -> Any:
        """The :class:`~usergroups.fitted.FittedState` of the collected arrays: unit blocks,
        the choices the configuration fixed, and the fine groups on the driver."""
        from dataclasses import replace

        from usergroups.fitted import Choice, FittedState
        from usergroups.selection import fixed_choices, fixed_fine_groups

        cfg, vec, weight = run.cfg, stats.vectors, run.text_weight
        assert vec is not None, "the user vectors are released after the state"
        # the state holds unit blocks, as the local engine's (fusion normalises them anyway)
        semantic = unit_rows(vec["semantic"])
        behaviour = (
            unit_rows(vec["behaviour"])
            if vec["behaviour"].shape[1]
            else np.zeros((len(semantic), 0), dtype=np.float32)
        )
        has_behaviour = behaviour.shape[1] > 0
        choices = fixed_choices(cfg, has_behaviour=has_behaviour, has_texts=len(semantic) > 0)
        # the config's weight, or 1 forced by the data (no behaviour block): fixed_choices
        # says which; the value is the one the vectors were fused with
        choices["text_weight"] = replace(choices["text_weight"], value=float(weight))
        if choices["fine_text_weight"].source == "default":  # the segments' weight
            choices["fine_text_weight"] = replace(choices["fine_text_weight"], value=float(weight))
        choices["n_groups"] = Choice(
            len(stats.sizes), choices["n_groups"].source, choices["n_groups"].reason
        )
        # the fine groups on the driver (the vectors are collected here anyway): sizes from
        # the config or the defaults, off above FINE_MAX_CELLS, as in a local fit
        fine, choices = fixed_fine_groups(semantic, behaviour, stats.seen, choices, cfg)
        if fine is not None:
            from usergroups.clustering.fine import representative_partition

            fine.representative_ = representative_partition(fine.labels_)
            logger.info("fine groups: %d partitions of %d groups", fine.n_partitions, fine.n_fine)
        return FittedState(
            user_ids=IdVocab.from_ordered(vec["user_id"].tolist()),
            item_ids=IdVocab.from_ordered(stats.item_ids),
            item_titles=stats.titles,
            labels=stats.labels,
            text_block=semantic,
            semantic=semantic,
            behaviour=behaviour,
            text_weight=weight,
            seen=stats.seen,
            recommender=stats.recommender,
            choices=choices,
            fine=fine,
        )

    def _recommend_everyone(self, run: _Run, stats: _Stats) -> None:
        """``recommendations_`` (Spark) and the model directory's frame: every user's top
        ``n`` by candidate generation on partitions (:func:`_top_n_partition`)."""
        from pyspark.sql import functions as F

        spark, model, n = self.spark, self.model_, run.cfg.recommend.n
        if model.state_.fine is not None:
            # the fine groups' mean is the group part: every user's list from the model
            # itself, in batches on the driver (fine groups are off at sizes that need Spark)
            self._top_n = model.top_n_all(n)
            frame = model._recommendation_frame(model.user_ids_.ids, model.labels_, *self._top_n)
            self.recommendations_ = spark.createDataFrame(
                frame.drop(columns=["name", "name_source"])
            )
            return
        seen = run.inter.groupBy("uidx").agg(F.collect_list("iidx").alias("seen"))
        rows = run.labels.join(seen, "uidx", "left")
        recommender = spark.sparkContext.broadcast(stats.recommender)
        n_items = run.n_items

        def top(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for frame in batches:
                yield _top_n_partition(frame, recommender.value, n_items, n)

        recs = rows.mapInPandas(
            top, "uidx long, group_id long, rank long, iidx long, score float"
        ).localCheckpoint()
        self.recommendations_ = (
            recs.join(run.users, "uidx")
            .join(stats.titles_df.select("iidx", "item_id", "title"), "iidx")
            .select(
                "user_id",
                "rank",
                "item_id",
                "title",
                F.col("score").cast("double").alias("score"),
                "group_id",
            )
        )
        got = _arrow_columns(recs.select("uidx", "rank", "iidx", "score").toArrow())
        width = min(int(n), run.n_items)
        idx = np.full((run.n_users, width), -1, dtype=np.int64)
        scores = np.full((run.n_users, width), -np.inf, dtype=np.float32)
        at = (got["uidx"].astype(np.int64), got["rank"].astype(np.int64) - 1)
        idx[at] = got["iidx"]
        scores[at] = got["score"]
        # the arrays top_n_all gives: the model directory writes them a part at a time, as
        # the local engine's save does (a frame of every user's rows held gigabytes at 1M)
        self._top_n = (idx, scores)

    def _profiles(
        self,
        data: SparkDataset,
        model: Any,
        labels: Any,
        users: Any,
        texts_v: Any,
        top: pd.DataFrame,
        sizes: np.ndarray,
        n_users: int,
    ) -> pd.DataFrame:
        """Profiles from the local profiler on a sample; sizes and top items from Spark.
        The segments' sub-interests (``model.sub_interests_``) from the same sample, by
        :func:`_sub_interest_table`."""
        from usergroups.profiling import build_profiles

        cfg = self.config_
        frac = min(1.0, self.profile_sample / max(n_users, 1))
        picked = users if frac >= 1 else users.sample(fraction=frac, seed=cfg.random_state)
        local = self._local_dataset(data, picked.select("user_id"), name=data.name)
        index = {u: i for i, u in enumerate(model.user_ids_.ids.tolist())}
        rows = np.array([index[str(u)] for u in local.user_ids.ids.tolist()], dtype=np.int64)
        self._name_items(model, local)
        text_vectors = _sample_text_vectors(texts_v, picked, model.semantic_.shape[1])
        pc = cfg.profile
        profiles = build_profiles(
            local,
            model.labels_[rows],
            n_keywords=pc.n_keywords,
            n_items=pc.n_items,
            min_support=pc.min_support,
            language=pc.language,
            text_vectors=text_vectors if len(text_vectors) == len(local.texts) else None,
            semantic_centroids=model.semantic_centroids_,
            n_texts=pc.n_texts,
            text_chars=pc.text_chars,
            low_rating=pc.low_rating,
            n_categories=pc.n_categories,
            n_attribute_values=pc.n_attribute_values,
            item_names=model.item_names_,
        )
        model.sub_interests_ = _sub_interest_table(local, rows, model, cfg)
        return _group_records(profiles, model, top, sizes, n_users)

    def _name_items(self, model: Any, local: Dataset) -> None:
        """Item names from the reviews of the profile sample, into ``model``'s state.

        The texts are on the executors and only the sample's reach the driver, so items
        nobody in the sample reviewed stay unnamed (shown by their id).
        """
        from usergroups.profiling import derive_item_names

        item_names = derive_item_names(
            local.texts, exclude=model.item_titles_, language=self.config_.profile.language
        )
        model.state_ = model.state_.replace(item_names=item_names)
        self._item_names_info = {
            "source": "profile sample",
            "n_sample_users": int(local.n_users),
            "n_named": len(item_names),
        }
        logger.info(
            "named %d items without a title from the reviews of %d sampled users",
            len(item_names),
            local.n_users,
        )

    # -------------------------------------------------------------------- output
    def save(self, directory: str | Path) -> Path:
        """Write the local engine's model directory, then partitioned Parquet under ``spark/``.

        ``spark/assignments`` and ``spark/recommendations`` are partitioned by
        ``group_id``; ``spark/group_items`` holds every group's item scores and lifts.
        """
        if not hasattr(self, "model_"):
            raise NotFittedError("this SparkGroupDiscovery is not fitted; call fit(data) first")
        from usergroups.persistence.model_dir import save_model

        path = save_model(self.model_, Path(directory), recommendations=self._top_n)
        base = path.resolve() / "spark"
        uri = base.as_uri()
        self.assignments_.write.mode("overwrite").partitionBy("group_id").parquet(
            f"{uri}/assignments"
        )
        self.recommendations_.write.mode("overwrite").partitionBy("group_id").parquet(
            f"{uri}/recommendations"
        )
        self.group_items_.write.mode("overwrite").parquet(f"{uri}/group_items")
        return path


def _cpu_report(spent: dict[str, float] | None) -> dict[str, float] | None:
    """``metrics["cpu_seconds"]``: the fit's CPU seconds per process (the Python driver,
    the JVM, the JVM's Python workers) and their ``total``; None where not measured."""
    if spent is None:
        return None
    out = {k: round(max(v, 0.0), 2) for k, v in spent.items()}
    out["total"] = round(sum(out.values()), 2)
    return out


def _fallbacks(choices: Any) -> list[str]:
    """One line per choice that fell back to its default, or that the data turned off (the
    fine groups above ``selection.FINE_MAX_CELLS``), as a local fit records them."""
    lines = [f"{name}: {c.reason}" for name, c in choices.items() if c.source == "default"]
    fine = choices.get("fine_partitions")
    if fine is not None and fine.source == "data" and not fine.value:
        lines.append(f"fine groups: off: {fine.reason}")
    return lines


def _top_n_partition(frame: pd.DataFrame, recommender: Any, n_items: int, n: int) -> pd.DataFrame:
    """Top-``n`` of a batch of users (``uidx, group_id, seen``), seen items excluded.

    The local engine's own code (:func:`usergroups.recommend.batched.top_n_blended`):
    candidates are a prefix of each group's items by score, long enough to cover the
    user's seen items, so memory grows with the batch, never with users × items.

    Returns
    -------
    DataFrame
        ``uidx, group_id, rank, iidx, score``: one row per recommended item.
    """
    from usergroups.recommend.batched import top_n_blended

    lists = [np.zeros(0, np.int64) if s is None else np.asarray(s, np.int64) for s in frame["seen"]]
    lengths = np.fromiter((len(s) for s in lists), np.int64, len(lists))
    indices = np.concatenate(lists) if lists else np.zeros(0, np.int64)
    seen = sp.csr_matrix(
        (np.ones(len(indices), np.float32), indices, np.r_[0, np.cumsum(lengths)]),
        shape=(len(lists), n_items),
    )
    groups = frame["group_id"].to_numpy(np.int64)
    idx, scores = top_n_blended(recommender, None, groups, seen, n)
    rows, ranks = np.nonzero(idx >= 0)
    return pd.DataFrame(
        {
            "uidx": frame["uidx"].to_numpy(np.int64)[rows],
            "group_id": groups[rows],
            "rank": (ranks + 1).astype(np.int64),
            "iidx": idx[rows, ranks],
            "score": scores[rows, ranks].astype(np.float32),
        }
    )


def _top_items(stats: _Stats, cfg: DiscoveryConfig) -> pd.DataFrame:
    """``group_id, r, item_id, title, lift``: each group's top items by the lift's 90 %
    lower bound, the local profiler's own ranking on the collected group × item counts."""
    from usergroups.profiling.profiles import rank_top_items

    pc, item_ids = cfg.profile, stats.item_ids
    ranked = rank_top_items(
        stats.group_counts,
        stats.sizes,
        stats.popularity,
        n_items=pc.n_items,
        min_support=pc.min_support,
    )
    return pd.DataFrame(
        [
            {
                "group_id": g,
                "r": r,
                "item_id": str(item_ids[i]),
                "title": stats.titles.get(str(item_ids[i]), ""),
                "lift": v,
            }
            for g, (order, lifts) in enumerate(ranked)
            for r, (i, v) in enumerate(zip(order, lifts, strict=True), start=1)
        ],
        columns=["group_id", "r", "item_id", "title", "lift"],
    )


def _choose_k(
    x_sample: np.ndarray, sample_labels: Any, n_users: int, cfg: DiscoveryConfig
) -> tuple[int, dict[int, float]]:
    """The number of groups: the configured one, or ``"auto"`` by cosine silhouette of the
    sample's labels (``sample_labels(k)``) over the candidate ks; with the k scores."""
    cc = cfg.clustering
    if cc.n_groups != "auto":
        k = int(cc.n_groups)
        if k > n_users:
            raise ConfigError(
                f"n_groups={k} but X has only {n_users} users; use n_groups <= {n_users} or 'auto'"
            )
        return k, {}
    ks = candidate_ks(cc.k_min, cc.k_max, n_users)
    if not ks:
        return 1, {}
    k, _, k_scores = select_n_groups(
        x_sample, ks, sample_labels, sample_size=len(x_sample), random_state=cfg.random_state
    )
    return k, k_scores


def _sub_interest_table(
    local: Dataset, rows: np.ndarray, model: Any, cfg: DiscoveryConfig
) -> pd.DataFrame:
    """Each segment's sub-interests by the local engine's own code
    (:func:`usergroups.pipeline._sub_interests`) on the profile sample ``local``, whose
    users are the model's ``rows``: keywords and top items from the sample, as the
    segments' keywords; stability, sizes and shares over every user. With everyone in the
    sample (up to ``profile_sample`` users) the table is the local engine's for the same
    segments and fine groups."""
    from usergroups.pipeline import _sub_interests

    fine = model.state_.fine
    table = _sub_interests(local, model.labels_[rows], fine, cfg, model.item_names_, rows=rows)
    if fine is None or not len(table):
        return table
    segments, subs = model.labels_, fine.sub_interests()
    sizes = np.array(
        [
            int(((segments == g) & (subs == s)).sum())
            for g, s in zip(table["group_id"], table["sub_id"], strict=True)
        ],
        dtype=np.int64,
    )
    seg_sizes = np.bincount(segments[segments >= 0], minlength=int(table["group_id"].max()) + 1)
    table["size"] = sizes
    # the local rounding (build_sub_interests)
    table["share"] = [
        round(int(n) / max(int(seg_sizes[g]), 1), 4)
        for n, g in zip(sizes, table["group_id"], strict=True)
    ]
    return table


def _sample_text_vectors(texts_v: Any, picked: Any, dim: int) -> np.ndarray:
    """The text vectors of the ``picked`` users, in file order, as ``(n_texts, dim)``."""
    from pyspark.sql import functions as F

    tv = (
        texts_v.join(F.broadcast(picked.select("user_id")), "user_id")
        .orderBy(POS)
        .select("vector")
        .toPandas()
    )
    if not len(tv):
        return np.zeros((0, dim), dtype=np.float32)
    return _stack(tv["vector"]).astype(np.float32)


def _group_records(
    profiles: list[Any], model: Any, top: pd.DataFrame, sizes: np.ndarray, n_users: int
) -> pd.DataFrame:
    """``groups_``: the sample's profile of each group with sizes, shares and top items
    over everyone (from Spark)."""
    records = []
    for g in range(len(sizes)):
        if g < len(profiles):
            record = profiles[g].to_record()
        else:
            record = {"group_id": g, "label": f"group {g}", "keywords": []}
        mine = top[top["group_id"] == g]
        record.update(
            group_id=g,
            size=int(sizes[g]),
            share=float(sizes[g] / max(n_users, 1)),
            top_items=[str(i) for i in mine["item_id"]],
            top_item_titles=[str(t or "") for t in mine["title"]],
            # the sample's profile has its own top items: name Spark's
            top_item_terms=[
                "" if t else model.item_names_.get(str(i), "")
                for i, t in zip(mine["item_id"], mine["title"], strict=True)
            ],
            top_item_lifts=[float(v) for v in mine["lift"]],
            llm_label=None,
            llm_description=None,
        )
        records.append(record)
    if not records:
        return pd.DataFrame(columns=["group_id", "size", "share", "label"])
    return pd.DataFrame(records)

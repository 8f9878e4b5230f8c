"""Embed texts in a pandas UDF: Arrow batches in, vectors out, one encoder per worker.

The encoder is the one the local engine builds (:func:`usergroups.embedding.make_encoder`:
the model, text cleaning and the on-disk embedding cache), created lazily the first time
a Python worker process runs the UDF and kept in a module-level dict for the life of the
process (Spark reuses Python workers, ``spark.python.worker.reuse=true``). Each distinct
text is embedded once: the DataFrame of distinct texts is embedded and joined back.
With a shared cache directory (``embedding.cache_dir`` on a shared disk, or
``$USERGROUPS_CACHE``) executors and the local engine read and fill the same cache.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from usergroups.config import EmbeddingConfig

__all__ = ["embed_column", "executor_encoder", "resolve_on_driver"]

logger = logging.getLogger(__name__)

_ENCODERS: dict[str, Any] = {}
"""Encoders of this process, keyed by their configuration (one load per worker process)."""


def executor_encoder(config_json: str, random_state: int = 0) -> Any:
    """The encoder for an :class:`EmbeddingConfig` given as JSON, built once per process."""
    key = f"{config_json}|{random_state}"
    encoder = _ENCODERS.get(key)
    if encoder is None:
        from usergroups.embedding import make_encoder

        config = EmbeddingConfig.model_validate(json.loads(config_json))
        encoder = _ENCODERS[key] = make_encoder(config, random_state=random_state)
    return encoder


def resolve_on_driver(
    config: EmbeddingConfig, texts: Any, *, sample: int = 2000, seed: int = 0
) -> tuple[EmbeddingConfig, Any]:
    """Resolve ``model='auto'`` on the driver from a seeded sample of a ``text`` column.

    Executors only ever see the concrete model (they build their encoders from the
    config's JSON), so every worker embeds with the same one.

    Parameters
    ----------
    config : EmbeddingConfig
    texts : pyspark DataFrame
        With a ``text`` column.
    sample, seed : see :func:`usergroups.embedding.detect_language`
        About ``sample`` texts are collected to the driver (a Bernoulli sample, so the
        count is approximate).

    Returns
    -------
    config : EmbeddingConfig
        With the concrete model (``config`` itself when it was not ``"auto"``).
    choice : ModelChoice
    """
    from usergroups.embedding.language import AUTO_MODEL, resolve_auto_model

    if config.model.strip().lower() != AUTO_MODEL:
        return resolve_auto_model(config, [])
    column = texts.select("text").dropna()
    n = column.count()
    if n > 2 * sample:
        column = column.sample(fraction=min(1.0, 2.0 * sample / n), seed=seed)
    values = [str(row["text"]) for row in column.limit(2 * sample).collect()]
    return resolve_auto_model(config, values, sample=sample, seed=seed)


def encoder_dim(config: EmbeddingConfig, random_state: int = 0) -> int:
    """Vector length of the configured encoder (loads it on the driver once)."""
    return int(executor_encoder(config.model_dump_json(), random_state).dim)


def embed_column(
    df: Any,
    column: str,
    config: EmbeddingConfig,
    *,
    out: str = "vector",
    random_state: int = 0,
    stats: dict[str, Any] | None = None,
) -> Any:
    """``df`` with ``out``: the vector (array<float>) of each row's ``column``.

    Distinct values are embedded once in a pandas UDF and joined back. ``stats`` receives
    Spark accumulators ``hits`` and ``misses`` (distinct texts found in / added to the
    embedding cache; valid once an action has run).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    spark = df.sparkSession
    config_json = config.model_dump_json()
    hits = spark.sparkContext.accumulator(0)
    misses = spark.sparkContext.accumulator(0)
    if stats is not None:
        stats["hits"], stats["misses"] = hits, misses

    @pandas_udf("array<float>")  # type: ignore[call-overload]
    def embed(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        encoder = executor_encoder(config_json, random_state)
        for texts in batches:
            values = texts.fillna("").astype(str).tolist()
            vectors = np.asarray(encoder.encode(values), dtype=np.float32)
            hits.add(int(getattr(encoder, "last_hits", 0)))
            misses.add(int(getattr(encoder, "last_misses", len(values))))
            yield pd.Series(list(vectors))

    distinct = df.select(F.col(column).alias("_text")).distinct()
    vectors = distinct.withColumn(out, embed(F.col("_text")))
    return df.join(vectors, df[column].eqNullSafe(vectors["_text"]), "left").drop("_text")

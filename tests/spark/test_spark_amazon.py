"""The Spark engine agrees with the local engine on the Amazon Musical Instruments reviews.

The real encoder through the default embedding cache, shared by both engines (and by the
other integration tests), so the reviews are embedded once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from usergroups import GroupDiscovery
from usergroups.config import DiscoveryConfig
from usergroups.datasets import load_dataset, load_files
from usergroups.recommend import GroupPopularity

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(scope="module")
def amazon(spark: Any, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from usergroups.spark import SparkGroupDiscovery, frozen_config, read_files

    folder = data_dir / "amazon2014-musical-instruments-5core"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found: set USERGROUPS_DATA to the shared datasets directory")
    # the texts of the registered loader ("summary. reviewText"), which the other
    # integration tests embed too, so the shared embedding cache already holds them
    reviews = load_dataset("amazon2014:musical-instruments", data_dir=data_dir).texts
    path = tmp_path_factory.mktemp("mi") / "reviews.parquet"
    reviews.to_parquet(path, index=False)
    cfg = DiscoveryConfig().with_overrides(
        {
            "clustering.n_groups": 3,
            "clustering.n_init": 4,
            "user_vectors.n_components": 32,
            # the segments' popularity ranks in both engines (Spark SQL against local)
            "clustering.fine_partitions": 0,
        }
    )
    cfg = frozen_config(cfg)[0]
    local_ds = load_files(texts=path)
    data = read_files(spark, texts=path)
    local = GroupDiscovery(cfg).fit(local_ds)
    scratch = SparkGroupDiscovery(cfg, spark=spark).fit(data)
    assigned = SparkGroupDiscovery(cfg, spark=spark).fit(data, fitted=local)
    return {
        "cfg": cfg,
        "ds": local_ds,
        "data": data,
        "local": local,
        "scratch": scratch,
        "assigned": assigned,
    }


def test_amazon_spark_reads_the_reviews_like_local(amazon: dict[str, Any]) -> None:
    ds, data = amazon["ds"], amazon["data"]
    assert data.report.to_records() == ds.report.to_records()
    assert data.interactions.count() == ds.n_interactions
    assert data.texts.count() == len(ds.texts)


def test_amazon_spark_assigns_to_the_same_fitted_centroids(amazon: dict[str, Any]) -> None:
    from usergroups.spark import assign_users

    local, ds = amazon["local"], amazon["ds"]
    text_vectors = local._encode(ds.texts["text"].tolist(), False)
    expected = assign_users(local, ds, text_vectors)
    got = amazon["assigned"].model_
    assert got.user_ids_.ids.tolist() == ds.user_ids.ids.tolist()
    np.testing.assert_array_equal(got.labels_, expected)


def test_amazon_spark_clustering_agrees_with_local(amazon: dict[str, Any]) -> None:
    local, mine = amazon["local"], amazon["scratch"].model_
    assert mine.user_ids_.ids.tolist() == local.user_ids_.ids.tolist()
    np.testing.assert_allclose(mine.semantic_, local.semantic_, atol=1e-4)
    assert adjusted_rand_score(local.labels_, mine.labels_) >= 0.9


def test_amazon_spark_recommendations_match_local_for_the_same_groups(
    amazon: dict[str, Any], tmp_path: Path
) -> None:
    engine, ds = amazon["assigned"], amazon["ds"]
    path = engine.save(tmp_path / "model")
    labels = engine.model_.labels_
    x = ds.interaction_matrix()
    rec = GroupPopularity(smoothing=amazon["cfg"].recommend.smoothing).fit(x, labels)
    idx, scores = rec.recommend_groups(labels, n=amazon["cfg"].recommend.n, exclude=x)
    got = pd.read_parquet(path / "recommendations.parquet")
    want_items = [[str(ds.item_ids.ids[i]) for i in row if i >= 0] for row in idx]
    got_items = got.sort_values(["user_id", "rank"]).groupby("user_id")["item_id"].agg(list)
    for row, user in enumerate(ds.user_ids.ids.tolist()):
        assert got_items[user] == want_items[row]
    assert np.isfinite(scores).all()
    assert (
        GroupDiscovery.load(path).recommend([ds.user_ids.ids[0]], n=3)["item_id"].tolist()
        == (want_items[0][:3])
    )

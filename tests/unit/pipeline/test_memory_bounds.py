"""Memory bounded by design (issue 16): the personal model's size guard, item-kNN in a
model directory, save-time recommendations in batches, peak memory in metrics.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pipeline_configs import fixed_config

from usergroups import GroupDiscovery
from usergroups.recommend.hybrid import ItemKNN, PrunedEASE
from usergroups.testing import PlantedData, make_planted

_config = fixed_config


@pytest.fixture(scope="module")
def planted() -> PlantedData:
    return make_planted(n_users=240, n_groups=4, random_state=3)


@pytest.fixture(scope="module")
def knn_model(planted: PlantedData) -> GroupDiscovery:
    # the planted catalogue is above a limit of 10 items: the guard picks item-kNN
    return GroupDiscovery(_config(ease_max_items=10, knn_neighbors=8)).fit(planted.dataset)


def test_the_guard_switches_to_itemknn_at_the_threshold_and_says_so(
    planted: PlantedData, caplog: pytest.LogCaptureFixture
) -> None:
    n_items = planted.dataset.n_items
    with caplog.at_level(logging.WARNING, logger="usergroups.pipeline"):
        above = GroupDiscovery(_config(ease_max_items=n_items - 1)).fit(planted.dataset)
    at = GroupDiscovery(_config(ease_max_items=n_items)).fit(planted.dataset)
    assert isinstance(above.personal_, ItemKNN) and isinstance(at.personal_, PrunedEASE)
    said = [line for line in above.metrics_["fallbacks"] if line.startswith("recommend.personal")]
    assert len(said) == 1 and f"ease_max_items={n_items - 1}" in said[0]
    assert sum("item-kNN" in r.getMessage() for r in caplog.records) == 1
    assert above.metrics_["personal_model"]["model"] == "itemknn"
    assert above.metrics_["choices"]["ease_keep"]["value"] is None
    # at the limit both fit, and the validation carve chose between them (issue 24)
    chosen = at.metrics_["personal_model"]
    assert [c["model"] for c in chosen["curve"]] == ["ease", "itemknn"]
    assert "curve" not in above.metrics_["personal_model"] or [
        c["model"] for c in above.metrics_["personal_model"]["curve"]
    ] == ["itemknn"]
    assert not any(line.startswith("recommend.personal") for line in at.metrics_["fallbacks"])


def test_an_itemknn_model_directory_round_trips(knn_model: GroupDiscovery, tmp_path: Path) -> None:
    directory = knn_model.save(tmp_path / "knn")
    with np.load(directory / "arrays.npz", allow_pickle=False) as npz:
        assert "knn_data" in npz.files and "ease_data" not in npz.files
    loaded = GroupDiscovery.load(directory)
    assert isinstance(loaded.personal_, ItemKNN)
    users = knn_model.user_ids_.ids[:9].tolist()
    np.testing.assert_array_equal(loaded.user_scores(users), knn_model.user_scores(users))
    texts = ["words about one thing", "other words"]
    np.testing.assert_allclose(loaded.text_scores(texts), knn_model.text_scores(texts), atol=1e-6)


def test_save_time_batches_give_the_one_call_recommendations(
    knn_model: GroupDiscovery, tmp_path: Path
) -> None:
    one_call = knn_model.recommend(knn_model.user_ids_.ids.tolist(), n=10)
    for batch_size in (None, 1, 50):
        pd.testing.assert_frame_equal(knn_model.recommend_all(10, batch_size=batch_size), one_call)
    saved = pd.read_parquet(knn_model.save(tmp_path / "m") / "recommendations.parquet")
    pd.testing.assert_frame_equal(saved, one_call)


def test_recommendations_written_in_parts_are_the_one_call_rows_issue_25(
    knn_model: GroupDiscovery, tmp_path: Path
) -> None:
    """Issue 25: the model directory writes every user's top 10 a part of users at a
    time, as Arrow columns; parts of any size give the same table."""
    from usergroups.persistence.model_dir import _write_recommendations

    one_call = knn_model.recommend_all(10)
    items = pd.read_parquet(knn_model.save(tmp_path / "m") / "items.parquet")
    for part_users in (1, 7, 10_000):
        path = tmp_path / f"recs-{part_users}.parquet"
        _write_recommendations(knn_model, items, path, 10, part_users=part_users)
        pd.testing.assert_frame_equal(pd.read_parquet(path), one_call)


def test_older_model_directories_without_item_knn_still_load(
    planted: PlantedData, tmp_path: Path
) -> None:
    # a model saved before item-kNN: EASE arrays, no personal_model in metrics.json
    model = GroupDiscovery(_config()).fit(planted.dataset)
    directory = model.save(tmp_path / "old")
    metrics = json.loads((directory / "metrics.json").read_text())
    del metrics["personal_model"], metrics["memory"]
    (directory / "metrics.json").write_text(json.dumps(metrics))
    (directory / "manifest.json").unlink()  # older versions wrote no manifest
    loaded = GroupDiscovery.load(directory)
    assert isinstance(loaded.personal_, PrunedEASE)
    users = model.user_ids_.ids[:5].tolist()
    np.testing.assert_array_equal(loaded.user_scores(users), model.user_scores(users))


def test_peak_memory_appears_in_metrics_json(knn_model: GroupDiscovery, tmp_path: Path) -> None:
    metrics = json.loads((knn_model.save(tmp_path / "m") / "metrics.json").read_text())
    peak = metrics["memory"]["peak_rss_mb"]
    assert isinstance(peak, float) and peak > 0

"""The engine-independent steps of the Spark engine (no Spark needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from usergroups.clustering import postprocess_groups
from usergroups.errors import ConfigError


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(("min_size", "threshold"), [(1, None), (5, 0.98), (12, 0.9), (40, 0.5)])
def test_postprocess_from_summaries_equals_postprocess_groups(
    seed: int, min_size: int, threshold: float | None
) -> None:
    from usergroups.spark import postprocess_summary

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, 5))
    centres[1] = centres[0] + 0.01  # a near-duplicate pair to merge
    labels = rng.choice(6, size=150, p=[0.3, 0.25, 0.2, 0.15, 0.07, 0.03])
    X = (centres[labels] + 0.3 * rng.normal(size=(150, 5))).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    expected = postprocess_groups(X, labels, min_group_size=min_size, merge_threshold=threshold)
    sums = np.zeros((6, 5))
    np.add.at(sums, labels, X.astype(np.float64))
    counts = np.bincount(labels, minlength=6)
    label_map, merged, folded = postprocess_summary(
        sums, counts, min_group_size=min_size, merge_threshold=threshold
    )
    np.testing.assert_array_equal(np.array([label_map[g] for g in labels]), expected.labels)
    assert merged == expected.merged
    assert folded == expected.folded


def test_parse_conf_accepts_only_spark_settings() -> None:
    from usergroups.spark import parse_conf

    assert parse_conf(["spark.executor.memory=8g"]) == {"spark.executor.memory": "8g"}
    with pytest.raises(ConfigError, match="not a Spark setting"):
        parse_conf(["clustering.k_max=3"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_conf(["spark.executor.memory"])


def test_frozen_config_names_what_it_changes() -> None:
    from usergroups.config import DiscoveryConfig
    from usergroups.spark import frozen_config

    cfg, changed = frozen_config(DiscoveryConfig())
    assert not isinstance(cfg.user_vectors.text_weight, str)
    assert frozen_config(cfg)[1] == []
    assert all("=" in c for c in changed)


def test_discover_refuses_spark_options_without_the_spark_engine(tmp_path: Path) -> None:
    from usergroups.cli.main import main

    code = main(
        ["discover", "--dataset", "ml-100k", "--out", str(tmp_path / "m"), "--fit-sample", "10"]
    )
    assert code == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_issue_25_partition_top_n_equals_dense_group_ranking(seed: int) -> None:
    """Issue 25: the per-partition candidate generation gives every user the lists and
    scores of the dense ranking (all items scored, seen ones excluded); users with no
    interaction (``seen`` null) and noise users (-1, global popularity) included."""
    import pandas as pd
    import scipy.sparse as sp

    from usergroups.recommend import GroupPopularity
    from usergroups.spark.engine import _top_n_partition

    rng = np.random.default_rng(seed)
    n_users, n_items, n = 300, 60, 7
    labels = rng.integers(-1, 4, size=n_users)
    dense = (rng.random((n_users, n_items)) < 0.2).astype(np.float32)
    dense[rng.choice(n_users, 5, replace=False)] = 0.0  # users who saw nothing
    dense[0, : n_items - 3] = 1.0  # a user who saw nearly everything
    x = sp.csr_matrix(dense)
    rec = GroupPopularity(smoothing=5.0).fit(x, labels)
    want_idx, want_scores = rec.recommend_groups(labels, n=n, exclude=x)
    frame = pd.DataFrame(
        {
            "uidx": np.arange(n_users),
            "group_id": labels,
            "seen": [
                x.indices[x.indptr[u] : x.indptr[u + 1]].tolist() or None for u in range(n_users)
            ],
        }
    )
    got = _top_n_partition(frame, rec, n_items, n)
    for u in range(n_users):
        mine = got[got["uidx"] == u].sort_values("rank")
        keep = want_idx[u] >= 0
        assert mine["iidx"].tolist() == want_idx[u][keep].tolist()
        np.testing.assert_array_equal(mine["score"].to_numpy(), want_scores[u][keep])
        assert (mine["group_id"] == labels[u]).all()


def test_spark_read_files_names_an_unknown_option() -> None:
    from usergroups.spark import read_files

    with pytest.raises(TypeError, match=r"unknown option\(s\) \['mappings'\]"):
        read_files(None, interactions="x.csv", mappings="user_id=u")  # type: ignore[call-arg]

"""The Spark engine agrees with the local engine (issue 7), in local[2] mode.

Planted groups with the hashing encoder here; the Amazon Musical Instruments reviews with
the real encoder in ``test_spark_amazon.py``.
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
from usergroups.datasets import load_files
from usergroups.errors import DataError
from usergroups.pipeline import _item_documents
from usergroups.recommend import GroupPopularity
from usergroups.testing import make_planted

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _config(tmp: Path, **overrides: Any) -> DiscoveryConfig:
    from usergroups.spark import frozen_config

    base = {
        "embedding.model": "hashing:64",
        "embedding.cache_dir": str(tmp / "cache"),
        "clustering.n_groups": 4,
        "clustering.n_init": 2,
        "user_vectors.n_components": 8,
        # the segments' popularity ranks, computed in Spark SQL (fine groups: see below)
        "clustering.fine_partitions": 0,
        **overrides,
    }
    return frozen_config(DiscoveryConfig().with_overrides(base))[0]


@pytest.fixture(scope="module")
def planted() -> Any:
    return make_planted(n_users=240, n_groups=4, random_state=0)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spark")


@pytest.fixture(scope="module")
def fitted(spark: Any, planted: Any, workdir: Path) -> dict[str, Any]:
    """Local and Spark fits from scratch, and Spark assignment to the local centroids."""
    from usergroups.spark import SparkGroupDiscovery, from_dataset

    cfg = _config(workdir)
    ds = planted.dataset
    local = GroupDiscovery(cfg).fit(ds)
    data = from_dataset(spark, ds)
    scratch = SparkGroupDiscovery(cfg, spark=spark).fit(data)
    assigned = SparkGroupDiscovery(cfg, spark=spark).fit(data, fitted=local)
    path = scratch.save(workdir / "model")
    return {"cfg": cfg, "local": local, "scratch": scratch, "assigned": assigned, "path": path}


def test_spark_assigns_every_user_to_the_same_fitted_centroid(
    fitted: dict[str, Any], planted: Any
) -> None:
    from usergroups.spark import assign_users

    local = fitted["local"]
    ds = planted.dataset
    text_vectors = local._encode(ds.texts["text"].tolist(), False)
    item_vectors = local._encode(_item_documents(ds), False)
    expected = assign_users(local, ds, text_vectors, item_vectors)
    got = fitted["assigned"].model_
    assert got.user_ids_.ids.tolist() == ds.user_ids.ids.tolist()
    np.testing.assert_array_equal(got.labels_, expected)


def test_spark_metrics_count_the_cpu_of_the_jvm_and_its_workers(fitted: dict[str, Any]) -> None:
    """The JVM runs the driver and executors in local mode, as a child process that
    ``getrusage`` of the driver does not see: its CPU seconds are recorded beside the
    Python driver's (issue 25)."""
    cpu = fitted["scratch"].metrics_["cpu_seconds"]
    assert set(cpu) == {"python_driver", "jvm", "python_workers", "total"}
    assert cpu["jvm"] > 0 and cpu["python_driver"] > 0
    assert cpu["total"] == pytest.approx(
        cpu["python_driver"] + cpu["jvm"] + cpu["python_workers"], abs=0.02
    )
    # the fit's Spark jobs (k-means, SQL) run in the JVM, its pandas UDFs in the workers
    assert cpu["jvm"] > 1.0 and cpu["python_workers"] > 0


def test_spark_clustering_from_scratch_agrees_with_local(fitted: dict[str, Any]) -> None:
    local, spark_model = fitted["local"], fitted["scratch"].model_
    assert spark_model.user_ids_.ids.tolist() == local.user_ids_.ids.tolist()
    assert adjusted_rand_score(local.labels_, spark_model.labels_) >= 0.9
    np.testing.assert_allclose(spark_model.semantic_, local.semantic_, atol=1e-5)


def test_spark_recommendations_match_local_for_the_same_groups(
    fitted: dict[str, Any], planted: Any
) -> None:
    model = fitted["scratch"].model_
    ds = planted.dataset
    x = ds.interaction_matrix()
    rec = GroupPopularity(smoothing=fitted["cfg"].recommend.smoothing).fit(x, model.labels_)
    idx, scores = rec.recommend_groups(model.labels_, n=fitted["cfg"].recommend.n, exclude=x)
    got = pd.read_parquet(fitted["path"] / "recommendations.parquet")
    for row, user in enumerate(ds.user_ids.ids.tolist()):
        mine = got[got["user_id"] == user].sort_values("rank")
        want = [str(ds.item_ids.ids[i]) for i in idx[row] if i >= 0]
        assert mine["item_id"].tolist() == want
        np.testing.assert_array_equal(
            mine["score"].to_numpy(np.float32), scores[row][idx[row] >= 0].astype(np.float32)
        )


def test_spark_model_directory_is_read_by_the_cli(fitted: dict[str, Any]) -> None:
    from usergroups.cli.main import main

    path = str(fitted["path"])
    model = GroupDiscovery.load(path)
    assert model.n_groups_ == fitted["scratch"].model_.n_groups_
    assert main(["groups", path, "--format", "json"]) == 0
    assert main(["recommend", path, "--user", "u1", "-n", "3"]) == 0
    assert main(["assign", path, "--text", "guitar strings and a capo", "-n", "3"]) == 0
    parts = pd.read_parquet(Path(path) / "spark" / "assignments")
    assert len(parts) == model.labels_.size
    assert set(parts["group_id"].astype(int)) == set(model.labels_.tolist())


def test_spark_group_profiles_cover_every_user(fitted: dict[str, Any]) -> None:
    model, local = fitted["scratch"].model_, fitted["local"]
    groups = model.groups_
    assert groups["size"].sum() == model.labels_.size
    assert all(isinstance(k, list) and k for k in groups["keywords"])
    # the same groups give the same over-consumed items as the local profiler
    by_members = {frozenset(np.flatnonzero(model.labels_ == g)): g for g in groups["group_id"]}
    for g in local.groups_["group_id"]:
        members = frozenset(np.flatnonzero(local.labels_ == g))
        if members in by_members:
            mine = groups.set_index("group_id").loc[by_members[members], "top_items"]
            assert list(mine) == list(local.groups_.set_index("group_id").loc[g, "top_items"])


# ------------------------------------------------------------------------- reading


def _write(tmp: Path, name: str, df: pd.DataFrame) -> Path:
    path = tmp / name
    if name.endswith(".parquet"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def test_spark_reading_counts_what_it_drops_like_local(spark: Any, tmp_path: Path) -> None:
    from usergroups.spark import read_files

    inter = pd.DataFrame(
        {
            "uid": ["a", "a", "b", "", "c", "b"],
            "iid": ["x", "x", "y", "z", "x", "y"],
            "stars": ["1", "2", "3", "4", "5", ""],
            "when": [1, 5, 2, 3, 4, 2],
        }
    )
    texts = pd.DataFrame(
        {
            "uid": ["a", "a", "d", "b", " "],
            "iid": ["x", "x", "x", "y", "y"],
            "body": ["nice", "nice", "lonely", "   ", "who"],
        }
    )
    ip = _write(tmp_path, "inter.csv", inter)
    tp = _write(tmp_path, "texts.parquet", texts)
    mapping = "user_id=uid,item_id=iid,rating=stars,timestamp=when,text=body"
    local = load_files(interactions=ip, texts=tp, mapping=mapping)
    sds = read_files(spark, interactions=ip, texts=tp, mapping=mapping)
    assert sds.report.to_records() == local.report.to_records()
    got = sds.interactions.toPandas().sort_values(["user_id", "item_id"])
    want = local.interactions.sort_values(["user_id", "item_id"])
    assert got["user_id"].tolist() == want["user_id"].tolist()
    np.testing.assert_array_equal(got["rating"].to_numpy(), want["rating"].to_numpy())
    assert sds.texts.count() == len(local.texts)


def _same_error(spark: Any, **kwargs: Any) -> str:
    from usergroups.spark import read_files

    with pytest.raises(DataError) as local_err:
        load_files(**kwargs)
    with pytest.raises(DataError) as spark_err:
        read_files(spark, **kwargs)
    assert str(spark_err.value) == str(local_err.value)
    return str(spark_err.value)


@pytest.mark.parametrize("policy", ["keep", "drop", "error"])
def test_spark_orphan_texts_follow_the_local_rule(spark: Any, tmp_path: Path, policy: str) -> None:
    """Issue 21: one orphan-text rule (``orphan_texts_dropped``) for both readers."""
    from usergroups.spark import read_files

    inter = _write(tmp_path, "i.csv", pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]}))
    texts = _write(
        tmp_path,
        "t.csv",
        pd.DataFrame({"user_id": ["a", "ghost", "ghost"], "text": ["fine", "boo", "hoo"]}),
    )
    kwargs: dict[str, Any] = {"interactions": inter, "texts": texts, "orphan_texts": policy}
    if policy == "error":
        assert "'ghost'" in _same_error(spark, **kwargs)
        return
    local = load_files(**kwargs)
    sds = read_files(spark, **kwargs)
    assert sds.report.to_records() == local.report.to_records()
    assert sds.texts.count() == len(local.texts) == (3 if policy == "keep" else 1)


def test_spark_missing_column_error_is_the_local_one(spark: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, "i.csv", pd.DataFrame({"user": ["a"], "item_id": ["x"]}))
    assert "user_id" in _same_error(spark, interactions=path)
    pq = _write(tmp_path, "i.parquet", pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}))
    assert "stars" in _same_error(spark, interactions=pq, mapping="rating=stars")


def test_spark_bad_rating_error_is_the_local_one(spark: Any, tmp_path: Path) -> None:
    df = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["x", "y", "z"]})
    df["rating"] = ["4", "five", "3"]
    message = _same_error(spark, interactions=_write(tmp_path, "r.csv", df))
    assert "'five'" in message and "data row 2" in message


def test_spark_empty_input_errors_are_the_local_ones(spark: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "0 bytes" in _same_error(spark, interactions=empty)
    header = tmp_path / "header.csv"
    header.write_text("user_id,item_id\n")
    assert "no rows" in _same_error(spark, interactions=header)
    blank = _write(tmp_path, "blank.csv", pd.DataFrame({"user_id": [" "], "item_id": ["x"]}))
    assert "the dataset is empty" in _same_error(spark, interactions=blank)


@pytest.mark.parametrize("engine", ["local", "scratch", "assigned"])
def test_every_engine_builds_a_complete_fitted_state(
    fitted: dict[str, Any], planted: Any, engine: str, tmp_path: Path
) -> None:
    """Issue 12: one state object whatever the engine; it round-trips through the model
    directory and its vectors follow from its blocks and its text weight."""
    from usergroups.fitted import CHOICE_NAMES
    from usergroups.linalg import fuse_blocks

    model = fitted[engine] if engine == "local" else fitted[engine].model_
    state = model.state_
    ds = planted.dataset
    assert state.user_ids.ids.tolist() == ds.user_ids.ids.tolist()
    assert state.item_ids.ids.tolist() == ds.item_ids.ids.tolist()
    assert set(state.choices) == set(CHOICE_NAMES)
    assert state.text_weight == fitted["cfg"].user_vectors.text_weight
    np.testing.assert_array_equal(
        state.user_vectors, fuse_blocks(state.text_block, state.behaviour, state.text_weight)
    )
    model.save(tmp_path / "m")
    loaded = GroupDiscovery.load(tmp_path / "m").state_
    np.testing.assert_array_equal(loaded.labels, state.labels)
    np.testing.assert_array_equal(loaded.user_vectors, state.user_vectors)
    assert loaded.choices == state.choices


def test_spark_assigned_to_local_centroids_has_the_local_state(fitted: dict[str, Any]) -> None:
    """Issue 12: on the same data, with the local model's centroids, the Spark engine's
    state equals the local one (vectors, weight, assignments)."""
    local, spark_state = fitted["local"].state_, fitted["assigned"].model_.state_
    assert spark_state.text_weight == local.text_weight
    np.testing.assert_allclose(spark_state.text_block, local.text_block, atol=1e-5)
    np.testing.assert_allclose(spark_state.behaviour, local.behaviour, atol=1e-4)
    np.testing.assert_allclose(spark_state.user_vectors, local.user_vectors, atol=1e-4)
    nearest = np.argmax(local.user_vectors @ local.centroids.T, axis=1)
    np.testing.assert_array_equal(spark_state.labels, nearest)


def test_spark_notes_unmapped_rating_and_time_columns_like_local(
    spark: Any, tmp_path: Path
) -> None:
    """Issue 13: a rating or time column left unmapped is noted by both engines alike."""
    from usergroups.spark import read_files

    inter = pd.DataFrame(
        {
            "uid": ["a", "a", "b", "c"],
            "iid": ["x", "y", "y", "x"],
            "overall": [5, 4, 3, 2],
            "unixReviewTime": [1, 2, 3, 4],
        }
    )
    ip = _write(tmp_path, "inter.csv", inter)
    mapping = "user_id=uid,item_id=iid"
    local = load_files(interactions=ip, mapping=mapping)
    sds = read_files(spark, interactions=ip, mapping=mapping)
    assert local.report.notes, "the local reader should note the unmapped columns"
    assert sds.report.to_records() == local.report.to_records()


def test_issue_23_spark_fits_fine_groups_and_ranks_with_them(
    spark: Any, planted: Any, tmp_path: Path
) -> None:
    from usergroups.spark import SparkGroupDiscovery, from_dataset

    cfg = _config(tmp_path, **{"clustering.fine_partitions": 3, "clustering.fine_k": 6})
    engine = SparkGroupDiscovery(cfg, spark=spark).fit(from_dataset(spark, planted.dataset))
    state = engine.model_.state_
    assert state.fine is not None and (state.fine.n_partitions, state.fine.n_fine) == (3, 6)
    path = engine.save(tmp_path / "fine")
    loaded = GroupDiscovery.load(path)
    saved = pd.read_parquet(path / "recommendations.parquet")
    again = loaded.recommend_all(n=cfg.recommend.n)
    assert saved["item_id"].tolist() == again["item_id"].tolist()
    # the group part is the fine groups' mean, not the segment's popularity
    rows = np.arange(10)
    np.testing.assert_allclose(loaded.user_group_scores(rows), state.fine.user_scores(rows))


@pytest.fixture(scope="module")
def fine_fits(spark: Any, planted: Any, workdir: Path) -> dict[str, Any]:
    """A local fit with fine groups, and Spark fits assigned to its centroids (the same
    inputs): one profiling every user, one profiling a sample of 100 of the 240."""
    from usergroups.spark import SparkGroupDiscovery, from_dataset

    cfg = _config(workdir, **{"clustering.fine_partitions": 3, "clustering.fine_k": 6})
    local = GroupDiscovery(cfg).fit(planted.dataset)
    data = from_dataset(spark, planted.dataset)
    everyone = SparkGroupDiscovery(cfg, spark=spark).fit(data, fitted=local)
    sampled = SparkGroupDiscovery(cfg, spark=spark, profile_sample=100).fit(data, fitted=local)
    return {"local": local, "everyone": everyone, "sampled": sampled}


SUB_COLUMNS = ["group_id", "sub_id", "size", "share", "stability", "unstable"]


def test_issue_23_spark_sub_interests_are_the_local_ones(fine_fits: dict[str, Any]) -> None:
    """Same segments and fine groups, everyone profiled: the Spark engine's sub-interests
    are the local engine's, row for row (keywords, labels and top items included)."""
    local, spark_model = fine_fits["local"], fine_fits["everyone"].model_
    np.testing.assert_array_equal(spark_model.labels_, local.labels_)
    np.testing.assert_array_equal(
        spark_model.state_.fine.sub_interests(), local.state_.fine.sub_interests()
    )
    mine, theirs = spark_model.sub_interests_, local.sub_interests_
    assert len(theirs) > 0
    columns = [*SUB_COLUMNS, "label", "keywords", "top_items", "top_item_titles"]
    assert mine[columns].to_dict("records") == theirs[columns].to_dict("records")
    assignments = spark_model.assignments_
    assert assignments["sub_interest_id"].tolist() == local.assignments_["sub_interest_id"].tolist()


def test_issue_23_spark_sub_interests_of_a_profile_sample(fine_fits: dict[str, Any]) -> None:
    """A profile sample smaller than the users: what is counted over everyone (sizes,
    shares, stability) is the local engine's; the keywords come from the sample, so they
    may differ, but every sub-interest is profiled."""
    local, spark_model = fine_fits["local"], fine_fits["sampled"].model_
    mine, theirs = spark_model.sub_interests_, local.sub_interests_
    assert mine[SUB_COLUMNS].to_dict("records") == theirs[SUB_COLUMNS].to_dict("records")
    assert all(len(k) > 0 for k in mine["keywords"])


def test_issue_23_spark_sub_interests_are_saved_and_shown(
    fine_fits: dict[str, Any], tmp_path: Path
) -> None:
    """sub_interests.parquet is in the Spark engine's model directory; ``groups --level
    all`` nests every sub-interest under its segment."""
    import json

    from click.testing import CliRunner

    from usergroups.cli.main import cli

    engine = fine_fits["everyone"]
    path = engine.save(tmp_path / "m")
    saved = pd.read_parquet(path / "sub_interests.parquet")
    assert saved[SUB_COLUMNS].to_dict("records") == (
        engine.model_.sub_interests_[SUB_COLUMNS].to_dict("records")
    )
    out = CliRunner().invoke(cli, ["groups", str(path), "--level", "all", "--format", "json"])
    assert out.exit_code == 0, out.output
    nested = json.loads(out.output)
    assert sum(len(g["sub_interests"]) for g in nested) == len(saved)

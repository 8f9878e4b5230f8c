"""The benchmark (issue 3) on planted groups with the hashing encoder: shape, sanity, docs, CLI.

The protocols live in :mod:`usergroups.evaluation.protocols`; this exercises them through
their glue to ``GroupDiscovery`` and the renderer, :mod:`usergroups.report.benchmark`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.cli.main import main
from usergroups.data import build_dataset
from usergroups.errors import ConfigError, DataError
from usergroups.evaluation.protocols import WARM_METRICS
from usergroups.report.benchmark import (
    dataset_slug,
    evaluate_discovery,
    methods_frame,
    render_markdown,
    sweep_rows,
    where_we_lose,
)
from usergroups.testing import PlantedData, make_planted

BASELINES = ("Pop", "ItemKNN", "EASE")  # ALS and BPR (implicit) are left to the benchmark


def _config(n_groups: int = 4) -> DiscoveryConfig:
    return DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing", "use_cache": False},
            "clustering": {"n_groups": n_groups},
        }
    )


@pytest.fixture(scope="module")
def planted() -> PlantedData:
    return make_planted(n_users=200, n_groups=4, random_state=0)


@pytest.fixture(scope="module")
def result(planted: PlantedData) -> dict[str, Any]:
    return evaluate_discovery(
        planted.dataset,
        _config(),
        baselines=BASELINES,
        stability_seeds=2,
        k_sweep=(2, 4),
        min_test_users=10,
    )


def _metric_values(methods: dict[str, dict[str, float]]) -> list[float]:
    return [v for metrics in methods.values() for v in metrics.values()]


@pytest.mark.slow
def test_result_has_the_documented_json_shape(result: dict[str, Any]) -> None:
    assert result["dataset"] == "planted-4"
    assert result["protocol"] == "warm"
    assert (result["n_users"], result["n_items"]) == (200, 120)
    assert set(result["methods"]) == {*BASELINES, "SeedRecipe", "UserGroups", "Hybrid"}
    align = result["alignment"]
    assert align["method"] == "head" and align["validation_users"]["warm_users"] > 0
    assert 0.0 <= align["personal_weight"] <= 1.0 and align["cold_weight"] is not None
    for metrics in result["methods"].values():
        assert {"HR@10", "NDCG@10", "Recall@20", "MAP@10"} <= set(metrics)
        assert set(metrics) <= set(WARM_METRICS)
    groups = result["groups"]
    assert groups["method"] == "usergroups"
    for key in ("n_groups", "group_lift", "silhouette", "stability_ari", "noise_share"):
        assert key in groups
    assert groups["n_groups"] == 4
    cold = result["cold"]
    assert cold["n_users"] == 40  # 20 % of the 200 eligible users
    assert set(cold["methods"]) == {"Pop", "SeedRecipe", "UserGroups"}
    assert {"NDCG@10", "Recall@20"} <= set(cold["methods"]["Pop"])
    assert {"embedding", "fit", "evaluate"} <= set(result["seconds"])
    assert [s["k"] for s in result["k_sweep"]] == [2, 4]
    json.dumps(result, allow_nan=False)  # plain JSON, undefined values as null


@pytest.mark.slow
def test_every_metric_lies_in_the_unit_interval(result: dict[str, Any]) -> None:
    values = _metric_values(result["methods"]) + _metric_values(result["cold"]["methods"])
    values += [s[f"{m}_NDCG@10"] for s in result["k_sweep"] for m in ("UserGroups", "SeedRecipe")]
    assert values and all(0.0 <= v <= 1.0 for v in values)
    g = result["groups"]
    assert 0.0 <= g["noise_share"] <= 1.0
    # planted groups are separated: a positive silhouette (a bound of [-1, 1] could not fail)
    assert 0.0 < g["silhouette"] <= 1.0


@pytest.mark.slow
def test_planted_groups_explain_behaviour(result: dict[str, Any]) -> None:
    assert result["groups"]["group_lift"] > 1.5
    assert result["groups"]["stability_ari"] > 0.9


@pytest.mark.slow
def test_usergroups_beats_popularity_warm_and_cold(result: dict[str, Any]) -> None:
    warm, cold = result["methods"], result["cold"]["methods"]
    assert warm["UserGroups"]["NDCG@10"] > warm["Pop"]["NDCG@10"]
    assert cold["UserGroups"]["NDCG@10"] > cold["Pop"]["NDCG@10"]


def test_cold_is_skipped_with_a_reason_without_texts(planted: PlantedData) -> None:
    no_texts = build_dataset(planted.dataset.interactions, name="no-texts")
    out = evaluate_discovery(no_texts, _config(), protocols=("cold",), min_test_users=10)
    assert out["protocol"] == "cold"
    assert "no user texts" in out["cold"]["skipped"]
    assert "methods" not in out


def test_too_few_warm_test_users_is_a_data_error(planted: PlantedData) -> None:
    with pytest.raises(DataError, match="min_test_users"):
        evaluate_discovery(planted.dataset, _config(), protocols=("warm",), min_test_users=10_000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"protocols": ("hot",)}, "warm"), ({"baselines": ("SVD",)}, "EASE")],
)
def test_bad_arguments_name_the_good_ones(
    planted: PlantedData, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        evaluate_discovery(planted.dataset, _config(), **kwargs)


@pytest.mark.slow
def test_methods_frame_gives_ratios_to_popularity(result: dict[str, Any]) -> None:
    frame = methods_frame(result, "warm").set_index("method")
    assert frame.loc["Pop", "NDCG@10 ÷ Pop"] == pytest.approx(1.0)
    ours = frame.loc["UserGroups"]
    assert ours["NDCG@10 ÷ Pop"] == pytest.approx(ours["NDCG@10"] / frame.loc["Pop", "NDCG@10"])
    assert methods_frame({"dataset": "x"}, "cold").empty


@pytest.mark.slow
def test_docs_renderer_tables_every_method(result: dict[str, Any]) -> None:
    skipped = {"dataset": "douban-small", "skipped": "too few users"}
    text = render_markdown(
        [result, skipped],
        machine="test CPU",
        date="today",
        wall_seconds=90.0,
        plots={"planted-4": "../bench/results/planted-4.png"},
    )
    assert "| method | HR@10 | NDCG@10 | Recall@20 | MAP@10 |" in text
    for name in (*BASELINES, "SeedRecipe", "UserGroups"):
        assert f"| {name} |" in text or f"| **{name}** |" in text
    assert "## Where we lose" in text
    assert "Not run: too few users" in text
    assert "![group lift and NDCG@10" in text and "planted-4.png" in text
    assert "| K asked | K kept | UserGroups NDCG@10 | UserGroups lift |" in text
    assert "1.5 min" in text and "test CPU" in text
    # the encoder the fit used and how reachable the held-out items were
    assert "Encoder: `" in text
    assert "Reach: the held-out item has training interactions for" in text
    sparse = {**result, "reach": {"in_training": 0.7, "cooccurs": 0.01}}
    assert "not a k-core" in render_markdown([sparse])


def test_where_we_lose_is_computed_from_the_numbers() -> None:
    def fake(name: str, ours: float, ease: float) -> dict[str, Any]:
        methods = {"Pop": {"NDCG@10": 0.02}, "EASE": {"NDCG@10": ease}}
        methods["UserGroups"] = {"NDCG@10": ours}
        return {"dataset": name, "methods": methods, "groups": {"group_lift": ours / 0.02}}

    lines = where_we_lose([fake("a", 0.03, 0.05), fake("b", 0.01, 0.04)])
    assert any("below EASE on every dataset (2)" in s and "0.0300 vs 0.0500" in s for s in lines)
    assert any("below Pop on 1 of 2 datasets" in s for s in lines)
    assert any("Group lift below 1" in s and "b 0.500" in s for s in lines)


def test_sweep_rows_rebuild_old_results_from_the_ndcg_beside_them() -> None:
    # issue 12: results written before the fix carry an unsmoothed group_lift; it is dropped
    old = {
        "methods": {"Pop": {"NDCG@10": 0.05}},
        "k_sweep": [
            {"k": 4, "n_groups": 4, "group_lift": 9.0, "NDCG@10": 0.06, "seed_recipe_NDCG@10": 0.04}
        ],
    }
    (row,) = sweep_rows(old)
    assert row["UserGroups_NDCG@10"] == 0.06 and row["Pop_NDCG@10"] == 0.05
    assert row["UserGroups_group_lift"] == pytest.approx(1.2)
    assert row["SeedRecipe_group_lift"] == pytest.approx(0.8)
    assert 9.0 not in row.values()


def test_dataset_slug_is_file_safe() -> None:
    assert dataset_slug("amazon2014:musical-instruments") == "amazon2014-musical-instruments"


@pytest.fixture(scope="module")
def files(planted: PlantedData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("files")
    ds = make_planted(n_users=150, n_groups=3, random_state=1).dataset
    ds.texts.rename(columns={"user_id": "reviewerID", "text": "reviewText"}).to_parquet(
        root / "reviews.parquet"
    )
    ds.interactions.rename(columns={"user_id": "reviewerID"}).to_csv(
        root / "ratings.csv", index=False
    )
    return root


def _cli_args(files: Path) -> list[str]:
    return [
        "-q",
        "evaluate",
        "--interactions",
        str(files / "ratings.csv"),
        "--texts",
        str(files / "reviews.parquet"),
        "--map",
        "user_id=reviewerID,text=reviewText",
        "--model",
        "hashing",
        "--set",
        "embedding.use_cache=false",
        "--baselines",
        "Pop,EASE",
        "--min-test-users",
        "10",
    ]


@pytest.mark.slow
def test_cli_evaluate_prints_the_table_and_writes_json(
    files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.json"
    args = [*_cli_args(files), "--set", "clustering.n_groups=3", "--stability-seeds", "2"]
    code = main([*args, "--k-sweep", "2,3", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for name in ("Pop", "EASE", "SeedRecipe", "UserGroups", "NDCG@10", "warm (", "cold ("):
        assert name in captured.out
    data = json.loads(out.read_text())
    assert set(data["methods"]) == {"Pop", "EASE", "SeedRecipe", "UserGroups", "Hybrid"}
    assert data["cold"]["n_users"] == 30
    assert math.isfinite(data["groups"]["group_lift"])


@pytest.mark.slow
def test_cli_evaluate_refits_a_model_directorys_config(
    files: Path, planted: PlantedData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = GroupDiscovery(_config(n_groups=3)).fit(planted.dataset).save(tmp_path / "m")
    args = [*_cli_args(files), "--config", str(model_dir), "--protocol", "warm"]
    code = main([*args, "--stability-seeds", "0", "--k-sweep", "", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "refitting the config" in captured.err
    data = json.loads(captured.out)
    assert data["groups"]["n_groups"] == 3 and data["groups"]["stability_ari"] is None
    assert "cold" not in data


def test_cli_evaluate_reports_bad_input_as_usage_error(files: Path) -> None:
    assert main(["-q", "evaluate"]) == 2
    assert main([*_cli_args(files), "--k-sweep", "two"]) == 2


def test_issue_24_docs_show_intervals_and_the_personal_choices(result: dict[str, Any]) -> None:
    text = render_markdown([result])
    for name in ("Pop", "EASE", "Hybrid"):
        iv = result["intervals"][name]["NDCG@10"]
        cell = f"{result['methods'][name]['NDCG@10']:.4f} ({iv['low']:.3f}–{iv['high']:.3f})"
        assert cell in text  # in the summary and in the dataset's table
    assert "| personal model | group part |" in text
    chosen = result["alignment"]["choices"]["personal_model"]["value"]
    assert chosen in ("ease", "itemknn")
    assert "On the fit's validation carve the same share is" in text
    # "÷ Pop" carries its paired interval, warm and cold
    sections = [(result, "Hybrid")] + ([(result["cold"], "UserGroups")] if "cold" in result else [])
    for section, name in sections:
        ratio = section["intervals"][name]["NDCG@10 ÷ Pop"]
        assert f"{ratio['value']:.2f}× ({ratio['low']:.2f}–{ratio['high']:.2f})" in text
    # each group predictor's lift over the whole ranking, beside its NDCG@10 lift
    whole = result["groups"]["lift"]["segments"]["full_ranking"]
    assert "whole-ranking lift (95 %)" in text
    assert f"| {whole['value']:.2f} ({whole['low']:.2f}–{whole['high']:.2f}) |" in text
    # where we lose says which ratios to Pop are real (paired interval excludes 1)
    ratio = result["intervals"]["Hybrid"]["NDCG@10 ÷ Pop"]
    verdict = "real" if ratio["low"] > 1 or ratio["high"] < 1 else "noise"
    assert f"({ratio['low']:.2f}–{ratio['high']:.2f}) {verdict}" in text
    # results written before intervals existed render bare values
    old = {k: v for k, v in result.items() if k != "intervals"}
    assert f"{result['methods']['Pop']['NDCG@10']:.4f} |" in render_markdown([old])

"""bench/versions.py: two source trees scored on the same users, paired."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def versions(bench_script: Callable[[str], ModuleType]) -> ModuleType:
    return bench_script("versions")


def test_a_tree_against_itself_changes_nothing_and_says_noise(
    versions: ModuleType, tmp_path: Path, data_dir: Path
) -> None:
    out = tmp_path / "versions.json"
    code = versions.main(
        [
            "--compare",
            f"a={SRC},b={SRC}",
            "--datasets",
            "ml-100k",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    (result,) = data["results"]
    warm = result["warm"]
    assert "cold" not in result  # MovieLens has no texts: no new user known by a review
    a, b = warm["trees"]["a"], warm["trees"]["b"]
    # the same code on the same users: identical answers, so the paired ratio is exactly 1
    assert a == b and warm["b ÷ a"] == {
        "value": 1.0,
        "low": 1.0,
        "high": 1.0,
        "verdict": "identical",
    }
    assert warm["n_test_users"] == 943 and 0 < warm["Pop"] < a["NDCG@10"]
    assert a["÷ Pop"]["low"] <= a["÷ Pop"]["value"] <= a["÷ Pop"]["high"]
    text = versions.render_markdown(data)
    assert "| ml-100k | warm | 943 |" in text and "1.000 (1.000–1.000) | identical |" in text


def test_compare_needs_two_src_trees(versions: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        versions.main(["--compare", f"a={SRC}"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        versions.main(["--compare", f"a={SRC},b={tmp_path}"])
    with pytest.raises(SystemExit):
        versions.main(["--compare", "a"])


def test_verdict_is_real_only_when_the_interval_excludes_one(versions: ModuleType) -> None:
    assert versions._verdict({"value": 1.2, "low": 1.01, "high": 1.4}) == "real"
    assert versions._verdict({"value": 0.8, "low": 0.7, "high": 0.95}) == "real"
    assert versions._verdict({"value": 1.2, "low": 0.9, "high": 1.4}) == "noise"
    assert versions._verdict({"value": 1.0, "low": float("nan"), "high": 1.0}) == "undefined"
    assert versions._verdict({"value": 1.0, "low": 1.0, "high": 1.0}) == "identical"


def test_a_protocol_with_too_few_test_users_is_not_compared(versions: ModuleType) -> None:
    tree = {"NDCG@10": 0.5, "÷ Pop": {"value": 1.1, "low": 0.9, "high": 1.3}}
    section = {"n_test_users": 10, "Pop": 0.45, "trees": {"a": tree, "b": tree}}
    section["b ÷ a"] = {"value": 1.0, "low": 1.0, "high": 1.0}
    data = {
        "command": "c",
        "trees": {"a": "x", "b": "y"},
        "date": "d",
        "machine": "m",
        "results": [{"dataset": "tiny", "warm": section, "cold_skipped": "no texts"}],
    }
    text = versions.render_markdown(data)
    assert "| tiny |" not in text
    assert "tiny warm: only 10 test users (< 50)" in text and "tiny cold: no texts" in text

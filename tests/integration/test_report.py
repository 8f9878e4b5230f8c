"""Profiles and the report on the shared real datasets; the report in headless Chromium.

Issue 5: Chinese keywords on Douban are multi-character words; MovieLens 100K profiles
show age, gender and occupation against the population; the report (with a UMAP map)
renders in Chromium with no console errors and no network requests.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared_data import require_dataset
from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.datasets import load_dataset
from usergroups.report import read_map, write_pngs, write_report
from usergroups.testing.browser import find_chromium, open_page

pytestmark = pytest.mark.integration

_CJK = re.compile(r"^[\u4e00-\u9fff]{2,}$")


def _hashing(n_groups: int) -> DiscoveryConfig:
    # profiles do not depend on the encoder; the cheap one keeps these tests quick
    return DiscoveryConfig.model_validate(
        {"embedding": {"model": "hashing"}, "clustering": {"n_groups": n_groups}}
    )


@pytest.fixture(scope="module")
def ml100k_model(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_dataset(data_dir, "ml-100k")
    ds = load_dataset("ml-100k", data_dir=data_dir)
    out = tmp_path_factory.mktemp("ml") / "model"
    GroupDiscovery(_hashing(6)).fit(ds).save(out)
    return out


def test_douban_keywords_are_chinese_multi_character_words(data_dir: Path) -> None:
    require_dataset(data_dir, "douban-moviedata-small")
    ds = load_dataset("douban-small", data_dir=data_dir)
    gd = GroupDiscovery(_hashing(4)).fit(ds)
    for row in gd.groups_.to_dict("records"):
        assert len(row["keywords"]) >= 5, row["keywords"]
        assert all(_CJK.match(w) for w in row["keywords"]), row["keywords"]
        assert row["representative_texts"], row
        assert all(re.search(r"[\u4e00-\u9fff]", t) for t in row["representative_texts"])
        assert row["rating_mean"] is not None and 1 <= row["rating_mean"] <= 5
        assert row["label"].split(" / ")[0] == row["keywords"][0]


def test_ml100k_profiles_show_attributes_against_the_population(ml100k_model: Path) -> None:
    groups = GroupDiscovery.load(ml100k_model).groups_
    seen: set[str] = set()
    for row in groups.to_dict("records"):
        assert row["top_categories"], row["label"]  # genres
        assert row["attributes"], row["label"]
        for a in row["attributes"]:
            seen.add(a["attribute"])
            assert 0 < a["population_share"] < a["share"] <= 1
        assert 1 <= row["rating_mean"] <= 5
        assert row["population_rating_mean"] == pytest.approx(3.5299, abs=1e-3)
    assert {"age band", "gender", "occupation"} <= seen


def test_report_with_umap_renders_in_headless_chromium(ml100k_model: Path, tmp_path: Path) -> None:
    report = write_report(ml100k_model, map_method="umap")
    stored = read_map(ml100k_model)
    assert stored is not None and stored[1] == "umap" and len(stored[0]) == 943
    # no K curve: the number of groups was fixed
    assert [p.name for p in write_pngs(ml100k_model, tmp_path / "png")] == ["map.png", "sizes.png"]
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it")
    shot = tmp_path / "report.png"
    check = open_page(report, screenshot=shot, width=1280, height=2000)
    assert check.errors == []
    assert check.external_requests == []
    assert check.requests and all(u.startswith(("file:", "data:")) for u in check.requests)
    assert check.plots >= 2  # map and sizes (plus the K curve when there is one)
    assert check.title.startswith("User groups of ml-100k")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_the_browser_check_sees_errors_and_requests(tmp_path: Path) -> None:
    # the report test's "no errors, no requests" means something only if this fails loudly
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it")
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>bad</title></head><body>"
        '<img src="http://127.0.0.1:9/x.png"><script>console.error("boom");</script>'
        "</body></html>"
    )
    check = open_page(page)
    assert any("boom" in e for e in check.errors)
    assert check.external_requests == ["http://127.0.0.1:9/x.png"]

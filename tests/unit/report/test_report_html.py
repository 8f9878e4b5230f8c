"""The HTML report, its map and its PNGs on planted groups (issue 5); PCA maps only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.cli.main import main
from usergroups.errors import ConfigError, ModelDirectoryError
from usergroups.report import (
    MAP_FILE,
    ensure_map,
    project_2d,
    read_map,
    render_html,
    write_pngs,
    write_report,
)
from usergroups.report import projection as projection_module
from usergroups.testing import make_planted

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fitted() -> GroupDiscovery:
    planted = make_planted(n_users=160, n_groups=4, random_state=5)
    # no alignment: it is most of the time of a fit, and the report does not depend on it
    cfg = DiscoveryConfig.model_validate(
        {"embedding": {"model": "hashing"}, "clustering": {"k_max": 6}, "align": {"method": "none"}}
    )
    return GroupDiscovery(cfg).fit(planted.dataset)


@pytest.fixture()
def model_dir(fitted: GroupDiscovery, tmp_path: Path) -> Path:
    return fitted.save(tmp_path / "model")


def test_small_data_maps_with_pca() -> None:
    rng = np.random.default_rng(0)
    rows, xy, used = project_2d(rng.normal(size=(30, 8)), method="auto")
    assert used == "pca" and xy.shape == (30, 2) and xy.dtype == np.float32
    assert np.array_equal(rows, np.arange(30))


def test_large_data_is_subsampled_the_same_way_for_the_same_seed() -> None:
    x = np.random.default_rng(1).normal(size=(500, 6))
    a = project_2d(x, method="pca", max_points=100, random_state=3)
    b = project_2d(x, method="pca", max_points=100, random_state=3)
    assert len(a[0]) == 100 and np.all(np.diff(a[0]) > 0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_a_bad_map_method_lists_the_good_ones() -> None:
    with pytest.raises(ConfigError, match="'auto', 'umap', 'pca'"):
        project_2d(np.zeros((3, 2)), method="tsne")  # type: ignore[arg-type]


def test_report_is_one_self_contained_file(model_dir: Path) -> None:
    path = write_report(model_dir)
    assert path == model_dir / "report.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # plotly.js inline, once; nothing loaded from elsewhere
    assert page.count("<script") >= 3 and not re.search(r"<script[^>]*\bsrc\s*=", page)
    assert not re.search(r"""<(link|img|iframe)[^>]*\b(href|src)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page
    assert "default-src 'none'" in page
    for gid in range(4):
        assert f'id="group-{gid}"' in page
    assert "Representative texts" in page and "Choice of the number of groups" in page


def test_report_stores_the_map_and_reuses_it(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_report(model_dir)
    stored = read_map(model_dir)
    assert stored is not None
    frame, method = stored
    assert method == "pca" and len(frame) == 160
    assert list(frame.columns) == ["user_id", "group_id", "x", "y"]

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("the stored map should have been used")

    monkeypatch.setattr("usergroups.report.writer.project_2d", fail)
    write_report(model_dir, model_dir / "again.html")
    assert (model_dir / "again.html").exists()


def test_asking_for_another_map_method_recomputes_it(model_dir: Path) -> None:
    ensure_map(model_dir, method="pca")
    _, used = ensure_map(model_dir, method="pca", recompute=True)
    assert used == "pca" and (model_dir / MAP_FILE).exists()


def test_every_user_text_is_escaped(fitted: GroupDiscovery) -> None:
    groups = fitted.groups_.copy()
    evil = "<script>alert('x')</script>"
    groups["label"] = [evil] * len(groups)
    groups["keywords"] = [[evil, "<b>bold</b>"]] * len(groups)
    groups["representative_texts"] = [[f"I said {evil} & <img src=x onerror=y>"]] * len(groups)
    groups["llm_description"] = [evil] * len(groups)
    frame = pd.DataFrame({"user_id": [evil], "group_id": [0], "x": [0.0], "y": [0.0]})
    page = render_html(groups, map_frame=frame, metrics={"dataset": evil}, title=None)
    assert "<script>alert" not in page
    assert "<img src=x" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_issue_23_each_segment_card_drills_down_to_its_sub_interests(
    fitted: GroupDiscovery,
) -> None:
    groups = fitted.groups_.copy()
    evil = "<script>x</script>"
    subs = pd.DataFrame(
        {
            "group_id": [0, 0, 1],
            "sub_id": [3, 5, 1],
            "size": [12, 8, 20],
            "share": [0.6, 0.4, 1.0],
            "stability": [0.81, 0.42, None],
            "unstable": [False, True, False],
            "label": ["strings / picks", evil, "pedals"],
            "keywords": [["strings", "picks"], ["capo"], ["pedal"]],
            "top_items": [["i1"], ["i2"], ["i3"]],
            "top_item_titles": [["Strings"], [""], ["Pedal"]],
        }
    )
    page = render_html(groups, map_frame=None, sub_interests=subs)
    first, second = page.split('id="group-1"')[0], page.split('id="group-1"')[1]
    assert "Sub-interests (2)" in first and "Sub-interests (1)" in second
    assert "strings / picks" in first and "0.42" in first and "unstable" in first
    assert "<script>x" not in page  # labels are escaped like every other text


def test_llm_labels_lead_and_keyword_labels_stay_beside_them(fitted: GroupDiscovery) -> None:
    groups = fitted.groups_.copy()
    groups["llm_label"] = ["Guitarists"] + [None] * (len(groups) - 1)
    groups["llm_description"] = ["They play guitar."] + [None] * (len(groups) - 1)
    page = render_html(groups, map_frame=None)
    assert "0. Guitarists</h3>" in page
    assert f"keywords: {groups.loc[0, 'label']}" in page
    assert "They play guitar." in page


def test_evaluation_json_becomes_a_table(model_dir: Path) -> None:
    evaluation = {
        "methods": {"Pop": {"NDCG@10": 0.0438, "HR@10": 0.09}, "usergroups": {"NDCG@10": 0.05}},
        "cold": {"methods": {"Pop": {"NDCG@10": 0.01}}},
    }
    (model_dir / "evaluation.json").write_text(json.dumps(evaluation))
    page = write_report(model_dir).read_text(encoding="utf-8")
    assert "<h2>Evaluation</h2>" in page and "0.0438" in page and "cold" in page


def test_a_broken_evaluation_json_is_left_out(model_dir: Path) -> None:
    (model_dir / "evaluation.json").write_text("{not json")
    page = write_report(model_dir).read_text(encoding="utf-8")
    assert "<h2>Evaluation</h2>" not in page


def test_pngs_of_map_sizes_and_k_curve(model_dir: Path, tmp_path: Path) -> None:
    paths = write_pngs(model_dir, tmp_path / "png")
    assert [p.name for p in paths] == ["map.png", "sizes.png", "k_curve.png"]
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 5000


def test_cli_report_html_and_png(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(model_dir), "--out", str(out)]) == 0
    assert out.exists() and capsys.readouterr().out.strip() == str(out)
    assert main(["report", str(model_dir), "--format", "png"]) == 0
    assert (model_dir / "report-png" / "map.png").exists()


def test_cli_report_on_a_missing_model_is_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ModelDirectoryError):
        write_report(tmp_path / "nope")


def test_discover_writes_the_report_into_the_model_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = tmp_path / "texts.csv"
    make_planted(n_users=60, n_groups=2, random_state=0).dataset.texts.to_csv(texts, index=False)
    out = tmp_path / "m"
    args = ["--model", "hashing", "--align", "none", "--out", str(out)]
    assert main(["discover", "--texts", str(texts), *args]) == 0
    assert (out / "report.html").exists() and (out / MAP_FILE).exists()
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())
    assert f"report: {out / 'report.html'}" in capsys.readouterr().err


def test_umap_is_used_from_fifty_points_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_umap(x: np.ndarray, random_state: int | None) -> np.ndarray:
        calls.append(len(x))
        return np.zeros((len(x), 2))

    monkeypatch.setattr(projection_module, "has_umap", lambda: True)
    monkeypatch.setattr(projection_module, "_umap", fake_umap)
    x = np.random.default_rng(0).normal(size=(50, 3))
    assert project_2d(x[:49])[2] == "pca"
    assert project_2d(x)[2] == "umap" and calls == [50]

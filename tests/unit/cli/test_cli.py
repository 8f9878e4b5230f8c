"""The CLI through its entry point, on generated files and the hashing encoder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from usergroups.cli.main import main
from usergroups.testing import make_planted


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("files")
    ds = make_planted(n_users=120, n_groups=3, random_state=0).dataset
    # written with *their* column names, to exercise --map
    ds.texts.rename(
        columns={"user_id": "reviewerID", "item_id": "asin", "text": "reviewText"}
    ).to_parquet(root / "reviews.parquet")
    ds.interactions.rename(columns={"user_id": "reviewerID", "item_id": "asin"}).to_csv(
        root / "ratings.csv", index=False
    )
    return root


@pytest.fixture(scope="module")
def model_dir(files: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "m"
    code = main(
        [
            "-q",
            "discover",
            "--interactions",
            str(files / "ratings.csv"),
            "--texts",
            str(files / "reviews.parquet"),
            "--map",
            "user_id=reviewerID,item_id=asin,text=reviewText",
            "--model",
            "hashing",
            "--n-groups",
            "3",
            "--seed",
            "1",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


def test_discover_writes_model_and_prints_group_table(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (model_dir / "groups.parquet").exists()
    assert main(["groups", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "group_id" in out and "keywords" in out and "stability" in out


def test_groups_mark_unstable_groups(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from usergroups.cli.main import _group_table

    groups = pd.read_parquet(model_dir / "groups.parquet")
    groups["stability"] = [0.95, 0.41, float("nan")]
    groups["unstable"] = [False, True, False]
    out = _group_table(groups, "table")
    assert "0.95" in out and "0.41 unstable" in out
    assert json.loads(_group_table(groups, "json"))[1]["unstable"] is True


def test_groups_json_lists_every_group(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["groups", str(model_dir), "--format", "json"]) == 0
    groups = json.loads(capsys.readouterr().out)
    assert len(groups) == 3 and sum(g["size"] for g in groups) == 120


def test_groups_markdown(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["groups", str(model_dir), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| group_id |")


def test_assign_and_recommend(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["assign", str(model_dir), "--text", "guitar strings", "-n", "3", "--format", "json"])
        == 0
    )
    [row] = json.loads(capsys.readouterr().out)
    assert len(row["items"]) == 3 and 0 < row["confidence"] <= 1
    assert main(["recommend", str(model_dir), "--user", "u1", "-n", "4", "--format", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in recs] == [1, 2, 3, 4]


def test_unknown_user_is_exit_1_with_message(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recommend", str(model_dir), "--user", "ghost"]) == 1
    assert "'ghost'" in capsys.readouterr().err


def test_missing_model_dir_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["groups", str(tmp_path / "none")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_bad_mapping_column_is_exit_1(
    files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "discover",
            "--texts",
            str(files / "reviews.parquet"),
            "--map",
            "user_id=nope,item_id=asin,text=reviewText",
            "--model",
            "hashing",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 1
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_usage_errors_are_exit_2(tmp_path: Path) -> None:
    assert main(["discover", "--out", str(tmp_path / "x")]) == 2
    assert main(["no-such-command"]) == 2


@pytest.mark.parametrize("value", ["x", "", "2.5"])
def test_n_groups_that_is_not_a_number_is_one_usage_line(
    value: str, files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found while splitting discover (issue 21): ``--n-groups x`` ended in a traceback."""
    args = ["discover", "--texts", str(files / "reviews.parquet"), "--n-groups", value]
    assert main([*args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"--n-groups expects a whole number or 'auto'; got {value!r}" in err
    assert not (tmp_path / "x").exists()


def test_unknown_setting_is_exit_1(files: Path, tmp_path: Path) -> None:
    code = main(
        [
            "discover",
            "--texts",
            str(files / "reviews.parquet"),
            "--map",
            "user_id=reviewerID,item_id=asin,text=reviewText",
            "--set",
            "clustering.bogus=1",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 1


def test_config_show_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 0
    assert "[clustering]" in capsys.readouterr().out
    assert main(["config", "--write", str(tmp_path / "c.toml")]) == 0
    assert main(["config", "--config", str(tmp_path / "c.toml")]) == 0


def test_datasets_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "list"]) == 0
    assert "ml-100k" in capsys.readouterr().out


def test_console_script_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "usergroups", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "discover" in done.stdout


def test_encoding_and_bad_line_options_reach_the_loader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("user_id,item_id,text\nu1,i1,café au lait\nu2,i1,crème\n".encode("latin-1"))
    assert (
        main(
            ["discover", "--texts", str(latin), "--model", "hashing", "--out", str(tmp_path / "a")]
        )
        == 1
    )
    assert "latin-1" in capsys.readouterr().err
    assert (
        main(
            [
                "-q",
                "discover",
                "--texts",
                str(latin),
                "--model",
                "hashing",
                "--encoding",
                "latin-1",
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    bad = tmp_path / "r.jsonl"
    bad.write_text(
        '{"user_id": "u1", "item_id": "i1", "text": "guitar"}\n{oops\n'
        '{"user_id": "u2", "item_id": "i1", "text": "drums"}\n'
    )
    assert (
        main(["discover", "--texts", str(bad), "--model", "hashing", "--out", str(tmp_path / "c")])
        == 1
    )
    assert "line 2" in capsys.readouterr().err
    assert (
        main(
            [
                "discover",
                "--texts",
                str(bad),
                "--model",
                "hashing",
                "--on-bad-lines",
                "skip",
                "--out",
                str(tmp_path / "d"),
            ]
        )
        == 0
    )
    assert "1 row(s) dropped" in capsys.readouterr().err


def test_tables_leave_out_titles_when_no_item_has_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reviews = tmp_path / "r.csv"
    reviews.write_text("user_id,item_id,text\nu1,i1,guitar strings\nu2,i2,drum sticks\n")
    assert (
        main(
            [
                "-q",
                "discover",
                "--texts",
                str(reviews),
                "--model",
                "hashing",
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["recommend", str(tmp_path / "m"), "--user", "u1"]) == 0
    assert "title" not in capsys.readouterr().out
    assert main(["assign", str(tmp_path / "m"), "--text", "guitar"]) == 0
    assert "titles" not in capsys.readouterr().out
    assert main(["recommend", str(tmp_path / "m"), "--user", "u1", "--format", "json"]) == 0
    assert '"title"' in capsys.readouterr().out

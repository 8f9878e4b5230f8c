"""The command line never puts the user's files at risk (issue 13).

``--out`` is checked before any data is read or fitted: a folder that is not a model is
refused (``--force`` replaces it), and every other ``--out`` problem is one line on stderr
with exit code 1, before any input is read. ``serve`` creates nothing next to a folder that is not a
model, and a port in use is exit code 1 too.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from usergroups.cli.main import main
from usergroups.testing import make_planted

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    ds = make_planted(n_users=60, n_groups=2, random_state=0).dataset
    ds.texts.to_csv(root / "reviews.csv", index=False)
    ds.interactions.to_csv(root / "ratings.csv", index=False)
    return {"interactions": root / "ratings.csv", "texts": root / "reviews.csv"}


def _discover(inputs: dict[str, Path], out: str | Path, *extra: str) -> list[str]:
    return [
        "-q",
        "discover",
        "--interactions",
        str(inputs["interactions"]),
        "--texts",
        str(inputs["texts"]),
        "--model",
        "hashing",
        "--n-groups",
        "2",
        "--seed",
        "0",
        "--no-progress",
        "--no-report",
        "--out",
        str(out),
        *extra,
    ]


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def no_input_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tripwire: reading the data means --out was not checked first (it used to be timed)."""

    def tripwire(*args: object, **kwargs: object) -> None:
        raise AssertionError("discover read its input before checking --out")

    monkeypatch.setattr("usergroups.cli.main._load_input", tripwire)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_issue13_out_folder_holding_reviews_csv_is_refused_and_the_file_kept(
    inputs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_input_read: None,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "reviews.csv").write_bytes(inputs["texts"].read_bytes())
    assert main(_discover(inputs, data)) == 1  # refused before the data is read
    line = _one_error_line(capsys)
    assert str(data) in line and "reviews.csv" in line and "--force" in line
    assert (data / "reviews.csv").read_bytes() == inputs["texts"].read_bytes()
    assert sorted(p.name for p in data.iterdir()) == ["reviews.csv"]
    assert _leftovers(tmp_path) == []


def test_issue13_out_folder_holding_an_input_is_refused_even_with_force(
    inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = inputs["texts"].parent
    before = sorted(p.name for p in folder.iterdir())
    assert main(_discover(inputs, folder, "--force")) == 1
    assert "holds the input" in _one_error_line(capsys)
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.parametrize(
    "where",
    [
        "under-a-file",
        pytest.param(
            "proc",
            marks=pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc"),
        ),
        pytest.param(
            "read-only",
            marks=pytest.mark.skipif(IS_ROOT, reason="root writes into read-only folders"),
        ),
    ],
)
def test_issue13_unwritable_out_fails_fast_with_one_line(
    where: str,
    inputs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_input_read: None,
) -> None:
    if where == "under-a-file":
        (tmp_path / "file.txt").write_text("x")
        out = tmp_path / "file.txt" / "out"
    elif where == "proc":
        out = Path("/proc/usergroups-test/out")
    else:
        (tmp_path / "locked").mkdir(mode=0o500)
        out = tmp_path / "locked" / "out"
    try:
        assert main(_discover(inputs, out)) == 1  # before the data is read
    finally:
        if where == "read-only":
            (tmp_path / "locked").chmod(0o700)
    assert "cannot write a directory at" in _one_error_line(capsys)
    assert _leftovers(tmp_path) == []


def test_issue13_out_file_is_exit_1_not_a_usage_error(
    inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_discover(inputs, inputs["interactions"])) == 1
    assert "is a file, not a folder" in _one_error_line(capsys)


def test_issue13_out_dot_is_refused_and_leaves_no_temporary(
    inputs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(_discover(inputs, ".")) == 1
    assert "the current folder" in _one_error_line(capsys)
    assert list(here.iterdir()) == [] and _leftovers(tmp_path) == []


@pytest.mark.slow
def test_issue13_force_replaces_a_folder_of_ours_then_a_model_is_replaced_atomically(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("a report whose model is gone")  # ours, not a model
    assert main(_discover(inputs, out)) == 1
    assert "--force" in _one_error_line(capsys)
    assert main(_discover(inputs, out, "--force")) == 0
    assert (out / "versions.json").exists() and (out / "manifest.json").exists()
    (out / "report.html").write_text("the old report")
    # a model directory is ours: replaced as a whole without --force, nothing left beside it
    assert main(_discover(inputs, out)) == 0
    assert json.loads((out / "versions.json").read_text())["format_version"] == 2
    assert not (out / "report.html").exists()
    assert _leftovers(tmp_path) == []
    capsys.readouterr()


def test_issue13_refit_checks_out_before_loading_anything(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    args = ["refit", str(tmp_path / "no-model"), "--interactions", str(inputs["interactions"])]
    assert main([*args, "--out", str(other)]) == 1
    assert "--force" in _one_error_line(capsys)
    assert (other / "notes.txt").read_text() == "mine"


def test_issue13_report_out_problems_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file.txt").write_text("x")
    model = str(tmp_path / "no-model")
    assert main(["report", model, "--out", str(tmp_path / "file.txt" / "r.html")]) == 1
    assert "is a file, not a folder" in _one_error_line(capsys)
    assert main(["report", model, "--out", str(tmp_path)]) == 1
    assert "it is a folder" in _one_error_line(capsys)


# ------------------------------------------------------------------ serve
@pytest.fixture
def quiet_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve`` in this process, without its log handler taking over pytest's root logger."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    pytest.importorskip("uvicorn", reason="the serve extra is not installed")
    import usergroups.service.app as app

    monkeypatch.setattr(app, "configure_logging", lambda level: None)
    monkeypatch.delenv("USERGROUPS_EVENTS_URL", raising=False)  # the store beside the model


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.usefixtures("quiet_service")
@pytest.mark.parametrize("kind", ["missing", "not-a-model"])
def test_issue13_serve_on_a_folder_that_is_not_a_model_leaves_nothing_behind(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "runs" / "x"
    if kind == "not-a-model":
        folder.mkdir(parents=True)
        (folder / "notes.txt").write_text("mine")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    port = str(_free_port())
    assert main(["serve", str(folder), "--host", "127.0.0.1", "--port", port]) == 1
    assert str(folder) in _one_error_line(capsys)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


@pytest.mark.usefixtures("quiet_service")
def test_issue13_serve_on_a_port_in_use_is_exit_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["serve", str(tmp_path / "m"), "--host", "127.0.0.1", "--port", str(port)])
    assert code == 1
    line = _one_error_line(capsys)
    assert f"port {port}" in line and "in use" in line and "--port" in line
    assert list(tmp_path.iterdir()) == []

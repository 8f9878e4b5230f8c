"""Where a model may be written (issue 13: the user's files are never at risk).

``check_output_dir`` decides before any work; ``atomic_dir`` and ``save_model`` check too,
so a library caller is as safe as the command line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from usergroups.errors import ConfigError, ModelDirectoryError
from usergroups.persistence import (
    MODEL_ENTRIES,
    atomic_dir,
    check_file_target,
    check_output_dir,
    is_model_dir,
    save_model,
)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _model_dir(path: Path, marker: str = "old") -> Path:
    """A folder that looks like a model directory: versions.json with a format version."""
    path.mkdir(parents=True)
    (path / "versions.json").write_text(json.dumps({"format_version": 2}))
    (path / "config.json").write_text(json.dumps({"marker": marker}))
    (path / "report.html").write_text("<html></html>")
    return path


def _leftovers(folder: Path) -> list[str]:
    """Temporary or moved-aside entries an atomic write may have left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------ what is accepted
def test_missing_and_empty_folders_are_accepted(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path / "runs" / "new") == tmp_path.resolve() / "runs" / "new"
    (tmp_path / "empty").mkdir()
    assert check_output_dir(tmp_path / "empty") == tmp_path.resolve() / "empty"
    assert not (tmp_path / "runs").exists(), "the check creates nothing"


def test_a_model_directory_is_recognised_by_its_versions_file(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "m")
    assert is_model_dir(model)
    assert check_output_dir(model) == model.resolve()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "versions.json").write_text('{"something": "else"}')
    assert not is_model_dir(tmp_path / "other")
    assert not is_model_dir(tmp_path / "missing")


def test_relative_paths_are_resolved_against_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert check_output_dir("runs/x") == tmp_path.resolve() / "runs" / "x"
    assert check_output_dir("./runs/../y") == tmp_path.resolve() / "y"


# ------------------------------------------------------------------ what is refused
def test_a_folder_holding_user_files_is_refused_and_its_files_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "reviews.csv").write_text("user_id,text\nu1,great\n")
    with pytest.raises(ModelDirectoryError, match=r"data is not empty .*reviews\.csv.*--force"):
        check_output_dir(data)
    with pytest.raises(ModelDirectoryError, match="--force"):
        save_model(_NOT_USED, data)  # refused before the model is even looked at
    assert (data / "reviews.csv").read_text() == "user_id,text\nu1,great\n"
    assert _leftovers(tmp_path) == []


def test_issue22_force_refuses_a_folder_holding_a_file_we_did_not_write(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    with pytest.raises(ModelDirectoryError, match=r"it holds notes\.txt.*--force never deletes"):
        check_output_dir(data, force=True)
    assert (data / "notes.txt").read_text() == "mine"


def test_issue22_a_user_file_inside_our_report_folder_is_refused(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "m")
    (model / "report-png").mkdir()
    (model / "report-png" / "map.png").write_bytes(b"\x89PNG")
    assert check_output_dir(model) == model.resolve()
    (model / "report-png" / "my-notes.txt").write_text("keep me")
    with pytest.raises(ModelDirectoryError, match=r"also holds report-png/my-notes\.txt"):
        check_output_dir(model, force=True)


def test_force_accepts_a_folder_of_our_files_that_is_not_a_complete_model(tmp_path: Path) -> None:
    # e.g. a model whose versions.json was lost: only names usergroups writes
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "report.html").write_text("<html></html>")
    (partial / "arrays.npz").write_bytes(b"")
    with pytest.raises(ModelDirectoryError, match=r"no readable versions\.json.*--force"):
        check_output_dir(partial)
    assert check_output_dir(partial, force=True) == partial.resolve()


def test_issue22_a_model_directory_holding_other_files_is_refused_even_with_force(
    tmp_path: Path,
) -> None:
    model = _model_dir(tmp_path / "m")
    (model / "my-notes.txt").write_text("keep me")
    for force in (False, True):
        with pytest.raises(ModelDirectoryError, match=r"also holds my-notes\.txt, .*move them out"):
            check_output_dir(model, force=force)
    assert (model / "my-notes.txt").read_text() == "keep me"
    assert {"versions.json", "report.html", "refit.json", "spark", "manifest.json"} <= (
        MODEL_ENTRIES
    )


def test_a_folder_holding_an_input_file_is_refused_even_with_force(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "reviews.csv").write_text("x")
    for out in (data, tmp_path):
        with pytest.raises(ModelDirectoryError, match=r"holds the input .*reviews\.csv"):
            check_output_dir(out, force=True, keep=[data / "reviews.csv"])
    assert check_output_dir(data / "model", keep=[data / "reviews.csv"])


def test_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("x")
    with pytest.raises(ModelDirectoryError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "ratings.csv", force=True)


def test_a_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelDirectoryError, match=r"file\.txt is a file, not a folder"):
        check_output_dir(tmp_path / "file.txt" / "out")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_folder_where_nothing_can_be_created_is_refused() -> None:
    # /proc refuses new folders even to root, whatever its mode bits say
    with pytest.raises(ModelDirectoryError, match="no folder can be created in /proc"):
        check_output_dir("/proc/usergroups-test/out")


@pytest.mark.skipif(IS_ROOT, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ModelDirectoryError, match="no folder can be created"):
            check_output_dir(locked / "out")
    finally:
        locked.chmod(0o700)


def test_the_current_folder_and_its_parents_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "work"
    here.mkdir()
    monkeypatch.chdir(here)
    for out in (".", "..", str(here)):
        with pytest.raises(ModelDirectoryError, match="current"):
            check_output_dir(out, force=True)
    with pytest.raises(ModelDirectoryError, match=r"current folder"), atomic_dir("."):
        pass
    assert _leftovers(here) == [] and _leftovers(tmp_path) == []


# ------------------------------------------------------------------ atomic replacement
def test_an_existing_model_directory_is_replaced_atomically(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "m")
    with atomic_dir(model) as tmp:
        assert tmp.parent == model.parent.resolve() and tmp != model
        (tmp / "versions.json").write_text(json.dumps({"format_version": 2}))
        (tmp / "config.json").write_text(json.dumps({"marker": "new"}))
        # a reader still sees the complete old model while the new one is written
        assert json.loads((model / "config.json").read_text()) == {"marker": "old"}
    assert json.loads((model / "config.json").read_text()) == {"marker": "new"}
    assert not (model / "report.html").exists()
    assert _leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_old_model_and_leaves_no_temporary(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "m")
    with pytest.raises(RuntimeError, match="fit broke"), atomic_dir(model) as tmp:
        (tmp / "config.json").write_text("half")
        raise RuntimeError("fit broke")
    assert json.loads((model / "config.json").read_text()) == {"marker": "old"}
    assert _leftovers(tmp_path) == []


def test_atomic_dir_writes_a_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with atomic_dir("./runs/m") as tmp:
        (tmp / "a.txt").write_text("a")
    assert (tmp_path / "runs" / "m" / "a.txt").read_text() == "a"
    assert _leftovers(tmp_path / "runs") == []


# ------------------------------------------------------------------ single files
def test_a_file_target_must_not_be_a_folder_nor_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match="it is a folder"):
        check_file_target(tmp_path)
    with pytest.raises(ConfigError, match=r"file\.txt is a file"):
        check_file_target(tmp_path / "file.txt" / "report.html")
    assert check_file_target(tmp_path / "new" / "r.html") == tmp_path.resolve() / "new" / "r.html"


_NOT_USED: Any = object()
"""A stand-in model: the check refuses the folder before the model is read."""

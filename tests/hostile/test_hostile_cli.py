"""The command line refuses what would destroy or mislead (issue 22), in real subprocesses.

Before: ``--force`` deleted a ``--config`` file inside ``--out`` and a whole registered
dataset; a write-protected ``--out`` folder was found after the fit; ``assign --text ''``
placed a user by nothing; ``--map user_id=X,item_id=X`` built a degenerate model; a repeated
CSV header column was used without a word.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hostile_cli import run_cli

from usergroups.cli.main import main
from usergroups.datasets import load_files
from usergroups.errors import DataWarning, ModelDirectoryError
from usergroups.persistence import check_output_dir

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _discover(files: dict[str, Path], out: Path, *extra: str) -> list[str | Path]:
    return [
        "discover",
        "--interactions",
        files["interactions"],
        "--texts",
        files["texts"],
        "--model",
        "hashing",
        "--n-groups",
        "2",
        "--no-progress",
        "--no-report",
        "--out",
        out,
        *extra,
    ]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------ --force
def test_issue22_force_keeps_a_config_file_inside_out(
    planted_files: dict[str, Path], model_copy: Callable[[], Path]
) -> None:
    model = model_copy()
    config = model / "my-settings.toml"
    config.write_text("random_state = 3\n")
    before = _tree(model)
    done = run_cli(*_discover(planted_files, model, "--config", config, "--force"))
    assert done.code == 1
    line = done.error_line
    assert "my-settings.toml" in line, line
    assert _tree(model) == before


def test_issue22_force_refuses_a_registered_dataset_folder_and_deletes_nothing(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    folder = data / "ml-100k"
    folder.mkdir(parents=True)
    # ml-100k's files, shaped like the real ones (tab-separated ratings, |-separated items)
    (folder / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    (folder / "u.item").write_text("242|Kolya (1996)|24-Jan-1997||http://x|0|0|0\n")
    (folder / "u.user").write_text("196|49|M|writer|55105\n")
    (folder / "u.genre").write_text("unknown|0\n")
    before = _tree(data)
    done = run_cli(
        "discover",
        "--dataset",
        "ml-100k",
        "--data-dir",
        data,
        "--model",
        "hashing",
        "--no-report",
        "--out",
        folder,
        "--force",
    )
    assert done.code == 1
    line = done.error_line
    assert str(folder) in line and "u.data" in line and "not a usergroups model" in line, line
    assert _tree(data) == before


def test_issue22_force_refuses_a_model_directory_holding_a_user_file(
    planted_files: dict[str, Path], model_copy: Callable[[], Path]
) -> None:
    model = model_copy()
    (model / "notes.txt").write_text("mine")
    before = _tree(model)
    done = run_cli(*_discover(planted_files, model, "--force"))
    assert done.code == 1
    assert "notes.txt" in done.error_line
    assert _tree(model) == before


def test_issue22_a_model_may_be_refitted_from_its_own_config(
    model_copy: Callable[[], Path],
) -> None:
    # its config.json is ours and read before the model is replaced; a user file is not
    model = model_copy()
    assert check_output_dir(model, keep=[model / "config.json"]) == model.resolve()
    (model / "mine.toml").write_text("")
    with pytest.raises(ModelDirectoryError, match=r"holds the input .*mine\.toml"):
        check_output_dir(model, force=True, keep=[model / "mine.toml"])


# ------------------------------------------------------------------ write probe
@contextmanager
def _write_protected(folder: Path) -> Iterator[str]:
    """``folder`` made unwritable in a way the current user cannot ignore; yields how.

    Root ignores permission bits, not the immutable attribute (chattr +i), so root uses
    that; others use chmod. Skips when neither can protect the folder.
    """
    chattr = shutil.which("chattr")
    if chattr is not None:
        done = subprocess.run([chattr, "+i", str(folder)], capture_output=True, check=False)
        if done.returncode == 0:
            try:
                yield "immutable"
            finally:
                subprocess.run([chattr, "-i", str(folder)], check=True)
            return
    if IS_ROOT:
        pytest.skip("running as root (ignores mode bits) and chattr +i is unavailable here")
    folder.chmod(0o555)
    try:
        yield "read-only"
    finally:
        folder.chmod(0o755)


def test_issue22_a_write_protected_out_folder_fails_before_reading_the_data(
    planted_files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with _write_protected(out):
        # the parent is writable: only a probe inside the folder itself finds this
        done = run_cli(*_discover(planted_files, out))
        with pytest.raises(ModelDirectoryError, match="no file can be created in it"):
            check_output_dir(out)
    assert done.code == 1
    # one line and nothing else: the data was not even read (discover prints it first)
    line = done.error_line
    assert f"cannot write a directory at {out}: no file can be created in it" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ------------------------------------------------------------------ texts
@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "is empty once HTML, links and whitespace are removed"),
        ("   \n ", "is empty once HTML, links and whitespace are removed"),
        ("<br/><p> </p><a href='http://x.example'></a>", "is empty once HTML"),
        ("great \x1b[31mstrings", "holds the control character U+001B at character 6"),
    ],
    ids=["empty", "blank", "markup-only", "escape"],
)
def test_issue22_assign_refuses_the_texts_the_service_refuses(
    text: str, says: str, fitted_model: tuple[Path, str]
) -> None:
    done = run_cli("assign", fitted_model[0], "--text", text)
    assert done.code == 1
    line = done.error_line
    assert line.startswith("error: --text ") and says in line, line


def test_issue22_assign_refuses_a_nul_and_names_which_text(
    fitted_model: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # argv cannot carry a NUL (the shell cuts the text there), so through main() directly
    argv = ["assign", str(fitted_model[0]), "--text", "fine words", "--text", "cut\x00here"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: --text #2 holds the control character U+0000 at character 3; send UTF-8 text "
        "without lone surrogates or control characters (tab and line breaks are fine)"
    )


def test_the_cli_and_the_service_share_one_text_check() -> None:
    from usergroups.embedding import checks as texts
    from usergroups.service import state

    assert state.check_text is texts.check_text and state.InputError is texts.InputError


# ------------------------------------------------------------------ mapping and headers
def test_issue22_two_targets_mapped_to_one_column_is_refused(
    planted_files: dict[str, Path], tmp_path: Path
) -> None:
    done = run_cli(
        *_discover(planted_files, tmp_path / "out", "--map", "user_id=user_id,item_id=user_id")
    )
    assert done.code == 1
    line = done.error_line
    assert "user_id and item_id" in line and "'user_id'" in line, line
    assert not (tmp_path / "out").exists()


def test_issue22_a_repeated_header_column_that_is_read_is_refused(
    planted_files: dict[str, Path], tmp_path: Path
) -> None:
    lines = planted_files["interactions"].read_text().splitlines()
    header = lines[0].split(",")
    assert header[0] == "user_id"
    bad = tmp_path / "ratings.csv"
    bad.write_text("\n".join([",".join([*header, "user_id"])] + [f"{r},x" for r in lines[1:]]))
    done = run_cli(
        "discover", "--interactions", bad, "--model", "hashing", "--out", tmp_path / "out"
    )
    assert done.code == 1
    line = done.error_line
    assert "2 columns named 'user_id'" in line and "ratings.csv" in line, line


def test_issue22_a_repeated_header_column_that_is_not_read_is_warned_about(
    planted_files: dict[str, Path], tmp_path: Path
) -> None:
    lines = planted_files["interactions"].read_text().splitlines()
    odd = tmp_path / "ratings.csv"
    odd.write_text("\n".join([lines[0] + ",note,note"] + [f"{r},a,b" for r in lines[1:]]))
    with pytest.warns(DataWarning, match=r"repeats the column name\(s\) \['note'\]"):
        ds = load_files(interactions=odd)
    assert ds.n_interactions == len(lines) - 1

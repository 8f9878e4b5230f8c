"""Issue 21: `discover` is quiet by default; `-v` shows a line per clustering fit.

The validation grid fits k-means once per (text weight, K, resample): ~200 INFO lines on
`make demo` before the group table, which a new user had to scroll past.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from usergroups.cli.main import _DETAIL_LOGGERS, main
from usergroups.testing import make_planted

PER_FIT = "KMeansGroups:"  # the start of the per-fit line (clustering/base.py)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # the CLI configures logging for the process; leave the next test the levels it had
    names = ["", *_DETAIL_LOGGERS]
    levels = {n: logging.getLogger(n).level for n in names}
    handlers = list(logging.getLogger().handlers)
    yield
    for n, level in levels.items():
        logging.getLogger(n).setLevel(level)
    logging.getLogger().handlers[:] = handlers


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("quiet")
    ds = make_planted(n_users=120, n_groups=3, random_state=0).dataset
    ds.texts.to_parquet(root / "reviews.parquet")
    ds.interactions.to_csv(root / "ratings.csv", index=False)
    return root


def _discover(files: Path, out: Path, *flags: str) -> list[str]:
    args = [
        *flags,
        "discover",
        "--interactions",
        str(files / "ratings.csv"),
        "--texts",
        str(files / "reviews.parquet"),
        "--model",
        "hashing",
        "--set",
        "reuse=false",  # a fit-cache hit would skip the fits whose lines are counted
        "--set",
        "embedding.use_cache=false",
        "--set",
        "align.method=none",
        "--no-report",
        "--no-progress",
        "--seed",
        "1",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    return args


def _lines_before_table(text: str) -> list[str]:
    lines = text.splitlines()
    table = next(i for i, line in enumerate(lines) if line.startswith("group_id"))
    return lines[:table]


def test_discover_prints_few_lines_before_the_group_table(
    files: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _discover(files, tmp_path / "m")
    captured = capfd.readouterr()
    before = _lines_before_table(captured.err + captured.out)
    assert len(before) <= 30, "\n".join(before)
    assert not any(PER_FIT in line for line in before)
    # the stages and the choices are still said
    assert any("found" in line and "groups" in line for line in before)


def test_verbose_discover_prints_every_clustering_fit(
    files: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _discover(files, tmp_path / "m", "-v")
    captured = capfd.readouterr()
    per_fit = [line for line in (captured.err + captured.out).splitlines() if PER_FIT in line]
    # one per fit of the validation grid: many more than the final fit's one
    assert len(per_fit) > 10

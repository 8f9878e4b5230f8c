"""fetch() never touches the network here: file:// URLs and an http.server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from usergroups.datasets import DatasetSpec, FileSpec, fetch, get_spec, load_dataset, sha256_file
from usergroups.errors import DataError, DownloadError

ML_FILES = ("u.data", "u.item", "u.user", "u.genre")


@pytest.fixture
def ml_zip(ml100k_dir: Path, tmp_path: Path) -> tuple[Path, DatasetSpec]:
    """A zip laid out like GroupLens' ml-100k.zip, and the ml-100k spec pointing at it."""
    archive = tmp_path / "server" / "ml-100k.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ML_FILES:
            zf.write(ml100k_dir / name, f"ml-100k/{name}")
        zf.writestr("ml-100k/u1.base", "not listed, not extracted")
        zf.writestr("ml-100k/README", "optional")
    files = tuple(FileSpec(n, sha256_file(ml100k_dir / n)) for n in ML_FILES)
    spec = dataclasses.replace(
        get_spec("ml-100k"),
        download_url=archive.as_uri(),
        files=(*files, FileSpec("README", None, required=False)),
    )
    return archive, spec


def test_fetch_unpacks_a_zip_checks_members_and_installs(
    ml_zip: tuple[Path, DatasetSpec], tmp_path: Path
) -> None:
    _, spec = ml_zip
    root = tmp_path / "data"
    target = fetch(spec, root)
    assert target == root / "ml-100k"
    assert sorted(p.name for p in target.iterdir()) == sorted([*ML_FILES, "README"])
    assert [p.name for p in root.iterdir()] == ["ml-100k"]  # no temporary leftovers
    assert load_dataset(spec, root).n_interactions == 5


def test_fetch_checksum_mismatch_installs_nothing(
    ml_zip: tuple[Path, DatasetSpec], tmp_path: Path
) -> None:
    _, spec = ml_zip
    bad = dataclasses.replace(spec, files=(FileSpec("u.data", "0" * 64), *spec.files[1:]))
    root = tmp_path / "data"
    with pytest.raises(DataError) as info:
        fetch(bad, root)
    msg = str(info.value)
    assert "failed verification, so nothing was installed" in msg
    assert "checksum mismatch" in msg and "u.data" in msg and spec.download_url in msg
    assert list(root.iterdir()) == []


def test_fetch_keeps_a_complete_folder_unless_forced(
    ml_zip: tuple[Path, DatasetSpec], tmp_path: Path
) -> None:
    archive, spec = ml_zip
    root = tmp_path / "data"
    fetch(spec, root)
    archive.unlink()  # a second download would now fail
    assert fetch(spec, root) == root / "ml-100k"
    with pytest.raises(DownloadError, match="could not download"):
        fetch(spec, root, force=True)
    assert (root / "ml-100k" / "u.data").is_file()  # the old copy survives a failed refetch


def test_fetch_force_replaces_the_folder(ml_zip: tuple[Path, DatasetSpec], tmp_path: Path) -> None:
    _, spec = ml_zip
    root = tmp_path / "data"
    fetch(spec, root)
    (root / "ml-100k" / "stale.txt").write_text("old")
    fetch(spec, root, force=True)
    assert not (root / "ml-100k" / "stale.txt").exists()
    assert sorted(p.name for p in root.iterdir()) == ["ml-100k"]


def test_fetch_refuses_a_present_folder_that_fails_verification(
    ml_zip: tuple[Path, DatasetSpec], tmp_path: Path
) -> None:
    _, spec = ml_zip
    root = tmp_path / "data"
    fetch(spec, root)
    (root / "ml-100k" / "u.data").write_text("1\t1\t1\t1\n")
    with pytest.raises(DataError, match=r"checksum mismatch.*force=True"):
        fetch(spec, root)


def test_fetch_archive_without_a_required_member(tmp_path: Path) -> None:
    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("other/file.txt", "x")
    spec = dataclasses.replace(get_spec("ml-100k"), download_url=archive.as_uri())
    with pytest.raises(DataError, match=r"has no 'ml-100k/u\.data'"):
        fetch(spec, tmp_path / "data")


def test_fetch_without_a_download_url_gives_the_manual_steps(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        fetch("douban", tmp_path)
    msg = str(info.value)
    assert "no direct download" in msg and "http://moviedata.csuldw.com/" in msg
    assert "comments.csv" in msg and str(tmp_path / "douban-moviedata-small") in msg


def test_fetch_rejects_other_url_schemes(tmp_path: Path) -> None:
    spec = dataclasses.replace(get_spec("ml-100k"), download_url="ftp://example.org/x.zip")
    with pytest.raises(DataError, match="only http"):
        fetch(spec, tmp_path)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A folder served on 127.0.0.1, and its base URL."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_single_gzip_file_over_http(http_root: tuple[Path, str], tmp_path: Path) -> None:
    www, base = http_root
    review = {"reviewerID": "A1", "asin": "B1", "overall": 5.0, "reviewText": "ok",
              "summary": "", "unixReviewTime": 1}  # fmt: skip
    gz = www / "Appliances_5.json.gz"
    gz.write_bytes(gzip.compress((json.dumps(review) + "\n").encode()))
    spec = dataclasses.replace(
        get_spec("amazon2018:appliances"),
        download_url=f"{base}/Appliances_5.json.gz",
        files=(FileSpec("Appliances_5.json.gz", sha256_file(gz)),),
    )
    target = fetch(spec, tmp_path / "data")
    assert (target / "Appliances_5.json.gz").read_bytes() == gz.read_bytes()
    ds = load_dataset(spec, tmp_path / "data")
    assert ds.name == "amazon2018:appliances" and ds.n_interactions == 1


def test_fetch_http_error_names_the_url(http_root: tuple[Path, str], tmp_path: Path) -> None:
    _, base = http_root
    spec = dataclasses.replace(get_spec("amazon2018:appliances"), download_url=f"{base}/gone.gz")
    with pytest.raises(DownloadError, match=r"could not download '.*/gone\.gz': HTTP 404"):
        fetch(spec, tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []

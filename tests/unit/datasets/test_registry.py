from __future__ import annotations

import dataclasses
import gzip
import logging
from pathlib import Path

import pytest

from usergroups.data import Dataset
from usergroups.datasets import (
    DatasetSpec,
    FileSpec,
    data_dir,
    get_spec,
    list_datasets,
    load_dataset,
    sha256_file,
    verify,
)
from usergroups.errors import DataError, DatasetNotFoundError

NAMES = [
    "ml-100k",
    "ml-1m",
    "ml-latest-small",
    "amazon2014:musical-instruments",
    "amazon2018:appliances",
    "yelp-10k",
    "douban-small",
]


def test_the_registry_lists_the_public_datasets() -> None:
    assert [s.name for s in list_datasets()] == NAMES


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("ML-100K", "ml-100k"),
        ("movielens_1m", "ml-1m"),
        ("ml-latest-small", "ml-latest-small"),
        ("amazon2014-musical-instruments-5core", "amazon2014:musical-instruments"),
        ("amazon-appliances", "amazon2018:appliances"),
        ("yelp", "yelp-10k"),
        ("douban", "douban-small"),
        (" douban-moviedata-small ", "douban-small"),
    ],
)
def test_aliases_and_folder_names_resolve(alias: str, name: str) -> None:
    assert get_spec(alias).name == name


def test_an_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(
        DataError, match=r"unknown dataset 'ml-10m'; valid names are ml-100k, ml-1m"
    ):
        get_spec("ml-10m")


def test_specs_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_spec("ml-100k").name = "x"  # type: ignore[misc]


def test_specs_record_sources_checksums_and_terms() -> None:
    for spec in list_datasets():
        assert spec.homepage.startswith("http") and spec.license and spec.title
        assert spec.required_files
        for f in spec.files:
            assert f.sha256 is None or len(f.sha256) == 64
    ml = get_spec("ml-100k")
    assert ml.download_url == "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    assert dict((f.name, f.sha256) for f in ml.files)["u.data"] == (
        "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
    )
    assert get_spec("amazon2018:appliances").download_url == (
        "https://jmcauley.ucsd.edu/data/amazon_v2/categoryFilesSmall/Appliances_5.json.gz"
    )
    assert get_spec("yelp-10k").download_url is None
    assert get_spec("douban-small").download_url is None


def test_ml1m_says_it_has_no_checksums() -> None:
    spec = get_spec("ml-1m")
    assert not spec.has_checksums and all(f.sha256 is None for f in spec.files)
    assert "No checksums recorded" in spec.notes
    assert all(s.has_checksums for s in list_datasets() if s.name != "ml-1m")


def test_data_dir_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("USERGROUPS_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("USERGROUPS_DATA")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".local" / "share" / "usergroups" / "datasets"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "usergroups" / "datasets"


def test_load_dataset_reads_from_the_data_dir(ml100k_dir: Path) -> None:
    ds = load_dataset("movielens-100k", data_dir=ml100k_dir.parent)
    assert isinstance(ds, Dataset) and ds.name == "ml-100k" and ds.n_interactions == 5


def test_load_dataset_defaults_to_the_environment(
    ml100k_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USERGROUPS_DATA", str(ml100k_dir.parent))
    assert load_dataset("ml-100k").n_users == 3


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("ml-1m", data_dir=tmp_path)
    msg = str(info.value)
    assert f"'{tmp_path / 'ml-1m'}' does not exist" in msg
    assert "usergroups datasets fetch ml-1m" in msg and "USERGROUPS_DATA" in msg


def test_missing_file_is_named(ml100k_dir: Path) -> None:
    (ml100k_dir / "u.item").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"lacks \['u\.item'\]"):
        load_dataset("ml-100k", data_dir=ml100k_dir.parent)


def test_missing_manual_dataset_points_at_the_homepage(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"by hand from https://www\.yelp\.com/dataset"):
        load_dataset("yelp", data_dir=tmp_path)


def _spec_for(folder: Path, **hashes: str | None) -> DatasetSpec:
    return DatasetSpec(
        name="tiny",
        title="a tiny test dataset",
        folder=folder.name,
        homepage="https://example.org/tiny",
        files=tuple(FileSpec(n.replace("_", "."), h) for n, h in hashes.items()),
        loader=lambda path, name: load_dataset("ml-100k", path.parent),
        license="test data",
    )


def test_verify_passes_and_returns_the_hashes(ml100k_dir: Path) -> None:
    digest = sha256_file(ml100k_dir / "u.data")
    spec = _spec_for(ml100k_dir, u_data=digest)
    assert verify(spec, ml100k_dir.parent) == {"u.data": digest}


def test_verify_mismatch_names_file_and_both_hashes(ml100k_dir: Path) -> None:
    spec = _spec_for(ml100k_dir, u_data="0" * 64)
    with pytest.raises(DataError) as info:
        verify(spec, ml100k_dir.parent)
    msg = str(info.value)
    assert "checksum mismatch" in msg and "u.data" in msg and "0" * 64 in msg
    assert sha256_file(ml100k_dir / "u.data") in msg and "force=True" in msg


def test_verify_of_a_real_spec_checks_the_registry_hashes(ml100k_dir: Path) -> None:
    # the generated files are not the GroupLens ones
    with pytest.raises(DataError, match=r"checksum mismatch for '.*u\.data'"):
        verify("ml-100k", ml100k_dir.parent)


def test_verify_without_checksums_hashes_and_warns(
    ml100k_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = _spec_for(ml100k_dir, u_data=None)
    with caplog.at_level(logging.WARNING):
        out = verify(spec, ml100k_dir.parent)
    assert out == {"u.data": sha256_file(ml100k_dir / "u.data")}
    assert "no checksum recorded for u.data" in caplog.text


def test_verify_accepts_a_recompressed_gzip_with_the_same_content(tmp_path: Path) -> None:
    folder = tmp_path / "gz"
    folder.mkdir()
    content = b"business_id,date\nb1,2011-01-01\n"
    (folder / "yelp.csv.gz").write_bytes(gzip.compress(content, compresslevel=1, mtime=0))
    content_hash = sha256_file(folder / "yelp.csv.gz", decompress=True)
    spec = dataclasses.replace(
        _spec_for(folder),
        files=(FileSpec("yelp.csv.gz", "f" * 64, sha256_content=content_hash),),
    )
    assert "yelp.csv.gz" in verify(spec, tmp_path)
    (folder / "yelp.csv.gz").write_bytes(gzip.compress(content + b"b2,2012-01-01\n"))
    with pytest.raises(DataError, match="checksum mismatch"):
        verify(spec, tmp_path)


def test_verify_of_a_missing_dataset_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError):
        verify("ml-100k", tmp_path)

"""Every shared dataset loads with the counts verified in shared/datasets/README.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from usergroups.data import Dataset
from usergroups.datasets import get_spec, load_dataset, load_files, verify

pytestmark = pytest.mark.integration

FOLDERS = {
    "ml-100k": "ml-100k",
    "ml-latest-small": "ml-latest-small",
    "amazon2014:musical-instruments": "amazon2014-musical-instruments-5core",
    "amazon2018:appliances": "amazon2018-appliances-5core",
    "yelp-10k": "yelp-10k",
    "douban-small": "douban-moviedata-small",
}


def _load(name: str, data_dir: Path) -> Dataset:
    folder = data_dir / get_spec(name).folder
    if not folder.is_dir():
        pytest.skip(f"{folder} not found: set USERGROUPS_DATA to the shared datasets directory")
    return load_dataset(name, data_dir)


def test_registry_folders_match_the_shared_layout() -> None:
    assert {name: get_spec(name).folder for name in FOLDERS} == FOLDERS


@pytest.mark.parametrize("name", list(FOLDERS))
def test_shared_files_pass_verification(name: str, data_dir: Path) -> None:
    if not (data_dir / FOLDERS[name]).is_dir():
        pytest.skip(f"{data_dir / FOLDERS[name]} not found: set USERGROUPS_DATA")
    checked = verify(name, data_dir)
    assert set(checked) == {f.name for f in get_spec(name).files}


def test_ml100k(data_dir: Path) -> None:
    ds = _load("ml-100k", data_dir)
    assert ds.name == "ml-100k"
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (100_000, 943, 1_682)
    counts = ds.interactions["rating"].value_counts().sort_index().tolist()
    assert counts == [6_110, 11_370, 27_145, 34_174, 21_201]
    assert ds.item_titles()["543"] == "Misérables, Les (1995)"  # latin-1 decoded right
    assert ds.items is not None
    assert ds.items.set_index("item_id").loc["1", "categories"] == "Animation|Children's|Comedy"
    assert ds.users is not None and len(ds.users) == 943
    assert set(ds.users.columns) >= {"age", "gender", "occupation", "zip_code"}
    assert len(ds.texts) == 0 and ds.report.total == 0


def test_ml_latest_small(data_dir: Path) -> None:
    ds = _load("ml-latest-small", data_dir)
    assert (ds.n_interactions, ds.n_users) == (100_836, 610)
    assert ds.interactions["item_id"].nunique() == 9_724
    assert ds.n_items == 9_742  # rated movies plus the ones known from movies.csv only
    assert len(ds.texts) == 3_683 and ds.texts["item_id"].notna().all()
    assert set(ds.interactions["rating"].unique()) <= {x / 2 for x in range(1, 11)}


def test_amazon2014_musical_instruments(data_dir: Path) -> None:
    ds = _load("amazon2014:musical-instruments", data_dir)
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (10_261, 1_429, 900)
    assert len(ds.texts) == 10_261
    counts = ds.interactions["rating"].value_counts().sort_index().tolist()
    assert counts == [217, 250, 772, 2_084, 6_938]
    assert ds.report.total == 0


def test_amazon2018_appliances_duplicates_are_merged_and_counted(data_dir: Path) -> None:
    ds = _load("amazon2018:appliances", data_dir)
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (183, 47, 48)
    merged = {r: c for s, c, r in ds.report.entries if s == "interactions"}
    assert merged["merged: duplicate (user_id, item_id), kept the latest"] == 2_277 - 183
    dropped = {r: c for s, c, r in ds.report.entries if s == "texts"}
    n_dup = dropped["dropped: exact duplicate text (same user, item and text)"]
    assert n_dup + len(ds.texts) == 2_277
    assert not ds.texts.duplicated(["user_id", "item_id", "text"]).any()


def test_yelp_10k(data_dir: Path) -> None:
    ds = _load("yelp-10k", data_dir)
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (10_000, 6_403, 4_174)
    assert len(ds.texts) == 10_000
    assert ds.texts["text"].str.contains("\n").any()  # multi-line reviews survived
    counts = ds.interactions["rating"].value_counts().sort_index().tolist()
    assert counts == [749, 927, 1_461, 3_526, 3_337]
    first, last = ds.interactions["timestamp"].min(), ds.interactions["timestamp"].max()
    assert np.datetime64(int(first), "s") == np.datetime64("2005-04-18")
    assert np.datetime64(int(last), "s") == np.datetime64("2013-01-05")


def test_douban_small(data_dir: Path) -> None:
    ds = _load("douban-small", data_dir)
    assert len(ds.texts) == 5_000
    assert (ds.n_users, ds.n_items) == (4_473, 111)
    assert ds.texts["rating"].isna().sum() == 358
    counts = ds.texts["rating"].value_counts().sort_index().tolist()
    assert counts == [310, 533, 1_436, 1_492, 871]
    assert ds.texts["text"].str.contains("[\u4e00-\u9fff]").mean() > 0.9  # Chinese decoded


def test_issue13_readme_texts_example_on_amazon2018_reports_then_loads_rating_and_time(
    data_dir: Path,
) -> None:
    """The README's ``--texts`` example: three columns mapped is reported, five load all."""
    folder = data_dir / get_spec("amazon2018:appliances").folder
    if not folder.is_dir():
        pytest.skip(f"{folder} not found: set USERGROUPS_DATA to the shared datasets directory")
    path = folder / "Appliances_5.json.gz"
    three = "user_id=reviewerID,item_id=asin,text=reviewText"
    ds = load_files(texts=path, mapping=three)
    (note,) = ds.report.notes
    assert note[:2] == ("Appliances_5.json.gz", 2_277)
    assert "--map rating=overall,timestamp=unixReviewTime" in note[2]
    assert note in [tuple(r.values()) for r in ds.report.to_records()]
    assert ds.interactions["timestamp"].isna().all()
    five = f"{three},rating=overall,timestamp=unixReviewTime"
    ds = load_files(texts=path, mapping=five)
    assert ds.report.notes == []
    assert ds.interactions["timestamp"].notna().all() and ds.interactions["rating"].notna().all()

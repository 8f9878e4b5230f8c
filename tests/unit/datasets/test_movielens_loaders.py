from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from usergroups.datasets import load_movielens_1m, load_movielens_100k, load_movielens_latest
from usergroups.errors import DataError

# ---------------------------------------------------------------- 100K


def test_ml100k_reads_ratings_items_and_users(ml100k_dir: Path) -> None:
    ds = load_movielens_100k(ml100k_dir)
    assert ds.name == "ml-100k"
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (5, 3, 3)
    first = ds.interactions.iloc[0]
    assert (first.user_id, first.item_id, first.rating, first.timestamp) == (
        "1",
        "1",
        5.0,
        874965758.0,
    )
    assert len(ds.texts) == 0
    assert ds.report.total == 0


def test_ml100k_titles_are_latin1_and_genres_become_categories(ml100k_dir: Path) -> None:
    ds = load_movielens_100k(ml100k_dir)
    assert ds.item_titles()["3"] == "Misérables, Les (1995)"
    assert ds.items is not None
    cats = dict(zip(ds.items["item_id"], ds.items["categories"], strict=True))
    assert cats == {"1": "Animation|Children's|Comedy", "2": "Action|Adventure|Thriller", "3": ""}
    assert ds.items.loc[0, "release_date"] == "01-Jan-1995"


def test_ml100k_users_have_attributes(ml100k_dir: Path) -> None:
    users = load_movielens_100k(ml100k_dir).users
    assert users is not None
    assert list(users.columns) == ["user_id", "age", "gender", "occupation", "zip_code"]
    assert users["age"].tolist() == [24, 53, 23]
    assert users["zip_code"].tolist() == ["85711", "94043", "T8H1N"]


def test_ml100k_uses_the_genre_names_of_u_genre(ml100k_dir: Path) -> None:
    genre = (ml100k_dir / "u.genre").read_text().replace("Action|1", "Action & Adventure|1")
    (ml100k_dir / "u.genre").write_text(genre)
    ds = load_movielens_100k(ml100k_dir)
    assert ds.items is not None and ds.items["categories"].iloc[1].startswith("Action & Adventure")


def test_ml100k_without_u_genre_falls_back_to_the_standard_genres(ml100k_dir: Path) -> None:
    (ml100k_dir / "u.genre").unlink()
    ds = load_movielens_100k(ml100k_dir)
    assert ds.items is not None and ds.items["categories"].iloc[1] == "Action|Adventure|Thriller"


def test_ml100k_missing_ratings_file_names_the_path(ml100k_dir: Path) -> None:
    (ml100k_dir / "u.data").unlink()
    with pytest.raises(DataError, match=r"file not found: '.*u\.data'"):
        load_movielens_100k(ml100k_dir)


def test_ml100k_damaged_rating_names_file_and_value(ml100k_dir: Path) -> None:
    with (ml100k_dir / "u.data").open("a") as fh:
        fh.write("4\t1\tfive\t874965758\n")
    with pytest.raises(DataError, match=r"u\.data.*rating must be numeric; got 'five' on line 6"):
        load_movielens_100k(ml100k_dir)


def test_ml_loaders_want_a_folder(ml100k_dir: Path) -> None:
    with pytest.raises(DataError, match=r"expects the directory.*is a file"):
        load_movielens_100k(ml100k_dir / "u.data")
    with pytest.raises(DataError, match="is missing"):
        load_movielens_1m(ml100k_dir / "nope")


# ---------------------------------------------------------------- 1M


@pytest.fixture
def ml1m_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ml-1m"
    d.mkdir()
    (d / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n", encoding="ascii"
    )
    (d / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::Star Wars: Episode IV - A New Hope (1977)::Action|Adventure|Sci-Fi\n"
        "73::Misérables, Les (1995)::Drama|Musical\n".encode("latin-1")
    )
    (d / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n", encoding="ascii")
    return d


def test_ml1m_reads_double_colon_latin1_files(ml1m_dir: Path) -> None:
    ds = load_movielens_1m(ml1m_dir)
    assert ds.name == "ml-1m"
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (3, 2, 3)
    titles = ds.item_titles()
    assert titles["661"] == "Star Wars: Episode IV - A New Hope (1977)"  # ':' in a title
    assert titles["73"] == "Misérables, Les (1995)"
    assert ds.items is not None and ds.items["categories"].iloc[1] == "Action|Adventure|Sci-Fi"


def test_ml1m_user_codes_become_readable_attributes(ml1m_dir: Path) -> None:
    users = load_movielens_1m(ml1m_dir).users
    assert users is not None
    assert users.to_dict("records")[1] == {
        "user_id": "2",
        "gender": "M",
        "age": 56,
        "age_group": "56+",
        "occupation": "self-employed",
        "zip_code": "70072",
    }
    assert users["occupation"].iloc[0] == "K-12 student"


def test_ml1m_damaged_line_is_named(ml1m_dir: Path) -> None:
    (ml1m_dir / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::9::9::9\n")
    with pytest.raises(DataError, match=r"ratings\.dat.*could not be parsed"):
        load_movielens_1m(ml1m_dir)


# ---------------------------------------------------------------- latest


@pytest.fixture
def ml_latest_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ml-latest-small"
    d.mkdir()
    crlf = "\r\n"
    (d / "ratings.csv").write_text(
        crlf.join(["userId,movieId,rating,timestamp", "1,1,4.0,964982703", "1,3,4.5,964981247",
                   "2,1,0.5,964982224", ""]),
        encoding="utf-8",
        newline="",
    )  # fmt: skip
    (d / "movies.csv").write_text(
        crlf.join(["movieId,title,genres", "1,Toy Story (1995),Adventure|Animation",
                   '3,"American President, The (1995)",Comedy|Drama|Romance',
                   "9,Unseen (2018),(no genres listed)", ""]),
        encoding="utf-8",
        newline="",
    )  # fmt: skip
    (d / "tags.csv").write_text(
        crlf.join(["userId,movieId,tag,timestamp", "2,1,funny,1445714994",
                   '2,1,"Highly quotable, really",1445714996', "7,3,orphan tag,1445714999", ""]),
        encoding="utf-8",
        newline="",
    )  # fmt: skip
    return d


def test_ml_latest_reads_ratings_movies_and_tags(ml_latest_dir: Path) -> None:
    ds = load_movielens_latest(ml_latest_dir)
    assert ds.name == "ml-latest-small"
    assert ds.n_interactions == 3 and ds.interactions["rating"].tolist() == [4.0, 4.5, 0.5]
    assert ds.n_items == 3  # item 9 is known from movies.csv only
    assert ds.item_titles()["3"] == "American President, The (1995)"
    assert ds.items is not None and ds.items["categories"].tolist()[-1] == ""


def test_ml_latest_gives_one_text_per_tag_row(ml_latest_dir: Path) -> None:
    texts = load_movielens_latest(ml_latest_dir).texts
    assert texts["text"].tolist() == ["funny", "Highly quotable, really", "orphan tag"]
    assert texts["item_id"].tolist() == ["1", "1", "3"]
    assert texts["timestamp"].tolist() == [1445714994.0, 1445714996.0, 1445714999.0]
    assert np.isnan(texts["rating"]).all()


def test_ml_latest_without_tags_has_no_texts(ml_latest_dir: Path) -> None:
    (ml_latest_dir / "tags.csv").unlink()
    ds = load_movielens_latest(ml_latest_dir)
    assert len(ds.texts) == 0 and ds.n_interactions == 3

"""Item names derived from reviews (issue 14, part 5): derived once, stored, shown."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.cli.main import cli
from usergroups.data import Dataset, build_dataset
from usergroups.profiling import derive_item_names, shown_name, with_top_item_names
from usergroups.profiling.clean import keyword_text, keyword_texts
from usergroups.testing import make_planted


def _reviews(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "text"])


def _background() -> list[tuple[str, str, str]]:
    """Reviews of other items, so every term has a population to stand out from."""
    return [
        (f"b{k}", f"other{k % 5}", f"the guitar sounds fine, guitar number {k} tuner pick")
        for k in range(40)
    ]


def test_names_are_the_items_most_distinctive_terms() -> None:
    rows = [
        ("u1", "a", "bright nickel strings on my guitar"),
        ("u2", "a", "these nickel strings sound bright on a guitar"),
        ("u3", "a", "nickel strings, bright and clear"),
        ("u1", "b", "a heavy capo for the guitar"),
        ("u2", "b", "the capo clamps hard"),
        ("u4", "b", "solid capo, clamps well"),
    ]
    names = derive_item_names(_reviews(rows + _background()))
    words_a = " ".join(names["a"].split(", ")).split()
    assert {"nickel", "bright"} <= set(words_a)
    assert names["b"].split(", ")[0].split()[0] == "capo"
    # a word every item's reviews use does not name one item
    assert "guitar" not in names["a"] and "guitar" not in names["b"]


def test_a_signature_of_one_reviewer_does_not_name_an_item() -> None:
    signed = "-- kenneth haft, gift shop"
    rows = [
        ("u1", "a", f"good strap leather {signed}"),
        ("u1", "a", f"the strap again, leather wide {signed}"),
        ("u1", "a", f"third strap order {signed}"),
        ("u2", "a", "wide leather strap"),
        ("u3", "a", "leather strap, comfortable and wide"),
        # an item only one person reviewed gets no name at all
        ("u1", "c", f"violin rosin {signed}"),
        ("u1", "c", f"violin rosin again {signed}"),
    ]
    names = derive_item_names(_reviews(rows + _background()))
    assert "strap" in names["a"] and "leather" in names["a"]
    for term in ("kenneth", "haft", "gift"):
        assert term not in names["a"]
    assert "c" not in names


def test_duplicate_reviews_across_variants_count_once() -> None:
    pasted = "great sounding boss pedal"
    rows = [("u1", "a", pasted), ("u1", "a", pasted), ("u2", "a", "a boss overdrive pedal")]
    names = derive_item_names(_reviews(rows + _background()))
    # "sounding" is one reviewer's word even though it appears twice
    assert "sounding" not in names.get("a", "")
    assert "boss" in names["a"]


def test_titled_items_are_left_out_but_still_contrast() -> None:
    rows = [
        ("u1", "a", "nickel strings"),
        ("u2", "a", "nickel strings"),
        ("u1", "t", "blue cable"),
        ("u2", "t", "blue cable"),
    ]
    names = derive_item_names(_reviews(rows + _background()), exclude={"t"})
    assert "t" not in names and "nickel" in names["a"]


def test_plural_and_bigram_forms_do_not_repeat_a_word() -> None:
    rows = [
        ("u1", "a", "xlr cable, long xlr cables"),
        ("u2", "a", "xlr cables and another xlr cable"),
        ("u3", "a", "xlr cable"),
    ]
    words = derive_item_names(_reviews(rows + _background()), n_terms=3)["a"].split(", ")
    assert not {"cable", "cables"} <= set(words)
    assert len(words) == len(set(words))


def test_markup_and_contractions_never_name_an_item() -> None:
    rows = [
        ("u1", "a", "I don't know, &nbsp;<br/> ukulele <a href='x'>bag</a> I've used"),
        ("u2", "a", "don't <br/> ukulele bag, I've had it"),
    ]
    name = derive_item_names(_reviews(rows + _background()))["a"]
    words = set(name.replace(",", " ").split())
    assert "ukulele" in words
    assert not {"nbsp", "href", "don", "dont", "ve", "br"} & words


def test_names_use_the_keyword_tokenizer_and_its_lists() -> None:
    # filler (clean.EN_FILLER) and praise (clean.EN_SENTIMENT) never name an item, and a
    # bigram never spans a dropped word: "capo for the banjo" gives no "capo banjo"
    rows = [
        ("u1", "a", "great place, cheap capo for the banjo, love it"),
        ("u2", "a", "a great cheap capo for the banjo, nice place"),
        ("u3", "a", "capo for the banjo, great value"),
    ]
    name = derive_item_names(_reviews(rows + _background()))["a"]
    terms = name.split(", ")
    assert {"capo", "banjo"} <= set(terms)
    words = {w for t in terms for w in t.split()}
    assert not {"great", "cheap", "love", "nice", "value", "place"} & words
    assert "capo banjo" not in terms


@pytest.mark.parametrize(
    "text",
    [
        "I&#39;ve <b>loved</b> it, don't ask: me@x.com",
        "Don't  know\nit's   nbsp; WWW.example.com",
        "guitar’s strings, I CAN'T",
        'a data-hook="x" class="a-link-normal" strap',
        "Nbſp nbsp plain",
        "won't\r\nstop   x   y",
        "",
    ],
)
def test_keyword_texts_equals_keyword_text(text: str) -> None:
    assert keyword_texts([text]) == [keyword_text(text)]
    assert keyword_texts([None, float("nan")]) == ["", ""]


def test_chinese_reviews_are_named_with_jieba() -> None:
    pytest.importorskip("jieba")
    rows = [
        ("u1", "m1", "周星驰的喜剧，无厘头，笑死了"),
        ("u2", "m1", "周星驰太好笑了，无厘头经典"),
        ("u1", "m2", "宫崎骏的动画，画面很美"),
        ("u2", "m2", "宫崎骏动画，配乐很美"),
    ]
    rows += [(f"b{k}", f"x{k % 3}", "剧情一般，演员表演还行，故事平淡") for k in range(20)]
    names = derive_item_names(_reviews(rows))
    assert "周星驰" in names["m1"] and "宫崎骏" in names["m2"]


def test_no_reviews_no_names() -> None:
    assert derive_item_names(_reviews([])) == {}
    no_items = _reviews([("u1", None, "text"), ("u2", None, "text")])  # type: ignore[list-item]
    assert derive_item_names(no_items) == {}


def test_shown_name_marks_derived_names() -> None:
    assert shown_name("B1", "strings, elixir", "reviews") == "[from reviews] strings / elixir"
    assert shown_name("B1", "Elixir Nanoweb", "title") == "Elixir Nanoweb"
    assert shown_name("B1", "", "") == "B1"


def test_group_frames_get_top_item_names() -> None:
    groups = pd.DataFrame(
        {
            "group_id": [0],
            "top_items": [["a", "b", "c"]],
            "top_item_titles": [["A title", "", ""]],
            "top_item_terms": [["", "capo, clamps", ""]],
        }
    )
    out = with_top_item_names(groups)
    assert out.loc[0, "top_item_names"] == ["A title", "capo, clamps", ""]
    assert out.loc[0, "top_item_name_sources"] == ["title", "reviews", ""]


# --------------------------------------------------------------------------- a fitted model


def _untitled(dataset: Dataset, keep_titles: int = 0) -> Dataset:
    """The planted dataset with all but the first ``keep_titles`` item titles removed."""
    assert dataset.items is not None
    items = dataset.items.copy()
    items.loc[items.index[keep_titles:], "title"] = ""
    return build_dataset(dataset.interactions, dataset.texts, items, name="untitled")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    planted = make_planted(n_users=120, n_groups=3, n_items=40, random_state=0)
    cfg = DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing", "use_cache": False},
            "clustering": {"n_groups": 3},
            "random_state": 0,
        }
    )
    out = tmp_path_factory.mktemp("names") / "model"
    GroupDiscovery(cfg).fit(_untitled(planted.dataset, keep_titles=5)).save(out)
    return out


def test_fit_names_untitled_items_and_keeps_titles(model_dir: Path) -> None:
    gd = GroupDiscovery.load(model_dir)
    titled = set(gd.item_titles_)
    assert len(titled) == 5
    assert all(gd.item_names_[i] == t for i, t in gd.item_titles_.items())
    derived = {i for i in gd.item_names_ if i not in titled}
    assert len(derived) >= 0.8 * (len(gd.item_ids_) - 5)
    assert gd.state_.item_name(next(iter(titled)))[1] == "title"
    assert gd.state_.item_name(next(iter(derived)))[1] == "reviews"
    assert "item_names" in gd.metrics_["timings"]


def test_items_parquet_holds_names_and_sources(model_dir: Path) -> None:
    items = pd.read_parquet(model_dir / "items.parquet")
    assert list(items.columns) == ["item_id", "title", "name", "name_source"]
    assert set(items["name_source"]) <= {"title", "reviews", ""}
    titled = items[items["title"] != ""]
    assert (titled["name"] == titled["title"]).all() and (titled["name_source"] == "title").all()
    assert (items.loc[items["name_source"] == "reviews", "name"] != "").all()


def test_older_items_parquet_without_names_loads(model_dir: Path, tmp_path: Path) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(model_dir, old)
    items = pd.read_parquet(old / "items.parquet")[["item_id", "title"]]
    items.to_parquet(old / "items.parquet", index=False)
    (old / "manifest.json").unlink()  # older versions wrote no manifest
    gd = GroupDiscovery.load(old)
    assert gd.item_names_ == gd.item_titles_ and len(gd.item_titles_) == 5
    recs = gd.recommend([str(gd.user_ids_.ids[0])], n=5)
    assert set(recs["name_source"]) <= {"title", ""}


def test_recommend_and_assign_carry_names(model_dir: Path) -> None:
    gd = GroupDiscovery.load(model_dir)
    recs = gd.recommend([str(u) for u in gd.user_ids_.ids[:10]], n=5)
    for item, title, name, source in zip(
        recs["item_id"], recs["title"], recs["name"], recs["name_source"], strict=True
    ):
        assert (name, source) == gd.state_.item_name(item)
        assert source != "title" or name == title
    assert "reviews" in set(recs["name_source"])
    out = gd.assign(["some text about nothing in particular"], n=5)
    assert len(out.loc[0, "names"]) == len(out.loc[0, "items"]) == 5
    assert out.loc[0, "name_sources"] == [gd.state_.item_name(i)[1] for i in out.loc[0, "items"]]


def test_profiles_show_the_stored_names(model_dir: Path) -> None:
    gd = GroupDiscovery.load(model_dir)
    for _, row in gd.groups_.iterrows():
        for item, title, term in zip(
            row["top_items"], row["top_item_titles"], row["top_item_terms"], strict=True
        ):
            assert term == ("" if title else gd.item_names_.get(item, ""))


def test_cli_shows_derived_names_marked(model_dir: Path) -> None:
    runner = CliRunner()
    gd = GroupDiscovery.load(model_dir)
    user = str(gd.user_ids_.ids[0])
    table = runner.invoke(cli, ["groups", str(model_dir)])
    assert table.exit_code == 0, table.output
    assert "[from reviews]" in table.output
    groups = json.loads(runner.invoke(cli, ["groups", str(model_dir), "--format", "json"]).output)
    sources = {s for g in groups for s in g["top_item_name_sources"]}
    assert "reviews" in sources
    recs = runner.invoke(cli, ["recommend", str(model_dir), "--user", user, "-n", "5"])
    assert recs.exit_code == 0 and "[from reviews]" in recs.output
    rows = json.loads(
        runner.invoke(
            cli, ["recommend", str(model_dir), "--user", user, "-n", "5", "--format", "json"]
        ).output
    )
    assert all({"title", "name", "name_source"} <= set(r) for r in rows)
    assigned = runner.invoke(cli, ["assign", str(model_dir), "--text", "hello", "-n", "5"])
    assert assigned.exit_code == 0 and "[from reviews]" in assigned.output


def test_nothing_left_to_name_gives_no_names_issue_25() -> None:
    """Issue 25: reviews that name no item (or only excluded ones) return at once, empty;
    one item left to name is still named."""
    texts = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3", "u1", "u2"],
            "item_id": ["a", "a", "a", None, None],
            "text": [
                "bright nickel strings",
                "strings sound bright",
                "nickel strings",
                "a heavy capo",
                "capo clamps well",
            ],
        }
    )
    assert derive_item_names(texts.assign(item_id=None)) == {}
    assert derive_item_names(texts, exclude={"a"}) == {}
    assert set(derive_item_names(texts)) == {"a"}

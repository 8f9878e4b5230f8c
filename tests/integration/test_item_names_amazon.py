"""Item names from reviews on Amazon musical instruments, which has no titles (issue 14)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from shared_data import require_dataset
from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.cli.main import cli
from usergroups.datasets import load_dataset
from usergroups.profiling import derive_item_names

pytestmark = pytest.mark.integration

_ASIN = re.compile(r"\bB0[0-9A-Z]{8}\b")


@pytest.fixture(scope="module")
def amazon(data_dir: Path):  # type: ignore[no-untyped-def]
    require_dataset(data_dir, "amazon2014-musical-instruments-5core")
    return load_dataset("amazon2014:musical-instruments", data_dir=data_dir)


def test_most_amazon_items_get_a_name(amazon) -> None:  # type: ignore[no-untyped-def]
    # (its time was asserted here; timings belong in bench/, issue 21)
    assert not amazon.item_titles()  # the 5-core file has no titles: names are needed
    names = derive_item_names(amazon.texts)
    reviewed = set(amazon.texts["item_id"].dropna())
    assert len(set(names) & reviewed) >= 0.9 * len(reviewed)
    for name in names.values():
        terms = name.split(", ")
        assert 1 <= len(terms) <= 3
        assert all(len(t) >= 3 and not _ASIN.search(t) for t in terms)


def test_groups_table_shows_no_bare_asin_for_reviewed_items(  # type: ignore[no-untyped-def]
    amazon, tmp_path: Path
) -> None:
    cfg = DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing", "use_cache": False},
            "clustering": {"n_groups": 8},
            "random_state": 0,
        }
    )
    gd = GroupDiscovery(cfg).fit(amazon)
    gd.save(tmp_path / "model")
    out = CliRunner().invoke(cli, ["groups", str(tmp_path / "model")])
    assert out.exit_code == 0, out.output
    assert "[from reviews]" in out.output
    reviewed = set(amazon.texts["item_id"].dropna())
    shown = [i for items in gd.groups_["top_items"] for i in items]
    unnamed = [i for i in shown if i in reviewed and not gd.item_names_.get(i)]
    assert len(unnamed) <= 0.05 * max(len(shown), 1), unnamed
    assert set(_ASIN.findall(out.output)) <= set(unnamed)

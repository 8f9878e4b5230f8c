from __future__ import annotations

from pathlib import Path

import pytest

from usergroups.config import DiscoveryConfig, load_config, save_config
from usergroups.errors import ConfigError


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_config_round_trips_through_files(tmp_path: Path, suffix: str) -> None:
    cfg = DiscoveryConfig().with_overrides({"clustering.n_groups": 7, "random_state": 3})
    path = tmp_path / f"cfg{suffix}"
    save_config(cfg, path)
    assert load_config(path) == cfg


def test_bad_choice_lists_the_good_ones(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[clustering]\nmethod = "dbscan"\n')
    with pytest.raises(ConfigError, match=r"clustering.method.*'kmeans'.*'hdbscan'"):
        load_config(path)


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting 'clustering.nope'"):
        DiscoveryConfig().with_overrides({"clustering.nope": 1})


def test_unknown_key_in_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("typo = 1\n")
    with pytest.raises(ConfigError, match="typo"):
        load_config(path)


def test_n_groups_must_be_positive_or_auto() -> None:
    with pytest.raises(ConfigError):
        DiscoveryConfig().with_overrides({"clustering.n_groups": 0})
    assert (
        DiscoveryConfig().with_overrides({"clustering.n_groups": "auto"}).clustering.n_groups
        == "auto"
    )


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_fine_text_weight_outside_zero_one_is_one_clear_error(value: float) -> None:
    with pytest.raises(ConfigError, match=r"fine_text_weight must be in \[0, 1\] or 'auto'"):
        DiscoveryConfig().with_overrides({"clustering.fine_text_weight": value})
    ok = DiscoveryConfig().with_overrides({"clustering.fine_text_weight": 0.25})
    assert ok.clustering.fine_text_weight == 0.25

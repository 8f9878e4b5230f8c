"""Settings of the HTTP service: a TOML file, environment variables, command-line flags.

Precedence, highest first: command-line flags, environment variables, the settings file,
the defaults below. Keys never come from the command line (it shows in ``ps``).

Examples
--------
>>> s = ServiceSettings.model_validate({"auth": {"api_keys": {"web": "k" * 32}}})
>>> s.limits.max_texts, sorted(s.auth.api_keys)
(16, ['web'])
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass

from usergroups.datasets import DataSource, SourceKeys
from usergroups.errors import ConfigError

__all__ = [
    "ADMIN_KEYS_ENV",
    "API_KEYS_ENV",
    "EVENTS_URL_ENV",
    "MAX_AUTO_WORKERS",
    "MIN_KEY_LENGTH",
    "AuthSettings",
    "EventSettings",
    "LimitSettings",
    "RefitSettings",
    "ServiceSettings",
    "default_events_url",
    "load_settings",
    "parse_keys",
]

API_KEYS_ENV = "USERGROUPS_API_KEYS"
"""``name:key,name:key`` (or bare keys, named ``key1, key2, ...``) for the read/write API."""
ADMIN_KEYS_ENV = "USERGROUPS_ADMIN_KEYS"
"""Keys that may also call ``POST /refit``; same format."""
EVENTS_URL_ENV = "USERGROUPS_EVENTS_URL"
"""Event store URL: ``sqlite:///path/events.sqlite3`` or ``postgresql://user@host/db``."""
MIN_KEY_LENGTH = 16
"""Shorter keys are refused: they can be guessed."""
MAX_AUTO_WORKERS = 4
"""The most worker processes ``workers = "auto"`` starts (each holds its own encoder)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuthSettings(_Section):
    """Who may call the API."""

    api_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="name -> key; names appear in logs, keys never"
    )
    admin_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="name -> key for POST /refit (and everything else)"
    )
    anonymous: bool = Field(
        False, description="serve without keys (local development only); /refit stays closed"
    )
    public_metrics: bool = Field(True, description="GET /metrics without a key")

    @field_validator("api_keys", "admin_keys")
    @classmethod
    def _check_keys(cls, v: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, key in v.items():
            if len(key.get_secret_value()) < MIN_KEY_LENGTH:
                raise ValueError(
                    f"key {name!r} is shorter than {MIN_KEY_LENGTH} characters; generate one "
                    "with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
        return v


class LimitSettings(_Section):
    """Request limits; anything beyond them gets a 413 or 429 in the error shape."""

    max_body_bytes: int = Field(1_048_576, ge=1024, description="request body size")
    max_texts: int = Field(16, ge=1, description="texts in one POST /assign")
    max_chars: int = Field(20_000, ge=1, description="characters of text in one request")
    max_items: int = Field(500, ge=1, description="items in one POST /assign")
    max_events: int = Field(1000, ge=1, description="events in one POST /events")
    max_n: int = Field(100, ge=1, description="recommendations per answer")
    max_url_bytes: int = Field(
        8192, ge=256, description="request line's URL (path and query); longer: 414"
    )
    max_header_bytes: int = Field(
        32_768, ge=1024, description="request headers, names and values in all; more: 431"
    )
    min_rating: float = Field(
        -1000.0, allow_inf_nan=False, description="lowest event rating accepted (else 400)"
    )
    max_rating: float = Field(
        1000.0, allow_inf_nan=False, description="highest event rating accepted (else 400)"
    )

    @model_validator(mode="after")
    def _rating_range(self) -> LimitSettings:
        if self.min_rating > self.max_rating:
            raise ValueError(
                f"min_rating {self.min_rating} is above max_rating {self.max_rating}; set "
                "them to the lowest and highest rating of your data (e.g. 1 and 5)"
            )
        return self

    rate_per_s: float = Field(100.0, gt=0, description="sustained requests per second per key")
    burst: int = Field(200, ge=1, description="requests a key may send at once")
    wrong_key_burst: int = Field(
        10, ge=1, description="wrong API keys a client address may send before it is slowed"
    )
    wrong_key_rate_per_s: float = Field(
        0.1, gt=0, description="wrong API keys per second per client address, sustained"
    )


class EventSettings(_Section):
    """Where events are stored."""

    url: str | None = Field(
        None,
        description="sqlite:///path or postgresql://...; default: SQLite file beside the model "
        "(runs/x.events.sqlite3)",
    )
    sync_interval_s: float = Field(
        0.0,
        ge=0.0,
        description="poll the store for other instances' events this often (0: never; set it "
        "when several instances share a PostgreSQL store)",
    )


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class RefitSettings(DataSource):
    """The data POST /refit refits on (the log the model was fitted on): a
    :class:`~usergroups.datasets.DataSource` whose keys are the CLI's options (the
    registered dataset is ``dataset``, as ``--dataset``), plus ``min_overlap``.

    >>> ServiceSettings.model_validate({"refit": {"dataset": "ml-100k"}}).refit.dataset_name
    'ml-100k'
    """

    keys = SourceKeys("[refit] dataset", "interactions/texts", verb="set", equals=" = ")

    min_overlap: float = Field(
        default=0.2,
        gt=0.0,
        le=1.0,
        description="smallest member overlap (Jaccard) that keeps an id",
    )

    @model_validator(mode="before")
    @classmethod
    def _dataset_key(cls, data: Any) -> Any:
        # the settings file says `dataset`, like the CLI's --dataset; the field is dataset_name
        if not isinstance(data, Mapping):
            return data
        if "dataset_name" in data:
            raise ValueError("dataset_name is not a key of [refit]; write dataset = NAME")
        data = dict(data)
        if "dataset" in data:
            data["dataset_name"] = data.pop("dataset")
        return data

    @model_validator(mode="after")
    def _one_source(self) -> RefitSettings:
        # none is allowed (POST /refit answers 503), a dataset and files together are not
        if self.names_data:
            self.check()
        return self

    @property
    def configured(self) -> bool:
        return self.names_data


class ServiceSettings(_Section):
    """Everything ``usergroups serve`` needs besides the model directory."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    workers: int | Literal["auto"] = Field(
        "auto",
        description="server processes sharing the port; auto: one per core, at most "
        f"{MAX_AUTO_WORKERS}, and 1 when a mode needs a single process (refits, a PostgreSQL "
        "store without sync_interval_s)",
    )
    assign_batch_size: int = Field(
        32, ge=1, description="texts encoded together from concurrent requests"
    )
    assign_batch_wait_ms: float = Field(
        2.0, ge=0.0, description="how long the first text waits for others to batch with"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses of reverse proxies whose X-Forwarded-For header is believed; "
        "empty (the default): the client address is the connection's, so nobody can fake it "
        "to dodge the per-address limits",
    )
    auth: AuthSettings = AuthSettings()
    limits: LimitSettings = LimitSettings()
    events: EventSettings = EventSettings()
    refit: RefitSettings = RefitSettings()

    @field_validator("workers", mode="before")
    @classmethod
    def _check_workers(cls, v: Any) -> Any:
        value = v.strip().lower() if isinstance(v, str) else v
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if value == "auto" or (
            isinstance(value, int) and not isinstance(value, bool) and value >= 1
        ):
            return value
        raise ValueError(f"workers is {v!r}; pass a number of processes >= 1, or 'auto'")


def parse_keys(raw: str, prefix: str = "key") -> dict[str, str]:
    """``"web:abc,ops:def"`` -> ``{"web": "abc", "ops": "def"}``; bare keys get names.

    Examples
    --------
    >>> parse_keys("web:aaa, bbb")
    {'web': 'aaa', 'key2': 'bbb'}
    """
    out: dict[str, str] = {}
    for i, part in enumerate((p.strip() for p in raw.split(",")), start=1):
        if not part:
            continue
        name, sep, key = part.partition(":")
        if not sep:
            name, key = f"{prefix}{i}", part
        out[name.strip()] = key.strip()
    return out


def default_events_url(model_dir: str | Path) -> str:
    """The SQLite file beside the model: ``runs/x`` -> ``sqlite:///…/runs/x.events.sqlite3``.

    Beside, not inside: a refit replaces the model directory as a whole.
    """
    path = Path(model_dir).resolve()
    return f"sqlite:///{path.with_name(path.name + '.events.sqlite3')}"


def load_settings(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServiceSettings:
    """Read the settings file (TOML), then the environment, then ``overrides``.

    Parameters
    ----------
    path : str or Path, optional
        A TOML file with the sections of :class:`ServiceSettings`.
    env : mapping, optional
        Defaults to ``os.environ``; reads :data:`API_KEYS_ENV`, :data:`ADMIN_KEYS_ENV`
        and :data:`EVENTS_URL_ENV`.
    overrides : mapping, optional
        Dotted keys, e.g. ``{"port": 8080, "events.url": "sqlite:///e.db"}``.

    Raises
    ------
    ConfigError
        If the file cannot be read or a value is invalid.
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read settings file {p}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"settings file {p} is not valid TOML: {exc}") from exc
    auth = data.setdefault("auth", {})
    if env.get(API_KEYS_ENV):
        auth["api_keys"] = {**auth.get("api_keys", {}), **parse_keys(env[API_KEYS_ENV])}
    if env.get(ADMIN_KEYS_ENV):
        auth["admin_keys"] = {
            **auth.get("admin_keys", {}),
            **parse_keys(env[ADMIN_KEYS_ENV], prefix="admin"),
        }
    if env.get(EVENTS_URL_ENV):
        data.setdefault("events", {})["url"] = env[EVENTS_URL_ENV]
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    try:
        return ServiceSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        source = str(path) if path is not None else "settings"
        raise ConfigError(f"{source} is invalid: {problems}") from None

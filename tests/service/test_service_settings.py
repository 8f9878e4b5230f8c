"""Settings, keys, rate limits, and the last-resort 500 (in-process, on a real app)."""

from __future__ import annotations

import json

import httpx
import pytest
from service_support import API_KEY, assert_error

from usergroups.errors import ConfigError
from usergroups.service.security import KeyRing, RateLimiter
from usergroups.service.settings import load_settings, parse_keys


def test_settings_file_then_environment_then_overrides(tmp_path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(
        "port = 9000\n[limits]\nmax_texts = 4\n[auth.api_keys]\nfile = 'f" + "x" * 20 + "'\n"
    )
    env = {"USERGROUPS_API_KEYS": "web:" + "w" * 20, "USERGROUPS_EVENTS_URL": "sqlite:///e.db"}
    s = load_settings(path, env=env, overrides={"port": 9100, "host": None})
    assert s.port == 9100 and s.limits.max_texts == 4
    assert sorted(s.auth.api_keys) == ["file", "web"]
    assert s.events.url == "sqlite:///e.db"


def test_short_keys_are_refused_without_echoing_them(tmp_path) -> None:
    with pytest.raises(ConfigError, match="shorter than 16") as info:
        load_settings(env={"USERGROUPS_API_KEYS": "web:tiny-secret"})
    assert "tiny-secret" not in str(info.value)


def test_bad_settings_files_name_the_problem(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[limits]\nmax_texts = 0\n")
    with pytest.raises(ConfigError, match=r"limits\.max_texts"):
        load_settings(bad, env={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml", env={})


def test_parse_keys_names_bare_keys() -> None:
    assert parse_keys("a:1, 2 ,,b:3") == {"a": "1", "key2": "2", "b": "3"}


def test_keyring_checks_every_key_and_tells_admin_apart() -> None:
    ring = KeyRing({"web": "w" * 20, "app": "a" * 20}, {"ops": "o" * 20})
    assert ring.identify("a" * 20) == ("app", False)
    assert ring.identify("o" * 20) == ("ops", True)
    assert ring.identify("w" * 19) is None and ring.identify("") is None
    assert ring.has_admin and len(ring) == 3


def test_rate_limiter_refills_over_time() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=2)
    assert [limiter.allow("k", now=0.0)[0] for _ in range(3)] == [True, True, False]
    allowed, wait = limiter.allow("k", now=0.1)
    assert not allowed and wait == pytest.approx(0.4)
    assert limiter.allow("k", now=0.6)[0]
    assert limiter.allow("other", now=0.6)[0]


@pytest.mark.timeout(120)
def test_an_unexpected_error_is_a_500_without_trace_or_path(fitted_model_dir, tmp_path) -> None:
    from usergroups.service.app import create_app
    from usergroups.service.state import ServiceState

    settings = load_settings(
        env={"USERGROUPS_API_KEYS": f"t:{API_KEY}"},
        overrides={"events.url": f"sqlite:///{tmp_path}/e.sqlite3"},
    )
    state = ServiceState(fitted_model_dir, settings).open()
    app = create_app(state)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError(f"secret detail in {fitted_model_dir}/arrays.npz")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get("/boom", headers={"X-Request-ID": "req-500"})

    import asyncio

    try:
        response = asyncio.run(call())
    finally:
        state.close()
    err = assert_error(response, 500, "internal_error")
    assert "req-500" in err["message"]
    assert "secret" not in json.dumps(response.json())
    assert response.headers["x-request-id"] == "req-500"


def test_no_keys_and_not_anonymous_refuses_to_start(fitted_model_dir, tmp_path) -> None:
    from usergroups.service.app import create_app
    from usergroups.service.state import ServiceState

    settings = load_settings(env={}, overrides={"events.url": f"sqlite:///{tmp_path}/e.db"})
    state = ServiceState(fitted_model_dir, settings).open()
    try:
        with pytest.raises(ConfigError, match="no API keys"):
            create_app(state)
    finally:
        state.close()


def test_issue22_a_rating_range_upside_down_is_refused(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[limits]\nmin_rating = 5\nmax_rating = 1\n")
    with pytest.raises(ConfigError, match=r"min_rating 5\.0 is above max_rating 1\.0"):
        load_settings(bad, env={})
    bad.write_text("[limits]\nmax_header_bytes = 10\n")
    with pytest.raises(ConfigError, match=r"limits\.max_header_bytes"):
        load_settings(bad, env={})


def _refit_toml(tmp_path, body: str):
    path = tmp_path / "serve.toml"
    path.write_text("[refit]\n" + body, encoding="utf-8")
    return path


def test_issue21_refit_refuses_a_dataset_and_files_together(tmp_path) -> None:
    """``[refit]`` took a dataset and files together and silently ignored the files."""
    path = _refit_toml(tmp_path, "dataset = 'ml-100k'\ntexts = 'reviews.csv'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "refit" in str(info.value)
    assert "set either [refit] dataset or interactions/texts, not both" in str(info.value)


def test_issue21_refit_on_bad_lines_reaches_the_reader(tmp_path) -> None:
    """``[refit]`` had no on_bad_lines: a log with one bad line could never be refitted on."""
    from usergroups.errors import DataError
    from usergroups.service.state import load_refit_data

    reviews = tmp_path / "reviews.csv"
    reviews.write_text(
        "user_id,item_id,text\nu1,i1,loved it\nu3,i2,too,many,fields\nu2,i1,too loud\n",
        encoding="utf-8",
    )
    strict = load_settings(_refit_toml(tmp_path, f"texts = '{reviews}'\n"), env={})
    assert strict.refit.on_bad_lines == "error"
    with pytest.raises(DataError):
        load_refit_data(strict)
    lenient = load_settings(
        _refit_toml(tmp_path, f"texts = '{reviews}'\non_bad_lines = 'skip'\n"), env={}
    )
    ds = load_refit_data(lenient)
    assert ds.n_users == 2
    assert ds.report.entries and ds.report.entries[0][0] == "reviews.csv"


def test_refit_keeps_its_settings_keys(tmp_path) -> None:
    path = _refit_toml(
        tmp_path,
        "dataset = 'ml-100k'\ndata_dir = '/data'\nmin_overlap = 0.5\n"
        "mapping = 'user_id=who'\nencoding = 'latin-1'\n",
    )
    refit = load_settings(path, env={}).refit
    assert (refit.dataset_name, refit.data_dir, refit.min_overlap) == ("ml-100k", "/data", 0.5)
    assert (refit.mapping, refit.encoding, refit.configured) == ("user_id=who", "latin-1", True)
    assert not load_settings(env={}).refit.configured


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("dataset_name = 'ml-100k'\n", "write dataset = NAME"),
        ("on_bad_lines = 'maybe'\n", r"refit\.on_bad_lines: Input should be 'error' or 'skip'"),
        ("texts = 'r.csv'\nmin_overlap = 0\n", r"refit\.min_overlap"),
        ("sheet = 'r.csv'\n", r"refit\.sheet"),
    ],
)
def test_bad_refit_keys_name_the_problem(tmp_path, body: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(_refit_toml(tmp_path, body), env={})


def test_refit_without_data_says_which_keys_to_set() -> None:
    from usergroups.service.state import load_refit_data

    with pytest.raises(ConfigError, match=r"set \[refit\] dataset = NAME or interactions/texts"):
        load_refit_data(load_settings(env={}))

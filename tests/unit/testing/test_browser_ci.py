"""Chromium under CI: missing means failing, not skipping (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from usergroups.testing import browser


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setattr(browser, "_DEBIAN_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)


def test_no_chromium_outside_ci_is_none_and_skips(
    no_chromium: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert browser.find_chromium() is None
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        browser.require_chromium()


def test_issue13_no_chromium_under_ci_fails_instead_of_skipping(
    no_chromium: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(browser.BrowserError, match="CI=true but no Chromium"):
        browser.find_chromium()
    with pytest.raises(browser.BrowserError):
        browser.require_chromium()


def test_chromium_from_the_environment_wins(
    no_chromium: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    binary = tmp_path / "chrome"
    binary.write_text("")
    monkeypatch.setenv("CHROMIUM", str(binary))
    monkeypatch.setenv("CI", "true")
    assert browser.find_chromium() == str(binary)

"""Open a page in headless Chromium and report console errors and network requests.

Talks the DevTools protocol over ``--remote-debugging-pipe`` (file descriptors 3 and 4,
JSON messages ending in NUL), so it needs no websocket package and opens no port. Used by
the report tests and to take the screenshots in the docs.

Examples
--------
>>> check = open_page("report.html", screenshot="shot.png")  # doctest: +SKIP
>>> local = ("file:", "data:")
>>> check.errors, [u for u in check.requests if not u.startswith(local)]  # doctest: +SKIP
([], [])
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from usergroups.errors import UserGroupsError

__all__ = ["BrowserError", "PageCheck", "find_chromium", "open_page", "require_chromium"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_DEBIAN_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
)


class BrowserError(UserGroupsError, RuntimeError):
    """Chromium could not be started or did not answer."""


@dataclass
class PageCheck:
    """What happened while a page loaded.

    Attributes
    ----------
    errors : list of str
        Console errors, uncaught exceptions and error log entries (CSP violations, failed
        loads).
    messages : list of str
        Every console message, ``"type: text"``.
    requests : list of str
        URL of every request the page made, the page itself included.
    plots : int
        Plotly plots drawn (elements with class ``js-plotly-plot`` that hold an SVG).
    title : str
    screenshot : Path or None
    """

    errors: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    plots: int = 0
    title: str = ""
    screenshot: Path | None = None

    @property
    def external_requests(self) -> list[str]:
        """Requests to anything but ``file:``, ``data:``, ``blob:`` and ``about:`` URLs."""
        return [u for u in self.requests if not u.startswith(("file:", "data:", "blob:", "about:"))]


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary: ``$CHROMIUM``, /usr/bin/chromium, or on PATH.

    None when there is none, except under CI (``CI=true``): ``.ci/run`` installs Chromium,
    so there a missing browser raises :class:`BrowserError` and the browser tests fail
    instead of skipping in a green run (issue 13).
    """
    env = os.environ.get("CHROMIUM")
    if env and Path(env).exists():
        return env
    if Path(_DEBIAN_CHROMIUM).exists():
        return _DEBIAN_CHROMIUM
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    if _in_ci():
        raise BrowserError(
            "CI=true but no Chromium was found ($CHROMIUM, /usr/bin/chromium or "
            f"{', '.join(_CANDIDATES)} on PATH); .ci/run installs it (apt-get install "
            "chromium), and in CI the browser tests fail rather than skip"
        )
    return None


def require_chromium() -> str:
    """For tests: the Chromium binary, or skip the calling test when there is none.

    Under CI (``CI=true``) a missing browser fails the test instead (see
    :func:`find_chromium`).
    """
    import pytest

    binary = find_chromium()
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it")
    return binary


class _Pipe:
    """A DevTools session over the two pipes."""

    def __init__(self, to_browser: int, from_browser: int, timeout_s: float) -> None:
        self.to_browser = to_browser
        self.from_browser = from_browser
        self.timeout_s = timeout_s
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any] | None:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.from_browser], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        self.next_id += 1
        msg_id = self.next_id
        payload = {"id": msg_id, "method": method, "params": params or {}, **extra}
        os.write(self.to_browser, json.dumps(payload).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            message = self._read_message(deadline)
            if message is None:
                raise BrowserError(f"no answer to {method} within {self.timeout_s:.0f}s")
            if message.get("id") == msg_id:
                if "error" in message:
                    raise BrowserError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def pump(self, seconds: float, until: str | None = None) -> bool:
        """Collect events for ``seconds``, or until an event named ``until`` arrives."""
        deadline = time.monotonic() + seconds
        while True:
            message = self._read_message(deadline)
            if message is None:
                return False
            if "method" in message:
                self.events.append(message)
                if until is not None and message["method"] == until:
                    return True


def _console_text(params: dict[str, Any]) -> str:
    parts = []
    for arg in params.get("args", []):
        parts.append(str(arg.get("value", arg.get("description", ""))))
    return " ".join(parts)


def open_page(
    page: str | Path,
    *,
    screenshot: str | Path | None = None,
    width: int = 1280,
    height: int = 2000,
    chromium: str | None = None,
    timeout_s: float = 60.0,
    settle_s: float = 1.5,
) -> PageCheck:
    """Load ``page`` (a file path or URL) in headless Chromium and report what happened.

    Parameters
    ----------
    page : path or str
        A local file (opened as ``file://``) or a URL.
    screenshot : path, optional
        Where to save a PNG of the ``width`` × ``height`` viewport.
    width, height : int
    chromium : str, optional
        The browser binary; default :func:`find_chromium`.
    timeout_s : float
        Longest wait for the browser and for the page's load event.
    settle_s : float
        Time to keep listening after the load event (late requests, async errors).

    Returns
    -------
    PageCheck

    Raises
    ------
    BrowserError
        No browser, or it did not start or answer.
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise BrowserError("no Chromium found; install it (apt-get install chromium)")
    url = str(page)
    if "://" not in url:
        url = Path(page).resolve().as_uri()
    profile = Path(tempfile.mkdtemp(prefix="usergroups-chromium-"))
    proc, cmd_w, res_r = _launch(binary, profile, width, height)
    check = PageCheck()
    closing = False
    try:
        pipe = _Pipe(cmd_w, res_r, timeout_s)
        call = _attach(pipe)
        _navigate(call, pipe, url, width, height, timeout_s, settle_s)
        check.title, check.plots = _probe(call)
        if screenshot is not None:
            check.screenshot = _screenshot(call, Path(screenshot))
        pipe.pump(0.2)
        _record_events(pipe.events, check)
        closing = True
        # it may close the pipe before it answers
        with contextlib.suppress(BrowserError):
            pipe.send("Browser.close")
    finally:
        try:
            proc.wait(timeout=10 if closing else 0.1)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        os.close(cmd_w)
        os.close(res_r)
        shutil.rmtree(profile, ignore_errors=True)
    return check


def _launch(
    binary: str, profile: Path, width: int, height: int
) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start Chromium with its DevTools pipe on file descriptors 3 (commands in) and 4
    (results out); the browser process, our command end and our result end."""
    cmd_r, cmd_w = os.pipe()
    res_r, res_w = os.pipe()
    # park the child's ends above 2..4 so the dup2 calls below cannot clobber each other
    child_in = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
    child_out = fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)

    def _wire_fds() -> None:
        os.dup2(child_in, 3)
        os.dup2(child_out, 4)

    proc = subprocess.Popen(
        [
            binary,
            *CHROMIUM_FLAGS,
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_wire_fds,
        close_fds=False,
    )
    for fd in (cmd_r, res_w, child_in, child_out):
        os.close(fd)
    return proc, cmd_w, res_r


def _attach(pipe: _Pipe) -> Callable[..., Any]:
    """A new tab, and a function that sends a command to it."""
    target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def call(method: str, params: dict[str, Any] | None = None) -> Any:
        return pipe.send(method, params, sessionId=session)

    return call


def _navigate(
    call: Callable[..., Any],
    pipe: _Pipe,
    url: str,
    width: int,
    height: int,
    timeout_s: float,
    settle_s: float,
) -> None:
    """Listen to the page, size the viewport, load ``url``, then listen ``settle_s`` more."""
    for domain in ("Page", "Runtime", "Log", "Network"):
        call(f"{domain}.enable")
    call(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    pipe.events.clear()
    call("Page.navigate", {"url": url})
    if not pipe.pump(timeout_s, until="Page.loadEventFired"):
        raise BrowserError(f"{url} did not finish loading within {timeout_s:.0f}s")
    pipe.pump(settle_s)


def _probe(call: Callable[..., Any]) -> tuple[str, int]:
    """The page's title and the number of Plotly plots drawn."""
    probe = call(
        "Runtime.evaluate",
        {
            "expression": "JSON.stringify({title: document.title, plots: "
            "document.querySelectorAll('.js-plotly-plot .main-svg').length})",
            "returnByValue": True,
        },
    )
    found = json.loads(probe.get("result", {}).get("value") or "{}")
    return str(found.get("title", "")), int(found.get("plots", 0))


def _screenshot(call: Callable[..., Any], path: Path) -> Path:
    """A PNG of the viewport, saved at ``path``."""
    shot = call("Page.captureScreenshot", {"format": "png"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def _record_events(events: list[dict[str, Any]], check: PageCheck) -> None:
    """Console messages, errors and requests from the DevTools events, into ``check``."""
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = _console_text(params)
            check.messages.append(f"{params.get('type')}: {text}")
            if params.get("type") in ("error", "assert"):
                check.errors.append(f"console.{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            desc = details.get("exception", {}).get("description") or details.get("text")
            check.errors.append(f"exception: {desc}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                check.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            check.requests.append(str(params.get("request", {}).get("url", "")))


def main(argv: list[str] | None = None) -> int:
    """``python -m usergroups.testing.browser PAGE [--screenshot PNG]``: check a page.

    Prints the errors and external requests; exit code 1 when there are any.
    """
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("page", help="an HTML file or a URL")
    parser.add_argument("--screenshot", help="save a PNG of the viewport here")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000)
    args = parser.parse_args(argv)
    out = sys.stdout
    check = open_page(args.page, screenshot=args.screenshot, width=args.width, height=args.height)
    for line in check.errors:
        out.write(f"error: {line}\n")
    for url in check.external_requests:
        out.write(f"external request: {url}\n")
    out.write(
        f"{check.plots} plot layers, {len(check.errors)} errors, "
        f"{len(check.external_requests)} external requests"
        + (f"; screenshot {check.screenshot}" if check.screenshot else "")
        + "\n"
    )
    return 1 if check.errors or check.external_requests else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""API keys compared in constant time, and a token-bucket rate limit per key.

Examples
--------
>>> keys = KeyRing({"web": "w" * 20}, {"ops": "o" * 20})
>>> keys.identify("w" * 20), keys.identify("o" * 20), keys.identify("nope")
(('web', False), ('ops', True), None)
>>> limiter = RateLimiter(rate_per_s=1.0, burst=2)
>>> [limiter.allow("web", now=0.0)[0] for _ in range(3)]
[True, True, False]
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["KeyRing", "RateLimiter", "SharedBuckets", "WrongKeyLimiter"]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class KeyRing:
    """Named API keys and admin keys.

    Keys are kept as SHA-256 digests and compared with :func:`hmac.compare_digest`; every
    key is compared on every call (no early exit), so the time taken says nothing about
    which key, or how much of one, matched.

    Parameters
    ----------
    api_keys, admin_keys : mapping of name -> key
    """

    def __init__(self, api_keys: Mapping[str, str], admin_keys: Mapping[str, str]) -> None:
        self._keys = [(name, _digest(k), False) for name, k in api_keys.items()]
        self._keys += [(name, _digest(k), True) for name, k in admin_keys.items()]

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def has_admin(self) -> bool:
        return any(admin for _, _, admin in self._keys)

    def identify(self, presented: str | None) -> tuple[str, bool] | None:
        """``(name, is_admin)`` of the key presented, or None."""
        if not presented:
            return None
        given = _digest(presented)
        found: tuple[str, bool] | None = None
        for name, digest, admin in self._keys:
            if hmac.compare_digest(given, digest) and found is None:
                found = (name, admin)
        return found


class SharedBuckets:
    """Token buckets in shared memory, so several worker processes count as one server.

    A fixed table of ``slots`` buckets (tokens, last update); a client's slot is a stable
    hash of its name. Two clients that share a slot share a bucket: a collision makes the
    limit stricter, never looser. Made before the workers start and handed to each; the
    clock is ``time.monotonic``, one clock for every process of the machine.

    Parameters
    ----------
    slots : int
    context : multiprocessing context, optional
        The one the workers are started with (default ``spawn``).
    """

    def __init__(self, slots: int = 65_536, context: Any = None) -> None:
        import multiprocessing

        ctx = context or multiprocessing.get_context("spawn")
        self.slots = int(slots)
        self.lock = ctx.Lock()
        # per slot: tokens, time of the last update (0.0: never used, a full bucket)
        self.table = ctx.RawArray("d", 2 * self.slots)

    def slot(self, client: str) -> int:
        digest = hashlib.blake2b(client.encode("utf-8", "surrogatepass"), digest_size=8)
        return int.from_bytes(digest.digest(), "little") % self.slots

    def get(self, client: str, default: tuple[float, float]) -> tuple[float, float]:
        """The bucket of ``client`` (call with :attr:`lock` held)."""
        i = 2 * self.slot(client)
        last = self.table[i + 1]
        return default if last == 0.0 else (self.table[i], last)

    def put(self, client: str, tokens: float, last: float) -> None:
        i = 2 * self.slot(client)
        self.table[i], self.table[i + 1] = tokens, last


class RateLimiter:
    """A token bucket per client: ``burst`` requests at once, ``rate_per_s`` sustained.

    Parameters
    ----------
    rate_per_s : float
    burst : int
    max_clients : int
        Buckets kept; the least recently used is dropped beyond it (a full bucket again).
    shared : SharedBuckets, optional
        Keep the buckets there instead (several worker processes, one limit).
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        max_clients: int = 100_000,
        shared: SharedBuckets | None = None,
    ) -> None:
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._shared = shared
        self._lock: Any = shared.lock if shared is not None else threading.Lock()

    def _take(self, client: str, default: tuple[float, float]) -> tuple[float, float]:
        if self._shared is not None:
            return self._shared.get(client, default)
        return self._buckets.pop(client, default)

    def _put(self, client: str, tokens: float, last: float) -> None:
        if self._shared is not None:
            self._shared.put(client, tokens, last)
            return
        # dicts keep insertion order and pop/re-insert moves a client to the end
        self._buckets.pop(client, None)
        self._buckets[client] = (tokens, last)
        if len(self._buckets) > self.max_clients:
            self._buckets.pop(next(iter(self._buckets)))

    def allow(self, client: str, *, now: float | None = None) -> tuple[bool, float]:
        """Take one token; return ``(allowed, seconds until a token is free)``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._take(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate_per_s)
            if tokens >= 1.0:
                self._put(client, tokens - 1.0, now)
                allowed, wait = True, 0.0
            else:
                self._put(client, tokens, now)
                allowed, wait = False, (1.0 - tokens) / self.rate_per_s
        return allowed, wait


class WrongKeyLimiter(RateLimiter):
    """Wrong API keys per client address: a token bucket that slows guessing.

    An address may send ``burst`` wrong keys, then one more every ``1 / rate_per_s``
    seconds. While its bucket is empty, its requests that present a key get 429 before the
    key is compared, so a guess is not even tried (answering a right guess 200 and a wrong
    one 429 would let guessing go on at full speed). Other addresses are not affected.

    The buckets are :class:`RateLimiter`'s; only what takes a token differs (a failure,
    not a request). Parameters as :class:`RateLimiter`.

    Examples
    --------
    >>> limiter = WrongKeyLimiter(rate_per_s=0.5, burst=2)
    >>> limiter.failed("10.0.0.1", now=0.0); limiter.failed("10.0.0.1", now=0.0)
    >>> limiter.wait("10.0.0.1", now=0.0), limiter.wait("10.0.0.1", now=2.0)
    (2.0, 0.0)
    >>> limiter.wait("10.0.0.2", now=0.0)
    0.0
    """

    def _tokens(self, client: str, now: float) -> float:
        if self._shared is not None:
            tokens, last = self._shared.get(client, (self.burst, now))
        else:
            tokens, last = self._buckets.get(client, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate_per_s)

    def wait(self, client: str, *, now: float | None = None) -> float:
        """Seconds until ``client`` may present a key again (0.0: now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens = self._tokens(client, now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate_per_s

    def failed(self, client: str, *, now: float | None = None) -> None:
        """Count one wrong key from ``client``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens = self._tokens(client, now)
            self._put(client, max(tokens - 1.0, 0.0), now)

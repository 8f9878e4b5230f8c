"""Prometheus metrics of one service instance (its own registry, so tests can run several).

With several worker processes, ``$PROMETHEUS_MULTIPROC_DIR`` is set before they start
(:mod:`.workers`): every worker then writes its counts to files there and ``GET /metrics``
from any worker adds up all of them (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
from typing import Any

from usergroups._deps import require

__all__ = ["MULTIPROC_ENV", "ServiceMetrics"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Set (by the supervisor) before a worker imports prometheus_client: multiprocess mode."""

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class ServiceMetrics:
    """Requests, latencies, assignments per group, events, refits.

    Exposed at ``GET /metrics`` in the Prometheus text format.
    """

    def __init__(self) -> None:
        prom = require("prometheus_client", "serve", package="prometheus-client")
        self._prom = prom
        self.shared_dir = os.environ.get(MULTIPROC_ENV) or None
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.requests = prom.Counter(
            "usergroups_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = prom.Histogram(
            "usergroups_http_request_duration_seconds",
            "Time from the request's arrival to the end of the response",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.assignments = prom.Counter(
            "usergroups_assignments",
            "Users placed into a group, by group and by how (assign: a new user's text; "
            "event: a user updated by an event)",
            ["group_id", "source"],
            registry=r,
        )
        self.events = prom.Counter(
            "usergroups_events", "Events received, by result", ["result"], registry=r
        )
        self.refits = prom.Counter("usergroups_refits", "Refits, by result", ["result"], registry=r)
        # with several workers: the largest of the live workers' values (each catches up
        # on the others' events before it answers)
        self.online_users = prom.Gauge(
            "usergroups_online_users",
            "Users changed by events since the model",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model_info = prom.Gauge(
            "usergroups_model_info",
            "The model being served",
            ["version"],
            registry=r,
            multiprocess_mode="livemax",
        )

    def set_model(self, version: str) -> None:
        if self.shared_dir is None:  # several workers never swap models (no refits)
            self.model_info.clear()
        self.model_info.labels(version=version).set(1)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type (every worker's counts, added up)."""
        registry = self.registry
        if self.shared_dir is not None:
            from prometheus_client import multiprocess

            registry = self._prom.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.shared_dir)
        data: Any = self._prom.generate_latest(registry)
        return bytes(data), str(self._prom.CONTENT_TYPE_LATEST)

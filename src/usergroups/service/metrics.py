"""Prometheus metrics of one service instance (its own registry, so tests can run several)."""

from __future__ import annotations

from typing import Any

from usergroups._deps import require

__all__ = ["ServiceMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class ServiceMetrics:
    """Requests, latencies, assignments per group, events, refits.

    Exposed at ``GET /metrics`` in the Prometheus text format.
    """

    def __init__(self) -> None:
        prom = require("prometheus_client", "serve", package="prometheus-client")
        self._prom = prom
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
        self.online_users = prom.Gauge(
            "usergroups_online_users", "Users changed by events since the model", registry=r
        )
        self.model_info = prom.Gauge(
            "usergroups_model_info", "The model being served", ["version"], registry=r
        )

    def set_model(self, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(version=version).set(1)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        data: Any = self._prom.generate_latest(self.registry)
        return bytes(data), str(self._prom.CONTENT_TYPE_LATEST)

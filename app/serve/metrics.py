"""Prometheus metrics at ``/metrics``: requests, latencies, faces, queue depth, streams, jobs.

Each app has its own registry (several servers in one process, as in the tests, do not mix).
Requests are labelled by route template (``/v1/jobs/{job_id}``), not by URL, so job IDs do not
create a series each.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Metrics:
    """The service's collectors on one registry; ``queue_depth`` and ``jobs`` are read at scrape time."""

    def __init__(self, queue_depth: Callable[[], float], jobs: Callable[[], float], streams: Callable[[], float]):
        self.registry = CollectorRegistry()
        self.requests = Counter("emolens_requests_total", "HTTP requests by route, method and status",
                                ("route", "method", "status"), registry=self.registry)
        self.latency = Histogram("emolens_request_seconds", "HTTP request latency by route", ("route",),
                                 buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.faces = Counter("emolens_faces_total", "faces analysed, by endpoint", ("endpoint",),
                             registry=self.registry)
        self.frames = Counter("emolens_stream_frames_total", "stream frames received, by outcome", ("outcome",),
                              registry=self.registry)
        self.queue_depth = Gauge("emolens_queue_depth", "image requests in the service (uploading, waiting, running)",
                                 registry=self.registry)
        self.queue_depth.set_function(queue_depth)
        self.jobs = Gauge("emolens_jobs_active", "video jobs queued or running", registry=self.registry)
        self.jobs.set_function(jobs)
        self.streams = Gauge("emolens_streams_open", "WebSocket streams open", registry=self.registry)
        self.streams.set_function(streams)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request (not WebSocket frames, which have their own counter)."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status["code"])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

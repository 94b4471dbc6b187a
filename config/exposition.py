"""The Prometheus text of this host: `/metrics` on daphne, and the Celery worker's
exporter (METRICS_WORKER_PORT). Both are protected by METRICS_TOKEN (bearer).

With PROMETHEUS_MULTIPROC_DIR, the text adds up the values every process of the
host wrote there; a dead process's "open sockets" are dropped (its counters
stay: totals never go back). Readiness and the database gauges are read at
scrape time.
"""

import asyncio
import hmac
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import make_server

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, ThreadingWSGIServer, _SilentHandler

from notifications.outbox import outbox_backlog

from .readiness import readiness

logger = logging.getLogger(__name__)

# Whether the last scrape could not read the outbox (to log an outage once).
_outbox_failing = False
_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


class ReadinessCollector:
    """Readiness (config.readiness), projection lag and outbox backlog, read when
    scraped: a few index scans and a Redis PING. So alerts see what /readyz sees."""

    def collect(self) -> Iterator[Metric]:
        try:
            ready, report = asyncio.run(readiness())
        finally:
            close_old_connections()  # back to the pool (this is not a request thread)
        yield GaugeMetricFamily("chat_ready", "1 when /readyz would answer 200, else 0.", value=int(ready))
        checks = GaugeMetricFamily("chat_ready_check", "Each readiness check: 1 ok, 0 failed.", labels=["check"])
        for name, check in report["checks"].items():
            checks.add_metric([name], int(check["ok"]))
        yield checks
        if "projections" in report:
            events = GaugeMetricFamily(
                "chat_projection_lag_events",
                "Events after the projection's checkpoint (counted up to 100000).",
                labels=["projection"],
            )
            seconds = GaugeMetricFamily(
                "chat_projection_lag_seconds",
                "Age of the oldest event the projection has not applied (0: caught up).",
                labels=["projection"],
            )
            for name, lag in report["projections"].items():
                events.add_metric([name], lag["events"])
                seconds.add_metric([name], lag["seconds"])
            yield events
            yield seconds
        if not report["checks"]["database"]["ok"]:
            return  # PostgreSQL did not answer within HEALTH_TIMEOUT_SECONDS: do not wait longer here
        global _outbox_failing
        try:
            backlog = outbox_backlog()
        except DatabaseError as exc:
            # Once per outage, not every scrape (chat_ready_check tells the rest).
            if not _outbox_failing:
                logger.warning("metrics: outbox gauges skipped until PostgreSQL answers: %s", exc)
            _outbox_failing = True
            return
        finally:
            close_old_connections()
        if _outbox_failing:
            logger.info("metrics: outbox gauges back")
        _outbox_failing = False
        yield GaugeMetricFamily(
            "chat_outbox_pending", "Emails waiting to be sent (due or awaiting a retry).", value=backlog.pending
        )
        yield GaugeMetricFamily(
            "chat_outbox_overdue_seconds",
            "How long the most overdue pending email has been due (0: none).",
            value=backlog.overdue_seconds,
        )


class _ProcessCollector:
    """This process's own metrics (no PROMETHEUS_MULTIPROC_DIR: one process)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def _prune_dead(path: str) -> None:
    """Forget the live gauges of processes of this host that died without
    saying so (a SIGKILL, a crash); prometheus-client only does it when told."""
    for file in Path(path).glob("gauge_live*.db"):
        match = _LIVE_FILE.fullmatch(file.name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)
        except PermissionError:  # alive, another user's
            pass


def metrics_text() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    path = settings.PROMETHEUS_MULTIPROC_DIR
    if path:
        _prune_dead(path)
        multiprocess.MultiProcessCollector(registry, path)
    else:
        registry.register(_ProcessCollector())
    registry.register(ReadinessCollector())
    return generate_latest(registry)


def token_ok(authorization: str | None) -> bool:
    """`Authorization: Bearer <METRICS_TOKEN>`, compared in constant time."""
    token = settings.METRICS_TOKEN
    scheme, _, given = (authorization or "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    if environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not found: the metrics are at /metrics.\n"]
    if not token_ok(environ.get("HTTP_AUTHORIZATION")):
        start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
        return [b"Send Authorization: Bearer <METRICS_TOKEN>.\n"]
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
    return [metrics_text()]


def worker_exporter_start() -> None:
    """Serve /metrics from a Celery worker's main process (METRICS_WORKER_PORT), in a thread."""
    port = settings.METRICS_WORKER_PORT
    if not port:
        return
    if not settings.PROMETHEUS_MULTIPROC_DIR or not settings.METRICS_TOKEN:
        # Without the directory the pool's children (where tasks run) would be invisible.
        logger.error("worker metrics not served: set PROMETHEUS_MULTIPROC_DIR and METRICS_TOKEN")
        return
    server = make_server(
        settings.METRICS_WORKER_HOST, port, _wsgi_app, ThreadingWSGIServer, handler_class=_SilentHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics-exporter", daemon=True).start()
    logger.info("worker metrics at http://%s:%s/metrics", settings.METRICS_WORKER_HOST, port)

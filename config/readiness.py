"""Readiness: can this process serve? PostgreSQL and Redis answer within
HEALTH_TIMEOUT_SECONDS and the migrations are applied. The projections' lag is
reported but never fails readiness: a lagging email projection is no reason to
take a chat server out of the load balancer (alert on it instead)."""

import asyncio
import time
from dataclasses import asdict
from typing import Any

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from events.projections import projection_lags

# Once this process has seen every migration applied, it stops asking (they
# are never unapplied under a running server); until then it asks every probe.
_migrated = False


def _pending_migrations() -> list[str]:
    global _migrated
    if _migrated:
        return []
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    pending = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
    _migrated = not pending
    return pending


def _database(timeout: float) -> dict[str, Any]:
    """One borrowed connection, a statement timeout local to this transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{int(timeout * 1000)}ms"])
        cursor.execute("SELECT 1")
        pending = _pending_migrations()
        # The lag needs the event tables: not there before the migrations.
        lags = [] if pending else projection_lags()
    return {
        "migrations": {"ok": not pending, "pending": pending[:10], "pending_count": len(pending)},
        "projections": {lag.name: {k: v for k, v in asdict(lag).items() if k != "name"} for lag in lags},
    }


async def _redis(limit: float) -> None:
    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=limit, socket_connect_timeout=limit)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _timed(check: Any, limit: float, what: str) -> tuple[dict[str, Any], Any]:
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(check, limit)
    except TimeoutError:
        status = {"ok": False, "error": f"{what} did not answer within {limit:g} s."}
        result = None
    except Exception as exc:
        status = {"ok": False, "error": f"{what} is unavailable: {type(exc).__name__}: {exc}"[:300]}
        result = None
    else:
        status = {"ok": True}
    status["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return status, result


async def readiness() -> tuple[bool, dict[str, Any]]:
    """(ready, report): the report names each check, and `failed` lists those that failed."""
    timeout = settings.HEALTH_TIMEOUT_SECONDS
    (database, found), (redis, _) = await asyncio.gather(
        _timed(database_sync_to_async(_database, thread_sensitive=False)(timeout), timeout, "PostgreSQL"),
        _timed(_redis(timeout), timeout, "Redis"),
    )
    checks: dict[str, Any] = {"database": database, "redis": redis}
    if found is not None:
        checks["migrations"] = found["migrations"]
        if found["migrations"]["pending"]:
            checks["migrations"]["error"] = "Migrations are not applied: run manage.py migrate."
    else:
        checks["migrations"] = {"ok": False, "error": "Not checked: PostgreSQL is unavailable."}
    failed = [name for name, check in checks.items() if not check["ok"]]
    report: dict[str, Any] = {"status": "unavailable" if failed else "ok", "failed": failed, "checks": checks}
    if found is not None:
        report["projections"] = found["projections"]
    return not failed, report

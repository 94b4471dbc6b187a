"""The operators' HTTP side: `/healthz`, `/readyz`, `/metrics`, and a request
id plus HTTP metrics for every other request (README, "Operating it").

First in MIDDLEWARE and async, so the three endpoints are answered in the event
loop before any other middleware runs: no session or user is loaded, no CSRF
or locale work, no HTTPS redirect, and no ALLOWED_HOSTS check (a load balancer
or Prometheus asks by IP address; the answers do not depend on the Host header).
"""

import re
import time
import uuid
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from channels.db import database_sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import metrics
from .exposition import CONTENT_TYPE_LATEST, metrics_text, token_ok
from .logs import log_bind
from .readiness import readiness

# A request id from the proxy (nginx's $request_id) is kept if it looks like one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_NO_STORE = {"Cache-Control": "no-store"}


def _healthz() -> HttpResponse:
    return JsonResponse({"status": "ok"}, headers=_NO_STORE)


async def _readyz() -> HttpResponse:
    ready, report = await readiness()
    return JsonResponse(report, status=200 if ready else 503, headers=_NO_STORE)


async def _metrics(request: HttpRequest) -> HttpResponse:
    if not token_ok(request.headers.get("Authorization")):
        detail = (
            "Send Authorization: Bearer <METRICS_TOKEN>."
            if settings.METRICS_TOKEN
            else "Metrics are off: set METRICS_TOKEN to serve them."
        )
        return JsonResponse(
            {"error": "unauthenticated", "detail": detail}, status=401, headers={"WWW-Authenticate": "Bearer"}
        )
    text = await database_sync_to_async(metrics_text, thread_sensitive=False)()
    return HttpResponse(text, content_type=CONTENT_TYPE_LATEST, headers=_NO_STORE)


class OpsMiddleware:
    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        assert iscoroutinefunction(get_response)
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path == "/healthz":
            return _healthz()
        if path == "/readyz":
            return await _readyz()
        if path == "/metrics":
            return await _metrics(request)
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        log_bind(request_id=request_id)
        started = time.perf_counter()
        response = await self.get_response(request)
        response.headers["X-Request-ID"] = request_id
        metrics.http_answered(
            method=request.method or "", status=response.status_code, seconds=time.perf_counter() - started
        )
        return response

"""Every Prometheus metric of the product, and the one-line calls that move them.

Call sites say what happened (`metrics.socket_accepted()`); this module knows
the metric. Labels are bounded (an outcome, an error code, an event type, a task
name): never a room, a user or a path, whose values are unbounded.

With PROMETHEUS_MULTIPROC_DIR set (production: several daphne processes and
Celery workers per host), prometheus-client keeps each process's values in
memory-mapped files in that directory and `/metrics` adds them up; without it
the values live in the process (tests, a single process). The gauges read at
scrape time (readiness, projection lag, outbox backlog) are in config.exposition.

The refusal and fault helpers also write the one log line of the event, with
its fields (README, "Logs"): the call site needs one line for both.
"""

import logging
import time
import uuid

from prometheus_client import Counter, Gauge, Histogram

from .logs import log_bind, log_fields

logger = logging.getLogger("chat.ops")

# A socket's rate-limited refusals are logged at most once per this many seconds.
RATE_LIMITED_LOG_SECONDS = 10.0
# Seconds; from a fast local append to a database under strain.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SOCKETS_OPEN = Gauge("chat_sockets_open", "Chat sockets joined to a room now.", multiprocess_mode="livesum")
HANDSHAKES = Counter(
    "chat_handshakes", "Socket handshakes by outcome: accepted, or the refusal's error code.", ["outcome"]
)
FRAMES_REFUSED = Counter("chat_frames_refused", "Client frames refused, by error code.", ["code"])
RATE_LIMITED = Counter("chat_rate_limited", "Messages refused because their user was over CHAT_RATE_LIMIT.")
EVENTS_APPENDED = Counter(
    "chat_events_appended", "Events appended to the log, by type (duplicates excluded).", ["type"]
)
APPEND_SECONDS = Histogram(
    "chat_append_seconds", "Time of one event append statement in the database.", buckets=_LATENCY_BUCKETS
)
FRAMES_DELIVERED = Counter(
    "chat_frames_delivered", "Live event frames handed to this process's sockets by the room fan-out."
)
GAP_FILLS = Counter(
    "chat_gap_fills",
    "Events read from the database because a broadcast was lost or late: kind=room (per-room fill),"
    " head_check (periodic head check), socket (a socket's own fill).",
    ["kind"],
)
REPLAY_SECONDS = Histogram(
    "chat_replay_seconds", "Time to read and render a joining socket's replay.", buckets=_LATENCY_BUCKETS
)
BROADCAST_FAILURES = Counter(
    "chat_broadcast_failures", "Committed events whose broadcast failed (receivers fill them from the database)."
)
OUTBOX_SENT = Counter("chat_outbox_sent", "Emails sent from the outbox.")
OUTBOX_RETRIED = Counter("chat_outbox_retried", "Email sends that failed temporarily and will be retried.")
OUTBOX_FAILED = Counter("chat_outbox_failed", "Emails marked failed (permanent error or retries exhausted).")
EMAIL_SEND_SECONDS = Histogram(
    "chat_email_send_seconds", "Time to hand one email to the SMTP server.", buckets=_LATENCY_BUCKETS
)
TASK_FAILURES = Counter("chat_celery_task_failures", "Celery tasks that raised, by task name.", ["task"])
HTTP_REQUESTS = Counter(
    "chat_http_requests", "HTTP requests answered, by method and status code.", ["method", "status"]
)
HTTP_SECONDS = Histogram("chat_http_request_seconds", "Time to answer an HTTP request.", buckets=_LATENCY_BUCKETS)


# Label values known in advance start at 0, so a series exists before its first
# increment: Prometheus' increase() cannot see a counter's first step otherwise.
for _outcome in ("accepted", "invalid_request", "unauthenticated", "forbidden", "unavailable"):
    HANDSHAKES.labels(_outcome)
for _code in ("invalid_json", "invalid_message", "unknown_type", "too_large", "rate_limited", "conflict", "forbidden"):
    FRAMES_REFUSED.labels(_code)
for _kind in ("room", "head_check", "socket"):
    GAP_FILLS.labels(_kind)


def tasks_known(names: list[str]) -> None:
    """The worker's task names: their failure counters start at 0."""
    for name in names:
        TASK_FAILURES.labels(name)


def socket_connecting(*, room: str | None) -> None:
    """A socket's handshake: its log lines from now on carry conn_id and the room
    segment of its path (user_id once the join has read its session)."""
    log_bind(conn_id=uuid.uuid4().hex[:16], user_id=None, room=(room or "").removesuffix("/")[:100] or None)


def socket_accepted() -> None:
    """A socket joined its room (replay sent)."""
    HANDSHAKES.labels("accepted").inc()
    SOCKETS_OPEN.inc()


def socket_closed() -> None:
    """A joined socket went away."""
    SOCKETS_OPEN.dec()


def socket_refused(*, code: str, close_code: int) -> None:
    """A socket refused at the handshake: counted, and logged once with its fields."""
    HANDSHAKES.labels(code).inc()
    level = logging.WARNING if code == "unavailable" else logging.INFO
    logger.log(level, "socket refused: %s (close %s)", code, close_code, extra={"code": code, "close_code": close_code})


def frame_refused(*, code: str) -> None:
    """A client frame refused with an error frame (the socket stays open).

    Logged once per refusal, except rate-limited ones: the first of a socket is
    logged, then at most one per RATE_LIMITED_LOG_SECONDS (a flooding client
    must not flood the log); all are counted."""
    FRAMES_REFUSED.labels(code).inc()
    if code == "rate_limited":
        RATE_LIMITED.inc()
        fields = log_fields()
        now = time.monotonic()
        if now - fields.get("_rate_limited_logged", -RATE_LIMITED_LOG_SECONDS) < RATE_LIMITED_LOG_SECONDS:
            return
        fields["_rate_limited_logged"] = now
    logger.info("frame refused: %s", code, extra={"code": code})


def event_appended(*, type: str, seconds: float) -> None:
    EVENTS_APPENDED.labels(type).inc()
    APPEND_SECONDS.observe(seconds)


def frames_delivered(count: int) -> None:
    """One call per broadcast and process, with the number of sockets it went to."""
    FRAMES_DELIVERED.inc(count)


def gap_filled(*, kind: str, room: str, after: int, upto: int, log: bool = True) -> None:
    """Events (after, upto] of a room read from the database; counted, and logged
    once (`log=False` where the call site logs it already)."""
    GAP_FILLS.labels(kind).inc()
    if log:
        logger.info("gap fill (%s) room=%s seq=%s..%s", kind, room, after + 1, upto, extra={"room": room, "seq": upto})


def replay_read(*, seconds: float) -> None:
    REPLAY_SECONDS.observe(seconds)


def broadcast_failed() -> None:
    BROADCAST_FAILURES.inc()


def email_sent(*, seconds: float) -> None:
    OUTBOX_SENT.inc()
    EMAIL_SEND_SECONDS.observe(seconds)


def email_failed(*, permanent: bool, seconds: float) -> None:
    (OUTBOX_FAILED if permanent else OUTBOX_RETRIED).inc()
    EMAIL_SEND_SECONDS.observe(seconds)


def task_failed(*, task: str) -> None:
    TASK_FAILURES.labels(task).inc()


def http_answered(*, method: str, status: int, seconds: float) -> None:
    # Unknown methods fold into one label value: the method is client input.
    known = method if method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS") else "other"
    HTTP_REQUESTS.labels(known, str(status)).inc()
    HTTP_SECONDS.observe(seconds)

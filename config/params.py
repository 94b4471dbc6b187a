"""Validation of query parameters, shared by every view, export and admin page.

Hostile input (a NUL byte, which PostgreSQL refuses in text; an impossible date,
which Python refuses to build; a number too large for any column; a
10,000-character string) must become a refusal a person understands, never a
server error. Each helper takes the raw value(s) and either returns a clean
value or raises BadParam, whose `detail` names the parameter; the adapters turn
it into their own refusal (a JSON 400, a page with the message, an admin 400).
"""

from collections.abc import Mapping
from datetime import UTC, date, datetime, time

from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

# Longest text accepted in a filter or search box; anything longer is not a name,
# a type or a phrase anyone searches for.
TEXT_MAX_CHARS = 1000
# The largest value of a PostgreSQL bigint: no id, seq or count is above it.
INT_MAX = 2**63 - 1
# Characters of a refused value echoed back in a message.
_ECHO_CHARS = 40


class BadParam(ValueError):
    """A query parameter that cannot be used; `detail` is a sentence naming it."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(detail)
        self.name = name
        self.detail = detail


def echo(value: str) -> str:
    """A refused value as a message may quote it: repr'd, and cut short."""
    return repr(value if len(value) <= _ECHO_CHARS else value[:_ECHO_CHARS] + "…")


def last(query: QueryDict | Mapping[str, list[str] | str], name: str) -> str | None:
    """The parameter's last value (a repeated parameter counts once, like a form), or None."""
    values = query.getlist(name) if isinstance(query, QueryDict) else query.get(name)
    if isinstance(values, list):
        return values[-1] if values else None
    return values


def text_clean(name: str, value: str, *, max_chars: int = TEXT_MAX_CHARS) -> str:
    """Stripped text without control characters or lone surrogates, at most `max_chars`."""
    value = value.strip()
    if len(value) > max_chars:
        raise BadParam(name, f"{name} must be at most {max_chars} characters long.")
    if any(ch < " " or "\x7f" <= ch < "\xa0" or "\ud800" <= ch <= "\udfff" for ch in value):
        raise BadParam(name, f"{name} must not contain control characters (such as NUL) or lone surrogates.")
    return value


def int_clean(name: str, value: str, *, minimum: int = 0, maximum: int = INT_MAX) -> int:
    """A decimal integer (ASCII digits, optional minus) within [minimum, maximum]."""
    digits = value.strip()
    body = digits[1:] if digits.startswith("-") else digits
    if not body.isascii() or not body.isdigit() or len(body) > 19:
        raise BadParam(name, f"{name} must be a whole number from {minimum} to {maximum}, not {echo(value)}.")
    number = int(digits)
    if not minimum <= number <= maximum:
        raise BadParam(name, f"{name} must be a whole number from {minimum} to {maximum}, not {echo(value)}.")
    return number


def param_int(query: QueryDict, name: str, *, minimum: int = 0, maximum: int = INT_MAX) -> int | None:
    """The parameter as an integer within bounds; None when absent or blank."""
    raw = last(query, name)
    if raw is None or not raw.strip():
        return None
    return int_clean(name, raw, minimum=minimum, maximum=maximum)


def moment_clean(name: str, value: str, *, end: bool = False, bare_date: bool = True) -> datetime:
    """An ISO date-time, made aware in the current time zone; with `bare_date`, a
    bare date is its first instant, or its last when `end`. Impossible dates are refused."""
    value = text_clean(name, value, max_chars=64)
    shape = "a date (YYYY-MM-DD) or date-time" if bare_date else "a date-time (YYYY-MM-DDTHH:MM[:SS])"
    try:
        # A bare day first: parse_datetime would take it as midnight, and `end` means its last instant.
        day: date | None = parse_date(value) if bare_date else None
        moment = datetime.combine(day, time.max if end else time.min) if day else parse_datetime(value)
    except ValueError:  # well formed, but no such day or time (2024-02-30, 2024-13-45)
        raise BadParam(name, f"{name}: {echo(value)} is not a real date or time.") from None
    if moment is None:
        raise BadParam(name, f"{name} must be {shape}, not {echo(value)}.")
    try:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        moment.astimezone(UTC)  # year 1 at +01:00, or year 9999 at -01:00, has no UTC instant
    except (OverflowError, ValueError):
        raise BadParam(name, f"{name}: {echo(value)} is out of the range of dates.") from None
    return moment


def param_moment(query: QueryDict, name: str, *, end: bool = False, bare_date: bool = True) -> datetime | None:
    """The parameter as an aware date-time; None when absent or blank."""
    raw = last(query, name)
    if raw is None or not raw.strip():
        return None
    return moment_clean(name, raw, end=end, bare_date=bare_date)


def query_clean(query: QueryDict, *, max_chars: int = TEXT_MAX_CHARS) -> None:
    """Refuse a query string with any unusable name or value, whatever reads it later."""
    for name, values in query.lists():
        text_clean("a parameter name", name, max_chars=100)
        for value in values:
            text_clean(name[:40], value, max_chars=max_chars)

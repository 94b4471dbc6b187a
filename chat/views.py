"""HTTP adapters of the chat: the scrollback API and the search API."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse, QueryDict
from django.urls import reverse

from config.params import BadParam, param_int, param_moment
from events import selectors as event_selectors
from events.models import Event

from .errors import ChatError
from .events import iso_utc
from .search import Hit, SearchQuery, messages_search, search_terms
from .selectors import events_payloads
from .services import room_name_normalize, room_readable

_STATUS = {"unauthenticated": 401, "forbidden": 403, "not_found": 404, "invalid_request": 400, "unavailable": 503}


def _error(exc: ChatError) -> JsonResponse:
    return JsonResponse({"error": exc.code, "detail": exc.detail}, status=_STATUS.get(exc.code, 400))


def _param[T](read: Callable[[QueryDict, str], T | None], request: HttpRequest, name: str) -> T | None:
    """A parameter through the shared checks (config.params), refused as the API's error."""
    try:
        return read(request.GET, name)
    except BadParam as exc:
        raise ChatError("invalid_request", exc.detail) from exc


def _int_param(request: HttpRequest, name: str) -> int | None:
    return _param(param_int, request, name)


def _limit(request: HttpRequest, default: int, maximum: int) -> int:
    limit = _int_param(request, "limit")
    return default if limit is None else max(1, min(limit, maximum))


def _json(payload: dict[str, Any]) -> JsonResponse:
    return JsonResponse(payload, json_dumps_params={"ensure_ascii": False})


def room_events(request: HttpRequest, room: str) -> JsonResponse:
    """GET /api/rooms/<room>/events?before=SEQ | after=SEQ | around=SEQ &limit=N:
    a page of events, oldest first within the page. `before` (or nothing) pages
    from newest to oldest; `after` pages towards the head; `around` centres the
    page on one message (permalinks)."""
    try:
        anchors = {name: _int_param(request, name) for name in ("before", "after", "around")}
        given = [name for name, value in anchors.items() if value is not None]
        if len(given) > 1:
            raise ChatError("invalid_request", "Use only one of 'before', 'after' and 'around'.")
        limit = _limit(request, settings.CHAT_HISTORY_LIMIT, settings.CHAT_HISTORY_MAX)
        found = room_readable(user=request.user, name=room)
        stream_id = found.stream_id
        after, around = anchors["after"], anchors["around"]
        extra: dict[str, Any] = {}
        page: list[Event]
        if around is not None:
            if around < 1 or around > event_selectors.stream_head(stream_id=stream_id):
                raise ChatError("not_found", f"No message with seq {around} in this room.")
            page, has_more, has_newer = event_selectors.events_around(stream_id=stream_id, seq=around, limit=limit)
            extra = {"has_newer": has_newer}
        elif after is not None:
            page = event_selectors.events_after(stream_id=stream_id, after=after, limit=limit + 1)
            extra = {"has_newer": len(page) > limit}
            page = page[:limit]
            has_more = after > 0 and (not page or page[0].seq > 1)
        else:
            page, has_more = event_selectors.events_before(stream_id=stream_id, before=anchors["before"], limit=limit)
    except ChatError as exc:
        return _error(exc)
    events = events_payloads(stream_id=stream_id, events=page, room=found.name)
    return _json({"room": found.name, "events": events, "has_more": has_more, **extra})


def _moment(request: HttpRequest, name: str) -> datetime | None:
    """An ISO 8601 date or date-time; a date means its midnight, a time without
    an offset is in the server's time zone."""
    return _param(param_moment, request, name)


def search_query(request: HttpRequest) -> SearchQuery:
    """The search request's parameters, checked; shared by the API and the page."""
    room = request.GET.get("room", "").strip()
    author = request.GET.get("author", "").strip().lstrip("@")
    return SearchQuery(
        terms=search_terms(request.GET.get("q", "")),
        room=room_name_normalize(room.lstrip("#")) if room else None,
        author=author or None,
        before=_moment(request, "before"),
        after=_moment(request, "after"),
        cursor=_int_param(request, "cursor"),
        limit=_limit(request, settings.CHAT_SEARCH_LIMIT, settings.CHAT_SEARCH_MAX),
    )


def permalink(room: str, seq: int) -> str:
    return reverse("chat:room", kwargs={"room": room}) + f"?at={seq}"


def _hit_payload(hit: Hit) -> dict[str, Any]:
    return {
        "room": hit.room,
        "seq": hit.seq,
        "id": hit.id,
        "username": hit.username,
        "ts": iso_utc(hit.ts),
        "message": hit.text,
        "edited": hit.edited,
        "highlight": hit.highlight,
        "url": permalink(hit.room, hit.seq),
    }


def search(request: HttpRequest) -> JsonResponse:
    """GET /api/search?q=&room=&author=&before=&after=&limit=&cursor=: the messages
    the user may read whose current text has every word of `q`, newest first."""
    try:
        if not request.user.is_authenticated:
            raise ChatError("unauthenticated", "Sign in to search.")
        query = search_query(request)
        if query.room is not None:
            room_readable(user=request.user, name=query.room)
        results = messages_search(user_id=request.user.pk, query=query)
    except ChatError as exc:
        return _error(exc)
    return _json(
        {
            "results": [_hit_payload(hit) for hit in results.hits],
            "next": str(results.next_cursor) if results.next_cursor is not None else None,
        }
    )

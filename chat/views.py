"""HTTP adapters of the chat: the scrollback API."""

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from config.params import BadParam, param_int
from events.selectors import events_before

from .errors import ChatError
from .selectors import events_payloads
from .services import room_readable

_STATUS = {"unauthenticated": 401, "forbidden": 403, "not_found": 404, "invalid_request": 400}


def _error(exc: ChatError) -> JsonResponse:
    return JsonResponse({"error": exc.code, "detail": exc.detail}, status=_STATUS.get(exc.code, 400))


def room_events(request: HttpRequest, room: str) -> JsonResponse:
    """GET /api/rooms/<room>/events?before=SEQ&limit=N: a page of older events,
    oldest first within the page; pages move from newest to oldest."""
    try:
        before = param_int(request.GET, "before")
        limit = param_int(request.GET, "limit")
        found = room_readable(user=request.user, name=room)
    except BadParam as exc:
        return _error(ChatError("invalid_request", exc.detail))
    except ChatError as exc:
        return _error(exc)
    limit = settings.CHAT_HISTORY_LIMIT if limit is None else max(1, min(limit, settings.CHAT_HISTORY_MAX))
    page, has_more = events_before(stream_id=found.stream_id, before=before, limit=limit)
    return JsonResponse(
        {
            "room": found.name,
            "events": events_payloads(stream_id=found.stream_id, events=page, room=found.name),
            "has_more": has_more,
        },
        json_dumps_params={"ensure_ascii": False},
    )

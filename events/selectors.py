"""Read side of the event store. Every query is an index range scan on
(stream, seq), so its cost does not grow with the size of the stream."""

from django.db.models import QuerySet

from .models import Event, Stream


def _stream_events(stream_id: int) -> QuerySet[Event]:
    return Event.objects.filter(stream_id=stream_id).select_related("actor")


def events_last(*, stream_id: int, limit: int, upto: int | None = None) -> list[Event]:
    """The last `limit` events of a stream (with seq <= upto), oldest first."""
    if limit <= 0:
        return []
    qs = _stream_events(stream_id).order_by("-seq")
    if upto is not None:
        qs = qs.filter(seq__lte=upto)
    newest = list(qs[:limit])
    newest.reverse()
    return newest


def events_after(*, stream_id: int, after: int, upto: int | None = None, limit: int | None = None) -> list[Event]:
    """Events with after < seq (<= upto), oldest first, at most `limit`."""
    qs = _stream_events(stream_id).filter(seq__gt=after).order_by("seq")
    if upto is not None:
        qs = qs.filter(seq__lte=upto)
    return list(qs[:limit] if limit is not None else qs)


def events_before(*, stream_id: int, before: int | None, limit: int) -> tuple[list[Event], bool]:
    """A page of at most `limit` events with seq < before (from the head when None),
    oldest first, and whether older events remain."""
    qs = _stream_events(stream_id).order_by("-seq")
    if before is not None:
        qs = qs.filter(seq__lt=before)
    page = list(qs[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    page.reverse()
    return page, has_more


def events_around(*, stream_id: int, seq: int, limit: int) -> tuple[list[Event], bool, bool]:
    """A page of at most `limit` events centred on `seq` (about half before it),
    oldest first, and whether older and newer events remain."""
    older = list(_stream_events(stream_id).filter(seq__lt=seq).order_by("-seq")[: limit // 2 + 1])
    has_older = len(older) > limit // 2
    older = older[: limit // 2]
    older.reverse()
    newer = list(_stream_events(stream_id).filter(seq__gte=seq).order_by("seq")[: limit - len(older) + 1])
    has_newer = len(newer) > limit - len(older)
    return older + newer[: limit - len(older)], has_older, has_newer


def stream_head(*, stream_id: int) -> int:
    return Stream.objects.values_list("head", flat=True).get(id=stream_id)


def stream_heads(*, stream_ids: list[int]) -> dict[int, int]:
    return dict(Stream.objects.filter(id__in=stream_ids).values_list("id", "head"))

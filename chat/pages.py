"""The chat's HTML pages: the room list (home), the room page, room creation and search.

Adapters: they parse the request, make one service call and render. The live
part of the room page is chat/static/chat/room.js speaking PROTOCOL.md.
"""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from config.params import BadParam, param_int

from .errors import ChatError
from .forms import RoomCreateForm
from .models import Membership, Room
from .search import messages_search
from .services import ROOM_NAME_RULE, room_join, room_name_normalize, room_readable
from .views import permalink, search_query


@dataclass(frozen=True)
class RoomRow:
    name: str
    is_private: bool
    is_archived: bool
    head: int
    is_member: bool
    unread: int


def rooms_listed(*, user_id: int) -> list[RoomRow]:
    """The rooms a user may read (public ones, private ones they belong to), with
    their unread counts: the stream's head minus the member's read marker."""
    marker = Membership.objects.filter(room=OuterRef("pk"), user_id=user_id).values("last_read_seq")[:1]
    rooms = (
        Room.objects.filter(Q(is_private=False) | Q(memberships__user_id=user_id))
        .distinct()
        .annotate(last_read=Subquery(marker))
        .values_list("name", "is_private", "is_archived", "stream__head", "last_read")
        .order_by("name")
    )
    return [
        RoomRow(
            name=name,
            is_private=is_private,
            is_archived=is_archived,
            head=head,
            is_member=last_read is not None,
            unread=max(head - (last_read or 0), 0) if last_read is not None else 0,
        )
        for name, is_private, is_archived, head, last_read in rooms
    ]


def _room_list(request: HttpRequest, form: RoomCreateForm, status: int = 200) -> HttpResponse:
    user_id = request.user.pk
    assert user_id is not None, "behind login_required"
    rooms = rooms_listed(user_id=user_id)
    return render(request, "chat/room_list.html", {"rooms": rooms, "form": form}, status=status)


@login_required
def room_list(request: HttpRequest) -> HttpResponse:
    return _room_list(request, RoomCreateForm())


@login_required
@require_POST
def room_create(request: HttpRequest) -> HttpResponse:
    """Create (or simply join) a public room, then open it."""
    form = RoomCreateForm(request.POST)
    if not form.is_valid():
        return _room_list(request, form, status=400)
    access = room_join(user=request.user, name=form.cleaned_data["name"])
    return redirect("chat:room", room=access.name)


@login_required
def room_page(request: HttpRequest, room: str) -> HttpResponse:
    """The room: history and live messages come over the socket; a public room
    that does not exist yet is created by the socket on join."""
    try:
        name = room_name_normalize(room)
        if name != room:
            return HttpResponseRedirect(reverse("chat:room", kwargs={"room": name}))
        room_readable(user=request.user, name=name)
    except ChatError as exc:
        if exc.code != "not_found":
            return _refusal(request, exc)
    config = {
        "room": name,
        "username": request.user.get_username(),
        "eventsUrl": reverse("chat:room_events", kwargs={"room": name}),
        "historyLimit": settings.CHAT_HISTORY_LIMIT,
        "pageSize": settings.CHAT_HISTORY_LIMIT,
        "at": _at(request),
    }
    return render(request, "chat/room.html", {"room_name": name, "config": config})


def _at(request: HttpRequest) -> int | None:
    """The permalinked seq (`?at=SEQ`), if any; anything else opens the room normally."""
    try:
        return param_int(request.GET, "at", minimum=1)
    except BadParam:
        return None


@login_required
def search_page(request: HttpRequest) -> HttpResponse:
    """Search results as a page: the same query and results as /api/search, each
    linking to the message in its room (`/chat/<room>/?at=<seq>`)."""
    params = {name: request.GET.get(name, "") for name in ("q", "room", "author", "after", "before")}
    context: dict[str, object] = {"params": params, "searched": bool(params["q"].strip())}
    status = 200
    user_id = request.user.pk
    assert user_id is not None, "behind login_required"
    if context["searched"]:
        try:
            query = search_query(request)
            if query.room is not None:
                room_readable(user=request.user, name=query.room)
            results = messages_search(user_id=user_id, query=query)
        except ChatError as exc:
            context["error"] = exc.detail
            status = {"forbidden": 403, "not_found": 404, "unavailable": 503}.get(exc.code, 400)
        else:
            context["hits"] = [(hit, permalink(hit.room, hit.seq)) for hit in results.hits]
            if results.next_cursor is not None:
                more = request.GET.copy()
                more["cursor"] = str(results.next_cursor)
                context["next_url"] = f"{reverse('chat:search')}?{more.urlencode()}"
    return render(request, "chat/search.html", context, status=status)


def _refusal(request: HttpRequest, exc: ChatError) -> HttpResponse:
    messages = {
        "forbidden": (403, _("This room is private and you are not a member.")),
        "invalid_request": (400, _(ROOM_NAME_RULE)),
    }
    status, text = messages.get(exc.code, (400, _("This room cannot be opened.")))
    return render(request, "chat/refused.html", {"reason": text}, status=status)

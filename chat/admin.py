"""Rooms in the admin: members, privacy, archiving, and the auditors' tools —
the room's filtered event log, its timeline (with an "as of" moment) and a live
verification of its hash chain."""

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from config.params import BadParam, param_moment
from events.admin import is_auditor
from events.adminquery import StrictChangeListAdmin
from events.verify import stream_verify

from .models import Membership, Room
from .selectors import room_timeline
from .services import room_archive

TIMELINE_MAX = 500


class MembershipInline(admin.TabularInline[Membership, Room]):
    model = Membership
    extra = 0
    fields = ["user", "is_moderator", "last_read_seq", "joined_at"]
    readonly_fields = ["last_read_seq", "joined_at"]
    raw_id_fields = ["user"]


@admin.register(Room)
class RoomAdmin(StrictChangeListAdmin[Room]):
    list_display = ["name", "is_private", "is_archived", "head", "created_at", "audit_links"]
    list_filter = ["is_private", "is_archived"]
    search_fields = ["name"]
    list_select_related = ["stream"]
    fields = ["name", "is_private", "is_archived", "created_by", "created_at"]
    readonly_fields = ["name", "is_archived", "created_by", "created_at"]
    inlines = [MembershipInline]
    actions = ["archive_rooms", "verify_rooms"]
    change_form_template = "admin/chat/room/change_form.html"
    show_facets = admin.ShowFacets.NEVER

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a room is created with its stream by chat.services

    def has_delete_permission(self, request: HttpRequest, obj: Room | None = None) -> bool:
        return False  # its log is kept for ever; archive it instead

    @admin.display(description="events", ordering="stream__head")
    def head(self, obj: Room) -> int:
        return obj.stream.head

    @admin.display(description="audit")
    def audit_links(self, obj: Room) -> str:
        return format_html(
            '<a href="{}">log</a> · <a href="{}">timeline</a>',
            log_url(obj),
            reverse("admin:chat_room_timeline", args=[obj.pk]),
        )

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<int:room_id>/timeline/", view(self.timeline_view), name="chat_room_timeline"),
            path("<int:room_id>/verify/", view(self.verify_view), name="chat_room_verify"),
            path("<int:room_id>/archive/", view(self.archive_view), name="chat_room_archive"),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {"is_auditor": is_auditor(request), **(extra_context or {})}
        room = Room.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if room is not None:
            extra["log_url"] = log_url(room)
        return super().change_view(request, object_id, form_url, extra)

    @admin.action(description="Archive selected rooms", permissions=["change"])
    def archive_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        done = [room.name for room in queryset if room_archive(room_id=room.pk, actor_id=request.user.pk)]
        self.message_user(request, f"Archived {len(done)} room(s): {', '.join(done) or '—'}.")

    @admin.action(description="Verify the log of selected rooms")
    def verify_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        if not is_auditor(request):
            self.message_user(request, "Verifying needs the events.view_event permission.", messages.ERROR)
            return
        for room in queryset.select_related("stream"):
            _report(request, room)

    def verify_view(self, request: HttpRequest, room_id: int) -> HttpResponse:
        if not is_auditor(request):
            return HttpResponseForbidden("Verifying needs the events.view_event permission.")
        room = get_object_or_404(Room.objects.select_related("stream"), pk=room_id)
        _report(request, room)
        return HttpResponseRedirect(reverse("admin:chat_room_change", args=[room.pk]))

    def archive_view(self, request: HttpRequest, room_id: int) -> HttpResponse:
        room = get_object_or_404(Room, pk=room_id)
        if request.method != "POST" or not self.has_change_permission(request, room):
            return HttpResponseForbidden("Archiving needs a POST and the permission to change rooms.")
        seq = room_archive(room_id=room.pk, actor_id=request.user.pk)
        if seq is None:
            self.message_user(request, f"Room {room.name} was already archived.", messages.WARNING)
        else:
            self.message_user(request, f"Room {room.name} archived (event seq {seq}).")
        return HttpResponseRedirect(reverse("admin:chat_room_change", args=[room.pk]))

    def timeline_view(self, request: HttpRequest, room_id: int) -> HttpResponse:
        if not is_auditor(request):
            return HttpResponseForbidden("The timeline needs the events.view_event permission.")
        room = get_object_or_404(Room.objects.select_related("stream"), pk=room_id)
        as_of: datetime | None = None
        error = ""
        try:
            as_of = param_moment(request.GET, "as_of", bare_date=False)
        except BadParam as exc:
            error = exc.detail
        timeline = room_timeline(stream_id=room.stream_id, as_of=as_of)
        entries = timeline.entries[-TIMELINE_MAX:]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Timeline of {room.name}",
            "opts": self.model._meta,
            "room": room,
            "as_of": as_of,
            "as_of_value": timezone.localtime(as_of).strftime("%Y-%m-%dT%H:%M:%S") if as_of else "",
            "error": error,
            "entries": entries,
            "hidden": len(timeline.entries) - len(entries),
            "events": timeline.events,
            "others": timeline.others[-50:],
            "log_url": log_url(room),
        }
        return TemplateResponse(request, "admin/chat/room/timeline.html", context, status=400 if error else 200)


def log_url(room: Room) -> str:
    """The event log filtered to this room."""
    return reverse("admin:events_event_changelist") + "?" + urlencode({"room": room.name})


def _report(request: HttpRequest, room: Room) -> None:
    verdict = stream_verify(stream=room.stream)
    if verdict.broken is None:
        messages.success(request, f"{room.name}: log verified, {verdict.events} events, chain intact.")
    else:
        messages.error(request, f"{room.name}: BROKEN — {verdict.broken}")

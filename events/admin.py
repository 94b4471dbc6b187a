"""The event log in the admin: an auditor's tool, read-only for everyone.

Only active staff holding `events.view_event` see it. Nobody can add, change or
delete an event here (the database refuses it anyway). Lists are built for
millions of rows: filters take typed input instead of loading every room or
author into a select, no facet counts, and the paginator estimates the size of
an unfiltered list from pg_class instead of COUNT(*) and caps filtered counts.
"""

from datetime import datetime
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.functional import cached_property

from config.params import BadParam, echo, moment_clean, text_clean

from . import schemas
from .adminquery import QueryRefused, StrictChangeListAdmin
from .export import CONTENT_TYPES, export_chunks, export_chunks_async
from .models import Event, Stream

AUDIT_PERMISSION = "events.view_event"
# Below this many rows (by the planner's estimate) an exact COUNT(*) is cheap.
ESTIMATE_ABOVE = 100_000
# Filtered lists count at most this many rows.
COUNT_CAP = 10_000


def is_auditor(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and user.has_perm(AUDIT_PERMISSION))


class EstimatedCountPaginator(Paginator):
    """COUNT(*) of a big table is a full scan: estimate it when unfiltered, cap it when filtered."""

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if isinstance(qs, QuerySet) and not qs.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [qs.model._meta.db_table]
                )
                row = cursor.fetchone()
            if row is not None and row[0] > ESTIMATE_ABOVE:
                return int(row[0])
        if isinstance(qs, QuerySet):
            return qs.order_by()[:COUNT_CAP].count()
        return len(qs)


class AuditAdmin(StrictChangeListAdmin[Any]):
    """Read-only, and visible only to auditors; lists take only their own filters."""

    actions = None  # no actions at all: not even the bulk "delete selected"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_auditor(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_auditor(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class InputFilter(admin.ListFilter):
    """A free-text filter: one input instead of a list of every value."""

    parameter_name = ""
    template = "admin/events/input_filter.html"

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        raw = params.pop(self.parameter_name, None)
        self.value = text_clean(self.parameter_name, raw[-1] if isinstance(raw, list) else raw or "")

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return [self.parameter_name]

    def choices(self, changelist: Any) -> Any:
        yield {
            "parameter_name": self.parameter_name,
            "value": self.value,
            "others": _other_params(changelist, [self.parameter_name]),
            "clear": changelist.get_query_string(remove=[self.parameter_name]),
        }


def _other_params(changelist: Any, remove: list[str]) -> list[tuple[str, str]]:
    """The current query's other parameters, kept as hidden inputs of a filter form."""
    out = []
    for key, values in changelist.params.items():
        if key in remove or key == "p":
            continue
        for value in values if isinstance(values, list) else [values]:
            out.append((key, value))
    return out


class RoomFilter(InputFilter):
    title = "room (name or stream key)"
    parameter_name = "room"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Event]) -> QuerySet[Event]:
        if not self.value:
            return queryset
        key = self.value if ":" in self.value else f"room:{self.value}"
        stream_id = Stream.objects.filter(key=key).values_list("id", flat=True).first()
        return queryset.filter(stream_id=stream_id if stream_id is not None else -1)


class AuthorFilter(InputFilter):
    title = "author (username)"
    parameter_name = "author"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Event]) -> QuerySet[Event]:
        if not self.value:
            return queryset
        user_id = get_user_model().objects.filter(username=self.value).values_list("id", flat=True).first()
        return queryset.filter(actor_id=user_id if user_id is not None else -1)


class TypeFilter(admin.SimpleListFilter):
    title = "type"
    parameter_name = "type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # From the registry of event types, not a DISTINCT over the whole table.
        return [(name, name) for name in sorted(schemas._registry)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Event]) -> QuerySet[Event]:
        value = self.value()
        if value and value not in schemas._registry:
            raise BadParam("type", f"type must be one of the event types offered in the filter, not {echo(value)}.")
        return queryset.filter(type=value) if value else queryset


class DateRangeFilter(admin.ListFilter):
    """created_at between two dates (or date-times), both optional, the end inclusive."""

    title = "date range"
    template = "admin/events/date_range_filter.html"
    names = ("created_from", "created_to")

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        self.values: dict[str, str] = {}
        self.moments: dict[str, datetime] = {}
        for name in self.names:
            raw = params.pop(name, None)
            value = text_clean(name, raw[-1] if isinstance(raw, list) else raw or "", max_chars=64)
            if value:
                self.values[name] = value
                self.moments[name] = moment_clean(name, value, end=name == "created_to")

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return list(self.names)

    def choices(self, changelist: Any) -> Any:
        yield {
            "from": self.values.get("created_from", ""),
            "to": self.values.get("created_to", ""),
            "others": _other_params(changelist, list(self.names)),
            "clear": changelist.get_query_string(remove=list(self.names)),
        }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Event]) -> QuerySet[Event]:
        if "created_from" in self.moments:
            queryset = queryset.filter(created_at__gte=self.moments["created_from"])
        if "created_to" in self.moments:
            queryset = queryset.filter(created_at__lte=self.moments["created_to"])
        return queryset


@admin.register(Event)
class EventAdmin(AuditAdmin):
    list_display = ["id", "stream_key", "seq", "type", "actor", "created_at", "first_line"]
    list_display_links = ["id"]
    list_filter = [RoomFilter, TypeFilter, AuthorFilter, DateRangeFilter]
    list_select_related = ["stream", "actor"]
    search_fields = ["data__message", "actor__username"]
    search_help_text = "Text of messages (contains) or author username. Scans the log: narrow by room or date first."
    date_hierarchy = "created_at"
    ordering = ["-id"]
    list_per_page = 100
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    change_list_template = "admin/events/event/change_list.html"
    readonly_fields = ["content_hash_hex", "hash_hex"]
    exclude = ["content_hash", "hash"]

    @admin.display(description="room / stream", ordering="stream__key")
    def stream_key(self, obj: Event) -> str:
        return obj.stream.key

    @admin.display(description="text")
    def first_line(self, obj: Event) -> str:
        text = obj.data.get("message") if isinstance(obj.data, dict) else None
        if not isinstance(text, str):
            return ""
        line = text.splitlines()[0] if text else ""
        return line if len(line) <= 80 else line[:79] + "…"

    @admin.display(description="content hash")
    def content_hash_hex(self, obj: Event) -> str:
        return bytes(obj.content_hash).hex()

    @admin.display(description="chain hash")
    def hash_hex(self, obj: Event) -> str:
        return bytes(obj.hash).hex()

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        # Within one stream, position and seq grow together (appends to a stream are
        # serialised), so a room's list walks the (stream, seq) index backwards
        # instead of scanning the whole log by position for that room's rows.
        if request.GET.get(RoomFilter.parameter_name):
            return ("-stream", "-seq")
        return ("-id",)

    def get_urls(self) -> list[URLPattern]:
        export = self.admin_site.admin_view(self.export_view)
        return [
            path("export.csv", export, {"fmt": "csv"}, name="events_event_export_csv"),
            path("export.jsonl", export, {"fmt": "jsonl"}, name="events_event_export_jsonl"),
            *super().get_urls(),
        ]

    def filtered_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        """The change list's filters and search, applied as on the list page."""
        changelist: ChangeList = self.get_changelist_instance(request)
        return changelist.get_queryset(request)

    def export_view(self, request: HttpRequest, fmt: str) -> HttpResponseBase:
        if not self.has_view_permission(request):
            return HttpResponse("Forbidden", status=403)
        try:
            qs = self.filtered_queryset(request)
        except QueryRefused as exc:
            return HttpResponse(f"Invalid filter: {exc}", status=400, content_type="text/plain; charset=utf-8")
        chunks = export_chunks(qs, fmt)
        content = export_chunks_async(chunks) if isinstance(request, ASGIRequest) else chunks
        response = StreamingHttpResponse(content, content_type=CONTENT_TYPES[fmt])
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="events-{stamp}.{fmt}"'
        return response

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        query = request.GET.urlencode()
        suffix = f"?{query}" if query else ""
        extra = {
            "export_csv_url": reverse("admin:events_event_export_csv") + suffix,
            "export_jsonl_url": reverse("admin:events_event_export_jsonl") + suffix,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)


@admin.register(Stream)
class StreamAdmin(AuditAdmin):
    list_display = ["key", "head", "created_at"]
    search_fields = ["key"]
    exclude = ["head_hash"]
    show_facets = admin.ShowFacets.NEVER

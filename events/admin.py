"""The event log in the admin: read-only for everyone."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Event, Stream


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}  # not even the bulk "delete selected"


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "stream", "seq", "type", "actor", "created_at"]
    list_filter = ["type"]
    list_select_related = ["stream", "actor"]
    show_full_result_count = False


@admin.register(Stream)
class StreamAdmin(ReadOnlyAdmin):
    list_display = ["key", "head", "created_at"]
    search_fields = ["key"]

"""Admin change lists that take only the filters they offer.

Django's admin turns any query parameter naming a field into a filter, with any
lookup (`?data__message__regex=(` reaches PostgreSQL as a broken regular
expression) and any value (a NUL byte, a year of 10**30). Here a change list
accepts its own filters, Django's few control parameters and clean values; a bad
one gets a 400 page that says which parameter and why, never a server error nor
Django's silent redirect to `?e=1`.
"""

from typing import Any

from django.contrib import admin
from django.contrib.admin.exceptions import DisallowedModelAdminLookup, DisallowedModelAdminToField
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IS_FACETS_VAR, IS_POPUP_VAR, TO_FIELD_VAR, IncorrectLookupParameters
from django.contrib.admin.views.main import ALL_VAR, ERROR_FLAG, ORDER_VAR, PAGE_VAR, SEARCH_VAR, ChangeList
from django.db.models import IntegerField, Model
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from config.params import BadParam, echo, int_clean, last, query_clean

# Parameters of the change list itself rather than filters.
CONTROL_PARAMS = frozenset(
    {ALL_VAR, ERROR_FLAG, IS_FACETS_VAR, IS_POPUP_VAR, ORDER_VAR, PAGE_VAR, SEARCH_VAR, TO_FIELD_VAR}
)
# The lookups Django's own field filters put in the query string.
FILTER_LOOKUPS = frozenset({"exact", "isnull", "gte", "gt", "lte", "lt", "in", "year", "month", "day"})
_DATE_PARTS = {"year": 9999, "month": 12, "day": 31}


class QueryRefused(Exception):
    """The change list's query string cannot be applied; the message says why."""


class StrictChangeListAdmin[M: Model](admin.ModelAdmin[M]):
    """A ModelAdmin whose change list refuses lookups and values it does not offer."""

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        return lookup in self.filter_parameters(request) or any(
            lookup.startswith(f"{path}__") and lookup[len(path) + 2 :] in FILTER_LOOKUPS
            for path in self.filter_paths(request)
        )

    def filter_parameters(self, request: HttpRequest) -> set[str]:
        """Parameter names of the custom filters (SimpleListFilter and the like)."""
        names: set[str] = set()
        for item in self.get_list_filter(request):
            if isinstance(item, type):
                names.update(getattr(item, "names", ()))
                parameter = getattr(item, "parameter_name", None)
                if parameter:
                    names.add(parameter)
        return names

    def filter_paths(self, request: HttpRequest) -> set[str]:
        """Field paths filtered by Django's field filters, and the date hierarchy's."""
        paths: set[str] = set()
        for item in self.get_list_filter(request):
            if isinstance(item, str):
                paths.add(item)
            elif isinstance(item, list | tuple) and isinstance(item[0], str):
                paths.add(item[0])
        if self.date_hierarchy:
            paths.add(self.date_hierarchy)
        return paths

    def query_check(self, request: HttpRequest) -> None:
        """Every name a filter of this list, every value clean text; raises BadParam."""
        query_clean(request.GET)
        for name in request.GET:
            if name not in CONTROL_PARAMS and not self.lookup_allowed(name, "", request):
                raise BadParam(name, f"This list has no filter named {echo(name)}.")
        page = last(request.GET, PAGE_VAR)
        if page is not None:
            int_clean(PAGE_VAR, page, minimum=1, maximum=10**9)
        if self.date_hierarchy:
            for part, top in _DATE_PARTS.items():
                name = f"{self.date_hierarchy}__{part}"
                raw = last(request.GET, name)
                if raw is not None:
                    int_clean(name, raw, minimum=1, maximum=top)

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        try:
            self.query_check(request)
            return super().get_changelist_instance(request)
        except BadParam as exc:
            raise QueryRefused(exc.detail) from exc
        except DisallowedModelAdminLookup as exc:
            raise QueryRefused("This list has no such filter.") from exc
        except IncorrectLookupParameters as exc:
            detail = str(exc) if exc.args and isinstance(exc.args[0], str) else ""
            raise QueryRefused(detail or "The filters or the page number in this address cannot be applied.") from exc

    def selection_check(self, request: HttpRequest) -> None:
        """The rows an action is posted for must be ids (Django would raise a ValueError)."""
        if isinstance(self.model._meta.pk, IntegerField):
            for value in request.POST.getlist(ACTION_CHECKBOX_NAME):
                int_clean(ACTION_CHECKBOX_NAME, value, minimum=1)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        try:
            if request.method == "POST":
                self.selection_check(request)
            return super().changelist_view(request, extra_context)
        except BadParam as exc:
            return self.query_refused(request, exc.detail)
        except QueryRefused as exc:
            return self.query_refused(request, str(exc))
        except DisallowedModelAdminToField:
            return self.query_refused(request, f"This list cannot be opened for the field {TO_FIELD_VAR!r} names.")

    def query_refused(self, request: HttpRequest, detail: str) -> HttpResponse:
        """A 400 page in the admin's frame: what was wrong, and the list without filters."""
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": f"These {opts.verbose_name_plural} cannot be listed",
            "opts": opts,
            "detail": detail,
            "clear_url": request.path,
        }
        return TemplateResponse(request, "admin/query_refused.html", context, status=400)

"""Pagination that never counts the whole table: it fetches one row more than a page."""

from collections import OrderedDict

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param


def page_number(request, maximum: int = 10_000) -> int:
    """The ``?page=`` of an HTML list: 1 for anything that is not a number, within bounds."""
    try:
        return min(max(int(request.GET.get("page", 1)), 1), maximum)
    except ValueError:
        return 1


class PagePagination(BasePagination):
    """``?page=N&page_size=M``; answers ``{"next", "previous", "results"}``."""

    page_size = 25
    max_page_size = 100
    max_page = 10_000

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page = self._int_param(request, "page", 1, 1, self.max_page)
        self.size = self._int_param(request, "page_size", self.page_size, 1, self.max_page_size)
        offset = (self.page - 1) * self.size
        rows = list(queryset[offset : offset + self.size + 1])
        self.has_next = len(rows) > self.size
        return rows[: self.size]

    @staticmethod
    def _int_param(request, name, default, minimum, maximum):
        raw = request.query_params.get(name)
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValidationError({name: [f"Must be an integer, got {raw!r}."]}) from None
        if value < minimum:
            raise ValidationError({name: [f"Must be at least {minimum}."]})
        return min(value, maximum)

    def get_next_link(self):
        if not self.has_next:
            return None
        return replace_query_param(self.request.build_absolute_uri(), "page", self.page + 1)

    def get_previous_link(self):
        if self.page <= 1:
            return None
        url = self.request.build_absolute_uri()
        if self.page == 2:
            return remove_query_param(url, "page")
        return replace_query_param(url, "page", self.page - 1)

    def get_paginated_response(self, data):
        return Response(
            OrderedDict(
                [("next", self.get_next_link()), ("previous", self.get_previous_link()),
                 ("results", data)]
            )
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {"name": "page", "required": False, "in": "query", "schema": {"type": "integer"}},
            {"name": "page_size", "required": False, "in": "query",
             "schema": {"type": "integer", "maximum": self.max_page_size}},
        ]

"""Pagination that never counts the whole table: it fetches one row more than a page.

Lists whose view names its keyset orderings (``keyset_orderings``) also page by cursor:
their ``next`` and ``previous`` links carry ``?cursor=``, an opaque token holding the
ordering and the sort key of the page's last (or first) row, and the page after it is read
with ``WHERE key > cursor`` from the ordering's index, so page 500 costs what page 1 does and
a row inserted meanwhile neither repeats nor hides a row. ``?page=N`` still works on those
lists (an offset: PostgreSQL reads and drops every row before it, so it is for shallow
jumps) and its links continue by cursor.
"""

import base64
import binascii
import datetime
import json
from collections import OrderedDict

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django_filters import CharFilter
from django_filters.rest_framework import DjangoFilterBackend
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


def refuse_unknown_parameters(request, view, paging: tuple[str, ...] = ()) -> None:
    """400 naming every query parameter the list does not take.

    A misspelt filter (``?stauts=approved``) must not answer the whole list as if it had
    matched. What a list takes: its filterset's and filter backends' parameters, ``paging``,
    and the names the view declares in ``query_parameters`` (a tuple, or one per action).
    """
    known = set(paging)
    # Numbers, choices and times have no empty value: "?status=" is a mistake, not "any".
    # (The catalog page's form sends empty fields; it does not come through here.)
    strict = set(paging)
    declared = getattr(view, "query_parameters", ())
    if isinstance(declared, dict):
        declared = declared.get(getattr(view, "action", None), ())
    known.update(declared)
    filterset_class = getattr(view, "filterset_class", None)
    for backend in getattr(view, "filter_backends", ()):
        if backend is DjangoFilterBackend:
            if filterset_class is not None:
                known.update(filterset_class.base_filters)
                strict.update(name for name, f in filterset_class.base_filters.items()
                              if not isinstance(f, CharFilter))
        else:
            names = [p["name"] for p in backend().get_schema_operation_parameters(view)]
            known.update(names)
            strict.update(names)
    problems = {name: [f"Unknown query parameter; this list takes "
                       f"{', '.join(sorted(known)) or 'none'}."]
                for name in sorted(set(request.query_params) - known)}
    problems.update({name: ["Must not be empty."] for name in sorted(strict)
                     if request.query_params.get(name) == ""})
    if problems:
        raise ValidationError(problems)


# The keyset of the lists shown newest first: a view that orders so names it in its
# ``keyset_orderings`` and pages by cursor.
NEWEST_FIRST = ("-created_at", "-id")

FLAGS = {"true": True, "1": True, "false": False, "0": False}


def query_flag(request, name: str) -> bool:
    """A boolean query parameter: ``true``/``1`` or ``false``/``0``; absent is false, and
    anything else is a 400 rather than a guess."""
    raw = request.query_params.get(name)
    if raw is None:
        return False
    try:
        return FLAGS[raw.strip().lower()]
    except KeyError:
        raise ValidationError({name: [f"Must be true or false, got {raw!r}."]}) from None


class PagePagination(BasePagination):
    """``?page=N&page_size=M``; answers ``{"next", "previous", "results"}``."""

    page_size = 25
    max_page_size = 100
    max_page = 10_000

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        if view is not None:
            refuse_unknown_parameters(request, view, paging=self.parameter_names(view))
        self.size = self._int_param(request, "page_size", self.page_size, 1, self.max_page_size)
        ordering = tuple(queryset.query.order_by)
        self.keyset = ordering if ordering in getattr(view, "keyset_orderings", ()) else None
        raw_cursor = request.query_params.get("cursor")
        if raw_cursor is not None and self.keyset is None:
            raise ValidationError({"cursor": ["This list does not page by cursor."]})
        if raw_cursor is not None:
            return self._paginate_keyset(queryset, raw_cursor)
        self.page = self._int_param(request, "page", 1, 1, self.max_page)
        offset = (self.page - 1) * self.size
        rows = list(queryset[offset : offset + self.size + 1])
        self.has_next = len(rows) > self.size
        self.rows = rows[: self.size]
        self.has_previous = self.page > 1
        return self.rows

    def _paginate_keyset(self, queryset, raw_cursor: str):
        backwards, values = decode_cursor(raw_cursor, queryset.model, self.keyset)
        self.page = None
        queryset = queryset.filter(after_key(self.keyset, values, backwards=backwards))
        if backwards:
            queryset = queryset.order_by(*(_reverse(c) for c in self.keyset))
        rows = list(queryset[: self.size + 1])
        more = len(rows) > self.size
        rows = rows[: self.size]
        if backwards:
            rows.reverse()
        # The cursor's own row lies on the side the client came from.
        self.has_next, self.has_previous = (bool(rows), more) if backwards else (more, True)
        self.rows = rows
        return rows

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
        if value > maximum:
            # Refused, not clamped: a client asking for 500 rows must not think it got them.
            raise ValidationError({name: [f"Must be at most {maximum}."]})
        return value

    def get_next_link(self):
        if not self.has_next:
            return None
        if self.keyset:
            return self._cursor_link(self.rows[-1], backwards=False)
        return replace_query_param(self.request.build_absolute_uri(), "page", self.page + 1)

    def get_previous_link(self):
        if not self.has_previous:
            return None
        if self.keyset:
            return self._cursor_link(self.rows[0], backwards=True) if self.rows else None
        url = self.request.build_absolute_uri()
        if self.page == 2:
            return remove_query_param(url, "page")
        return replace_query_param(url, "page", self.page - 1)

    def _cursor_link(self, row, *, backwards: bool) -> str:
        url = remove_query_param(self.request.build_absolute_uri(), "page")
        return replace_query_param(url, "cursor", encode_cursor(self.keyset, row, backwards))

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
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {"type": ["string", "null"], "format": "uri"},
                "previous": {"type": ["string", "null"], "format": "uri"},
                "results": schema,
            },
        }

    @staticmethod
    def parameter_names(view) -> tuple[str, ...]:
        return ("page", "page_size", *(("cursor",) if getattr(view, "keyset_orderings", None)
                                      else ()))

    def get_schema_operation_parameters(self, view):
        return [
            {"name": "page", "required": False, "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page}},
            *([{"name": "cursor", "required": False, "in": "query", "schema": {"type": "string"},
                "description": "Opaque; from a next or previous link."}]
              if getattr(view, "keyset_orderings", None) else []),
            {"name": "page_size", "required": False, "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size}},
        ]


def _reverse(column: str) -> str:
    return column[1:] if column.startswith("-") else f"-{column}"


def _key_of(row, column: str):
    """The value of an ordering column (``usage__total_executions``) in a row: a values()
    dict or a model instance."""
    path = column.lstrip("-")
    if isinstance(row, dict):
        return row[path]
    value = row
    for part in path.split("__"):
        value = getattr(value, part)
    return value


def _field(model, path: str):
    *relations, last = path.split("__")
    for name in relations:
        model = model._meta.get_field(name).related_model
    return model._meta.get_field(last)


def encode_cursor(ordering: tuple, row, backwards: bool) -> str:
    values = []
    for column in ordering:
        value = _key_of(row, column)
        values.append(value.isoformat() if isinstance(value, datetime.datetime) else value)
    payload = json.dumps([list(ordering), "p" if backwards else "n", values],
                         separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


INVALID_CURSOR = "Invalid cursor: use the next or previous link of this list as it is."


def decode_cursor(raw: str, model, ordering: tuple) -> tuple[bool, list]:
    """(backwards, key values) of a cursor made for ``ordering``; 400 for anything else."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        columns, direction, values = json.loads(text)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise ValidationError({"cursor": [INVALID_CURSOR]}) from None
    if (columns != list(ordering) or direction not in ("n", "p")
            or not isinstance(values, list) or len(values) != len(ordering)):
        raise ValidationError({"cursor": [INVALID_CURSOR]})
    parsed = []
    for column, value in zip(ordering, values, strict=True):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError({"cursor": [INVALID_CURSOR]})
        try:
            field = _field(model, column.lstrip("-"))
            value = field.to_python(value)
            if isinstance(value, datetime.datetime) and value.tzinfo is None:
                raise ValueError("naive")
        except (FieldDoesNotExist, DjangoValidationError, ValueError, TypeError,
                OverflowError):
            raise ValidationError({"cursor": [INVALID_CURSOR]}) from None
        parsed.append(value)
    return direction == "p", parsed


def after_key(ordering: tuple, values: list, *, backwards: bool) -> Q:
    """Rows after the key in ``ordering`` (before it, ``backwards``), as one condition.

    (a, b) > (x, y) is written a > x OR (a = x AND b > y), with a >= x in front, which
    PostgreSQL turns into a range scan of the ordering's index from the key on.
    """
    def cmp(column: str) -> str:
        ascending = not column.startswith("-")
        return "gt" if ascending != backwards else "lt"

    paths = [c.lstrip("-") for c in ordering]
    condition = Q()
    equal = {}
    for column, path, value in zip(ordering, paths, values, strict=True):
        condition |= Q(**equal, **{f"{path}__{cmp(column)}": value})
        equal[path] = value
    first = ordering[0]
    bound = Q(**{f"{paths[0]}__{cmp(first)}e": values[0]})
    return bound & condition

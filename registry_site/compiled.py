"""Querysets compiled once per process, for hot requests whose SQL the ORM rebuilds the same
every time but for a few values (the clock, an id).

Django has no cache of compiled queries: a queryset with a CASE expression or a correlated
subquery costs a millisecond or more of CPU to build and compile, often more than the
database takes to run it. ``Compiled`` builds the queryset once per database vendor with
marker values, keeps the SQL and its parameters, and on each use puts the real values where
the markers' parameters were. The queryset stays the one definition of the query; only its
compilation is shared.
"""

import copy
import datetime
import threading

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections

# Markers: values no request uses, so that a parameter equal to one is the marker's.
MARKER_TIME = datetime.datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=datetime.UTC)
MARKER_IDS = (-7_340_007_919, -7_340_007_921, -7_340_007_923)
MARKER_TEXT = "compiled-marker-7340007919"


def _adapt(value):
    if isinstance(value, datetime.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


class Compiled:
    """``build(**markers)`` compiled once per vendor; ``sql(**values)`` is its SQL and the
    parameters with ``values`` in the markers' places, ``rows(**values)`` what the queryset
    would have returned for them.

    Every marker must reach the SQL (a value that did not would be silently ignored), except
    those named in ``optional``: markers that some builds use and others do not.
    """

    def __init__(self, build, *, optional=(), **markers):
        self.build, self.markers, self.optional = build, markers, frozenset(optional)
        self._by_vendor = {}
        self._lock = threading.Lock()

    def _compile(self):
        queryset = self.build(**self.markers)
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        params = list(params)
        slots = {}
        for name, marker in self.markers.items():
            adapted = _adapt(marker)
            slots[name] = [i for i, param in enumerate(params) if param == adapted]
            if not slots[name] and name not in self.optional:
                raise ImproperlyConfigured(f"{self.build.__qualname__}: {name} is not a "
                                           "parameter of the compiled SQL.")
        return queryset, compiler, sql, params, slots

    def _compiled(self):
        found = self._by_vendor.get(connection.vendor)
        if found is None:
            with self._lock:
                found = self._by_vendor.get(connection.vendor)
                if found is None:
                    found = self._by_vendor[connection.vendor] = self._compile()
        return found

    def sql(self, **values) -> tuple[str, list]:
        if values.keys() != self.markers.keys():
            raise TypeError(f"{self.build.__qualname__} takes {sorted(self.markers)}.")
        _, _, sql, params, slots = self._compiled()
        params = list(params)
        for name, positions in slots.items():
            value = _adapt(values[name])
            for position in positions:
                params[position] = value
        return sql, params

    def raw(self, **values):
        """The model's rows (fields converted as the ORM does; annotations as the database
        returns them)."""
        model = self._compiled()[0].model
        sql, params = self.sql(**values)
        return model.objects.raw(sql, params)

    def rows(self, **values) -> list:
        """What the queryset returns for ``values``, evaluated: model instances with their
        select_related rows and annotations, or the dicts and tuples of values() and
        values_list(), each converted as the ORM converts them.

        Django's own iterable turns the rows into results; it is handed a copy of the
        compiler that compiled the queryset (its select list, converters and related-object
        layout), whose SQL is this call's.
        """
        queryset, prototype = self._compiled()[:2]
        sql, params = self.sql(**values)
        compiler = copy.copy(prototype)
        compiler.connection = connections[queryset.db]
        compiler.as_sql = lambda *args, **kwargs: (sql, params)
        run = queryset._chain()
        # The clone serves this one evaluation and is never handed out, so no further
        # filter can be chained onto SQL that would not carry it.
        run.query.get_compiler = lambda *args, **kwargs: compiler
        return list(run)

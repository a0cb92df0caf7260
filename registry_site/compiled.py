"""Querysets compiled once per process, for hot requests whose SQL the ORM rebuilds the same
every time but for a few values (the clock, an id).

Django has no cache of compiled queries: a queryset with a CASE expression or a correlated
subquery costs a millisecond or more of CPU to build and compile, often more than the
database takes to run it. ``Compiled`` builds the queryset once per database vendor with
marker values, keeps the SQL and its parameters, and on each use puts the real values where
the markers' parameters were. The queryset stays the one definition of the query; only its
compilation is shared.
"""

import datetime
import threading

from django.core.exceptions import ImproperlyConfigured
from django.db import connection

# Markers: values no request uses, so that a parameter equal to one is the marker's.
MARKER_TIME = datetime.datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=datetime.UTC)
MARKER_IDS = (-7_340_007_919, -7_340_007_921, -7_340_007_923)


def _adapt(value):
    if isinstance(value, datetime.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


class Compiled:
    """``build(**markers)`` compiled once per vendor; ``sql(**values)`` is its SQL and the
    parameters with ``values`` in the markers' places."""

    def __init__(self, build, **markers):
        self.build, self.markers = build, markers
        self._by_vendor = {}
        self._lock = threading.Lock()

    def _compile(self):
        queryset = self.build(**self.markers)
        sql, params = queryset.query.sql_with_params()
        params = list(params)
        slots = {}
        for name, marker in self.markers.items():
            adapted = _adapt(marker)
            slots[name] = [i for i, param in enumerate(params) if param == adapted]
            if not slots[name]:
                raise ImproperlyConfigured(f"{self.build.__qualname__}: {name} is not a "
                                           "parameter of the compiled SQL.")
        return queryset.model, sql, params, slots

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
        _, sql, params, slots = self._compiled()
        params = list(params)
        for name, positions in slots.items():
            value = _adapt(values[name])
            for position in positions:
                params[position] = value
        return sql, params

    def raw(self, **values):
        """The model's rows (fields converted as the ORM does; annotations as the database
        returns them)."""
        model = self._compiled()[0]
        sql, params = self.sql(**values)
        return model.objects.raw(sql, params)

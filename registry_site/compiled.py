"""Querysets compiled once per process, for hot requests whose SQL the ORM rebuilds the same
every time but for a few values (the clock, an id).

Django has no cache of compiled queries: a queryset with a CASE expression or a correlated
subquery costs a millisecond or more of CPU to build and compile, often more than the
database takes to run it. ``Compiled`` builds the queryset once per database vendor with
marker values, keeps the SQL and its parameters, and on each use puts the real values where
the markers' parameters were. The queryset stays the one definition of the query; only its
compilation is shared.

The hot requests' writes get the same treatment: ``insert_new`` inserts a model instance by a
statement written once per model, and ``insert_after`` (PostgreSQL) joins a write and the row
that records it into one statement. ``statement_cursor`` runs all of these, and the
hand-written statements of the services, on a cursor whose statements PostgreSQL prepares.
"""

import contextlib
import copy
import datetime
import threading

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections

# Markers: values no request uses, so that a parameter equal to one is the marker's.
MARKER_TIME = datetime.datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=datetime.UTC)
MARKER_IDS = (-7_340_007_919, -7_340_007_921, -7_340_007_923)
MARKER_TEXTS = ("compiled-marker-7340007919", "compiled-marker-7340007921")
MARKER_TEXT = MARKER_TEXTS[0]


@contextlib.contextmanager
def statement_cursor(db_connection=None):
    """A cursor for the statements of hot requests, each the same text on every call.

    On PostgreSQL it binds parameters on the server, so psycopg prepares a statement that a
    connection has run a few times (prepare_threshold) and PostgreSQL stops parsing and
    planning it on every request, which cost several times its execution. Django's own
    cursors bind on the client (its ORM does not write SQL meant to be prepared, and a
    server-bound IntegerField parameter is sent as a 4-byte integer whatever its value), so
    only this module's statements and the hand-written ones go through here; their integer
    parameters are plain Python ints, sent at the size their value needs. The cursor is
    wrapped as Django wraps its own: database errors become Django's, queries are counted
    and logged. Other databases get Django's cursor.
    """
    db_connection = db_connection or connection
    if db_connection.vendor != "postgresql":
        with db_connection.cursor() as cursor:
            yield cursor
        return
    from django.db.backends.postgresql.base import TIMESTAMPTZ_OID, ServerBindingCursor
    from django.db.backends.postgresql.psycopg_any import register_tzloader
    from psycopg.pq import Format

    db_connection.ensure_connection()
    with db_connection.wrap_database_errors:
        raw = ServerBindingCursor(db_connection.connection)
        # As Django's create_cursor: times in the connection's zone.
        loader = db_connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
        if db_connection.timezone != loader.timezone:
            register_tzloader(db_connection.timezone, raw)
    with db_connection._prepare_cursor(raw) as cursor:
        yield cursor


def plan_once(sender, connection, **kwargs):
    """``connection_created``: plan each prepared statement once, for any values.

    PostgreSQL's default tries five plans made for the values at hand and then keeps
    planning for every execution when the value-free plan looks costlier; for the
    visibility condition of the model reads it always did, at more CPU than running it.
    The statements that get prepared here are all lookups by key or name, which one plan
    serves for every value. The ORM's statements are not prepared, so this does not touch
    them.
    """
    if connection.vendor == "postgresql" and connection.settings_dict["OPTIONS"].get(
            "prepare_threshold"):
        with connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_generic_plan")


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
        # What results_iter would work out on every call from the same select list.
        converters = compiler.get_converters([s[0] for s in compiler.select[:compiler.col_count]])
        compiler.get_converters = lambda expressions: converters
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

    def rows(self, **values) -> list:
        """What the queryset returns for ``values``, evaluated: model instances with their
        select_related rows and annotations, or the dicts and tuples of values() and
        values_list(), each converted as the ORM converts them.

        Django's own iterable turns the rows into results; it is handed a copy of the
        compiler that compiled the queryset (its select list, converters and related-object
        layout) holding this call's rows.
        """
        queryset, prototype = self._compiled()[:2]
        sql, params = self.sql(**values)
        db_connection = connections[queryset.db]
        with statement_cursor(db_connection) as cursor:
            cursor.execute(sql, params)
            results = [cursor.fetchall()]
        compiler = copy.copy(prototype)
        compiler.connection = db_connection
        compiler.execute_sql = lambda *args, **kwargs: results
        run = queryset._chain()
        # The clone serves this one evaluation and is never handed out, so no further
        # filter can be chained onto SQL that would not carry it.
        run.query.get_compiler = lambda *args, **kwargs: compiler
        return list(run)


class _InsertPlan:
    def __init__(self, model, db_connection):
        meta = model._meta
        self.auto = meta.auto_field  # None: the row's id is one of its values (a one-to-one)
        if meta.parents or meta.db_returning_fields != ([meta.pk] if self.auto else []):
            raise ImproperlyConfigured(f"insert_new cannot insert {meta.label}.")
        self.fields = [f for f in meta.local_concrete_fields
                       if not f.generated and f is not self.auto]
        if any(hasattr(f, "get_placeholder") for f in self.fields):
            raise ImproperlyConfigured(f"insert_new cannot insert {meta.label}.")
        ops = db_connection.ops
        self.returns = bool(self.auto) and db_connection.features.can_return_columns_from_insert
        returning = ops.return_insert_columns([meta.pk])[0] if self.returns else ""
        self.table, self.pk_column = meta.db_table, meta.pk.column
        self.sql = (f"INSERT INTO {ops.quote_name(meta.db_table)} "
                    f"({', '.join(ops.quote_name(f.column) for f in self.fields)}) "
                    f"VALUES ({', '.join(['%s'] * len(self.fields))}) {returning}").rstrip()


_insert_plans = {}


def _insert_plan(model, db_connection) -> _InsertPlan:
    plan = _insert_plans.get((model, db_connection.vendor))
    if plan is None:
        plan = _insert_plans[(model, db_connection.vendor)] = _InsertPlan(model, db_connection)
    return plan


def _insert_value(field, instance, db_connection):
    value = field.pre_save(instance, add=True)
    if hasattr(value, "resolve_expression"):
        raise ValueError(f"inserts here take values, not expressions ({field.name}).")
    return field.get_db_prep_save(value, connection=db_connection)


def insert_statement(instance) -> tuple[str, list]:
    """The INSERT of a new instance, as insert_new would run it, and its values: for
    insert_after's ``statement``, which then reads the new row's id as ``source.id``."""
    db_connection = connections[instance._state.db or "default"]
    plan = _insert_plan(type(instance), db_connection)
    if not instance._state.adding or not plan.returns or instance.pk is not None:
        raise ValueError(f"insert_statement inserts new rows with an auto id only, not "
                         f"{instance!r}.")
    return plan.sql, [_insert_value(field, instance, db_connection) for field in plan.fields]


def insert_new(instance):
    """Insert a new model instance as ``save()`` would, and return it with its id.

    The statement is written once per model and vendor (what the ORM would compile on every
    save); each call only prepares the values, field by field as save() does (``pre_save``
    then ``get_db_prep_save``). For plain models (an auto id, or an id that is one of the
    values) whose fields hold values, not expressions; anything else is refused rather than
    inserted differently.
    """
    db_connection = connections[instance._state.db or "default"]
    plan = _insert_plan(type(instance), db_connection)
    if not instance._state.adding or (plan.auto and instance.pk is not None):
        raise ValueError(f"insert_new inserts new rows only, not {instance!r}.")
    params = [_insert_value(field, instance, db_connection) for field in plan.fields]
    with statement_cursor(db_connection) as cursor:
        cursor.execute(plan.sql, params)
        if plan.returns:
            instance.pk = cursor.fetchone()[0]
        elif plan.auto:
            instance.pk = db_connection.ops.last_insert_id(cursor, plan.table, plan.pk_column)
    instance._state.adding = False
    instance._state.db = db_connection.alias
    return instance


def insert_after(instance, *, statement: str, params: list, taken: dict[str, str],
                 each_row: bool = True):
    """PostgreSQL: run ``statement`` (one with RETURNING, named ``source``) and
    insert the instance's row in the same statement, the fields in ``taken`` (attname -> an
    SQL expression over ``source``) coming from it: a write and the row that records it in
    one round trip instead of two.

    ``each_row``: one row per row ``source`` returned (None when it returned none, and
    nothing is inserted); otherwise exactly one row, the expressions reading ``source`` as
    a table (``EXISTS (SELECT 1 FROM source)``). Returns the instance with its id and the
    taken values set. Other fields are prepared as insert_new prepares them.
    """
    model = type(instance)
    db_connection = connections[instance._state.db or "default"]
    if db_connection.vendor != "postgresql":
        raise ImproperlyConfigured("insert_after needs PostgreSQL's data-modifying WITH.")
    plan = _insert_plan(model, db_connection)
    if not instance._state.adding or not plan.auto or instance.pk is not None:
        raise ValueError(f"insert_after inserts new rows with an auto id only, not {instance!r}.")
    unknown = set(taken) - {field.attname for field in plan.fields}
    if unknown:
        raise ValueError(f"insert_after: {model.__name__} has no field {sorted(unknown)}.")
    ops = db_connection.ops
    expressions, values = [], []
    for field in plan.fields:
        if field.attname in taken:
            expressions.append(taken[field.attname])
        else:
            values.append(_insert_value(field, instance, db_connection))
            expressions.append("%s")
    columns = [model._meta.get_field(name).column for name in taken]
    sql = (f"WITH source AS ({statement}) INSERT INTO {ops.quote_name(plan.table)} "
           f"({', '.join(ops.quote_name(f.column) for f in plan.fields)}) "
           f"SELECT {', '.join(expressions)}{' FROM source' if each_row else ''} "
           f"RETURNING {', '.join(ops.quote_name(c) for c in [plan.pk_column, *columns])}")
    with statement_cursor(db_connection) as cursor:
        cursor.execute(sql, [*params, *values])
        row = cursor.fetchone()
    if row is None:
        return None
    instance.pk = row[0]
    for attname, value in zip(taken, row[1:], strict=True):
        setattr(instance, attname, value)
    instance._state.adding = False
    instance._state.db = db_connection.alias
    return instance

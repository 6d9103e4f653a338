"""Row helpers for the busiest write path (issue 14)."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from functools import lru_cache
from typing import Any, TypeVar, cast

from django.core.exceptions import ObjectDoesNotExist
from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Expression, Field, Model, QuerySet, sql
from django.db.models.expressions import Col
from django.db.models.fields import AutoFieldMixin
from django.db.models.sql.compiler import SQLCompiler
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)

# NUL, which PostgreSQL refuses in text and jsonb, and lone surrogates (a "\ud800" escape in JSON),
# which no database driver can encode.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` as any text or JSON column takes it, on SQLite and PostgreSQL alike: what neither
    can store becomes U+FFFD (the replacement character)."""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSTORABLE.sub("\ufffd", text)


def storable_data(value: Any) -> Any:
    """Parsed JSON with every key and string made ``storable_text``, and NaN or an infinite number
    (json.loads takes ``NaN``, ``Infinity`` and 1e400; PostgreSQL's jsonb refuses them) made None,
    as if DR had sent null there: the answer is recorded rather than its transaction failing."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(key): storable_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable_data(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def get_or_create_under_lock(queryset: QuerySet[M], *, defaults: dict[str, Any], **lookup: Any) -> tuple[M, bool]:
    """``select_for_update().get_or_create()`` without its savepoint, for a row that is only ever
    created under a lock the caller already holds (an order's row lock, ``commerce.services.lock_order``).

    Django wraps the INSERT in a savepoint so that a concurrent creator's unique-key error can be
    caught and the row read instead; under the caller's lock there is no such creator, and the
    savepoint's two round trips are saved. Should another writer break that rule anyway, its
    IntegrityError rolls the caller's transaction back rather than writing a second row.
    """
    row = locked_row(queryset, **lookup)
    if row is not None:
        return row, False
    return queryset.create(**lookup, **defaults), True


def locked_row(queryset: QuerySet[M], **unique_lookup: Any) -> M | None:
    """The row a unique lookup finds, read with its lock, or None: ``first()`` without the sort by
    the model's ordering that it adds, which costs compiling and planning for one row."""
    rows = list(queryset.select_for_update().filter(**unique_lookup).order_by()[:1])
    return rows[0] if rows else None


def insert_unless_exists(instance: Model, *, unique_field: str) -> bool:
    """Insert ``instance`` unless a row with its ``unique_field`` value exists; False, changing
    nothing, if one does (stored before, or by a concurrent writer that won the insert).

    One statement, INSERT … ON CONFLICT (that column) DO NOTHING RETURNING id, in place of a look-up
    then an INSERT in a savepoint: outside a transaction it commits as it returns, and inside one it
    leaves the transaction usable without a savepoint, where a failed INSERT would abort it. A
    duplicate is not a failed INSERT either, which PostgreSQL would log with the statement.

    The ORM cannot say whether such an insert went in (bulk_create with ignore_conflicts returns no
    id), and compiling the statement for every row was a fifth of a webhook delivery's cost: the
    statement is written once per model from its fields, the values prepared by the fields as the
    ORM would (``pre_save`` fills ``auto_now`` and ``default`` columns).
    """
    model = type(instance)
    # The connection itself, not the django.db.connection proxy: the fields look it up many times,
    # each a thread-local look-up through the proxy, which doubled the time preparing the values.
    database = connections[router.db_for_write(model)]
    fields, statement = _insert_statement(model, unique_field, database.vendor)
    values = [field.get_db_prep_save(field.pre_save(instance, add=True), database) for field in fields]
    with database.cursor() as cursor:
        cursor.execute(statement, values)
        returned = cursor.fetchone()
    if returned is None:
        return False
    instance.pk = returned[0]
    instance._state.adding = False
    instance._state.db = database.alias
    return True


@lru_cache
def _insert_statement(model: type[Model], unique_field: str, vendor: str) -> tuple[list[Field[Any, Any]], str]:
    """The fields written and the statement, once per model and kind of database (PostgreSQL and
    SQLite both quote names with double quotes and take ON CONFLICT … DO NOTHING RETURNING)."""
    opts = model._meta
    fields = [field for field in opts.concrete_fields if field is not opts.pk and not field.generated]
    quote = connections[router.db_for_write(model)].ops.quote_name
    unique = opts.get_field(unique_field)
    assert isinstance(unique, Field) and unique.unique, f"{model.__name__}.{unique_field} is not a unique column"
    # The database numbers the row, and it lives in one table.
    assert isinstance(opts.pk, AutoFieldMixin) and not opts.parents, f"{model.__name__} is not a plain table"

    def column(field: Field[Any, Any]) -> str:
        return quote(cast(str, field.column))  # set on every concrete field

    statement = (
        f"INSERT INTO {quote(opts.db_table)} ({', '.join(map(column, fields))}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({column(unique)}) DO NOTHING RETURNING {column(opts.pk)}"
    )
    return fields, statement


class Slot(Expression):
    """A value of a statement compiled once (``update_returning_compiled``): it compiles to a
    placeholder, and each run fills it with its value prepared by ``field``, as the ORM prepares a
    value compared with or written to that field."""

    def __init__(self, name: str, model: type[Model], field_name: str) -> None:
        field = model._meta.get_field(field_name)
        assert isinstance(field, Field), f"{model.__name__}.{field_name} is not a column"
        super().__init__(output_field=field)
        self.name = name

    # The stubs' params are final values; this one is the slot itself, filled in at each run.
    def as_sql(self, compiler: Any, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:  # type: ignore[override]
        return "%s", [self]

    def prepared(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        return self.output_field.get_db_prep_value(value, connection, prepared=False)


def update_returning_compiled(
    model: type[M],
    key: Hashable,
    build: Callable[[], tuple[QuerySet[M], dict[str, Any]]],
    *,
    values: Mapping[str, Any],
    defer: Collection[str] = (),
) -> M | None:
    """An UPDATE of one row at most, returning that row as the UPDATE left it, read by the same
    statement: UPDATE … RETURNING, which PostgreSQL and SQLite (3.35 and later) take and Django's
    ORM does not write. A claim then costs one round trip, not an UPDATE and a SELECT.

    ``build`` gives the queryset and the changes, as ``queryset.update(**changes)`` takes them, so
    the filters and expressions (``F``, ``Case``) mean what they mean there; the values read back go
    through the fields' converters as a SELECT's would. ``defer`` names fields not to read back
    (large ones the caller does not need); reading one later costs a query, as with ``QuerySet.defer``.

    Only the values of the statement's ``Slot`` expressions change from one run to the next:
    ``build`` is called once per ``model``, ``key`` and database connection, and later runs only fill
    the slots with ``values``. The claims of events and instructions, every job's first statement,
    spent three quarters of their time building and compiling the same query (issue 14; README,
    pipeline throughput), and the rule the query states (which rows are due) is still written once.
    """
    database = connections[router.db_for_write(model)]
    statement = _compiled_for(database, model, ("update", key), lambda: _UpdateReturning(*build(), defer, database))
    return statement.run(values)


def row_compiled(model: type[M], key: Hashable, build: Callable[[], QuerySet[M]], *, values: Mapping[str, Any]) -> M:
    """``build().get()`` for a query of a model's own columns on a unique key (``select_for_update``
    included) that only the values of its ``Slot`` expressions change from one run to the next,
    compiled once per ``model``, ``key`` and database connection, as ``update_returning_compiled``.
    Raises the model's DoesNotExist when no row matches.

    For the order's lock, taken first by every handler and outbox hook (``commerce.services.lock_order``),
    and an instruction's when its outcome is written: compiling them was a twentieth of a worker's time."""
    database = connections[router.db_for_write(model)]
    statement = _compiled_for(database, model, ("select", key), lambda: _Select(build(), database))
    return statement.run(values)


def _compiled_for(database: BaseDatabaseWrapper, model: type[Model], key: Hashable, make: Callable[[], _S]) -> _S:
    compiled = _compiled.__dict__.setdefault("statements", {})
    statement = compiled.get((database.alias, model, key))
    if statement is None or statement.database is not database:
        statement = compiled[database.alias, model, key] = make()
        assert statement.model is model, f"{key!r} compiles a statement of {statement.model.__name__}"
    return cast(_S, statement)


class _Compiled:
    """A statement compiled for one connection (its params constants and ``Slot`` expressions), and
    how the rows it returns, ``columns``, are made model instances."""

    def __init__(
        self, model: type[Model], compiler: SQLCompiler, statement: str, params: Iterable[Any], columns: list[Col]
    ) -> None:
        self.model = model
        self.compiler = compiler
        self.database = compiler.connection
        self.statement = statement
        self.params = list(params)
        self.attnames = [column.target.attname for column in columns]
        self.converters = compiler.get_converters(list[Expression](columns))

    def _rows(self, values: Mapping[str, Any]) -> list[Any]:
        database = self.database
        params = [
            param.prepared(values[param.name], database) if isinstance(param, Slot) else param for param in self.params
        ]
        with transaction.mark_for_rollback_on_error(using=database.alias), database.cursor() as cursor:
            cursor.execute(self.statement, params)
            rows = cursor.fetchall()
        if self.converters:
            rows = list(self.compiler.apply_converters(rows, self.converters))
        return [self.model.from_db(database.alias, self.attnames, row) for row in rows]


class _UpdateReturning(_Compiled):
    """The UPDATE … RETURNING of a queryset and its changes."""

    def __init__(
        self, queryset: QuerySet[Any], changes: dict[str, Any], defer: Collection[str], database: BaseDatabaseWrapper
    ) -> None:
        model = queryset.model
        query = cast(sql.UpdateQuery, queryset.query.chain(sql.UpdateQuery))
        query.add_update_values(changes)
        query.annotations = {}
        compiler = query.get_compiler(connection=database)
        statement, params = compiler.as_sql()
        fields = [field for field in model._meta.concrete_fields if field.name not in defer]
        returning = ", ".join(database.ops.quote_name(cast(str, field.column)) for field in fields)
        columns = [field.get_col(model._meta.db_table) for field in fields]
        super().__init__(model, compiler, f"{statement} RETURNING {returning}", params, columns)

    def run(self, values: Mapping[str, Any]) -> Any:
        rows = self._rows(values)
        assert len(rows) <= 1, f"an UPDATE … RETURNING changed {len(rows)} rows of {self.model.__name__}"
        return rows[0] if rows else None


class _Select(_Compiled):
    """The SELECT of a queryset of one row at most, all of its model's columns."""

    def __init__(self, queryset: QuerySet[Any], database: BaseDatabaseWrapper) -> None:
        compiler = queryset.order_by().query.get_compiler(connection=database)
        statement, params = compiler.as_sql()
        columns = [column for column, _, _ in compiler.select]
        assert [column.target for column in columns] == list(queryset.model._meta.concrete_fields), "not a plain row"
        super().__init__(queryset.model, compiler, statement, params, columns)
        self.locks = queryset.query.select_for_update and database.features.has_select_for_update

    def run(self, values: Mapping[str, Any]) -> Any:
        if self.locks and self.database.get_autocommit():
            # The compiler refuses this only when it compiles (a lock that ends with its statement).
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        rows = self._rows(values)
        if not rows:
            missing: type[ObjectDoesNotExist] = getattr(self.model, "DoesNotExist")  # noqa: B009 (set on each model class)
            raise missing(f"{self.model._meta.object_name} matching query does not exist.")
        assert len(rows) == 1, f"{len(rows)} rows of {self.model.__name__} match a unique key"
        return rows[0]


_S = TypeVar("_S", bound=_Compiled)

#: Per thread, as Django's connections are: a compiled statement and its converters are bound to one.
_compiled = threading.local()

"""Admin lists of tables that reach millions of rows (the webhook inbox, the outbox, the call log).

Django's changelist is written for small tables: it counts every matching row for the paginator,
lists a filter's values with ``SELECT DISTINCT`` over the whole table, offers facet counts (a COUNT
per filter value) and a date hierarchy (``SELECT DISTINCT`` of every row's year or month). Each is a
full scan, seconds at ten million rows. ``BigTableAdmin`` keeps what each of those pages needs to
what an index answers (bench/admin_pages.py measures it): a capped count and the planner's estimate
past the cap, filter values found by skipping through an index, no facets, and dates filtered by
ranges (``DateFieldListFilter``) instead of a hierarchy.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Any

from django.contrib import admin
from django.contrib.admin.filters import AllValuesFieldListFilter
from django.contrib.admin.options import ShowFacets
from django.core.paginator import Paginator
from django.db import connections, router
from django.db.models import Field, Model, QuerySet
from django.http import HttpRequest

# Up to this many matching rows a list says exactly how many; past it, about how many.
EXACT_COUNT_UP_TO = 1_000


def planner_estimate(queryset: QuerySet[Any]) -> int | None:
    """How many rows PostgreSQL's planner expects ``queryset`` to return (None on other databases).

    Unfiltered, it is the table's ``pg_class.reltuples`` scaled to its current size; filtered, the
    column statistics applied to the conditions. ANALYZE (autovacuum) keeps both current.
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]  # psycopg decodes the JSON
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """A paginator that counts at most ``EXACT_COUNT_UP_TO`` rows and estimates beyond.

    The count is ``SELECT COUNT(*)`` of the first ``EXACT_COUNT_UP_TO + 1`` rows, which an index or
    the start of the table answers; when there are more, the planner's estimate (PostgreSQL) stands
    in for the rest, and the list says "about". Elsewhere (SQLite, in development) it counts them all.
    """

    estimated = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        capped = queryset.order_by()[: EXACT_COUNT_UP_TO + 1].count()
        if capped <= EXACT_COUNT_UP_TO:
            return capped
        estimate = planner_estimate(queryset)
        if estimate is None:
            return queryset.count()
        self.estimated = True
        return max(estimate, capped)

    def get_elided_page_range(
        self, number: int | float | str = 1, *, on_each_side: int = 3, on_ends: int = 2
    ) -> Iterator[str | int]:
        """Without an exact count, no links to the last pages: their numbers are guesses, and each
        would make the database skip nearly every row of the table to reach them."""
        if not self.estimated:
            yield from super().get_elided_page_range(number, on_each_side=on_each_side, on_ends=on_ends)
            return
        current = self.validate_number(number)
        first = max(1, current - on_each_side)
        if first > on_ends + 1:
            yield from range(1, on_ends + 1)
            yield str(self.ELLIPSIS)
        else:
            first = 1
        last = min(self.num_pages, current + on_each_side)
        yield from range(first, last + 1)
        if last < self.num_pages:
            yield str(self.ELLIPSIS)


def distinct_values(model: type[Model], field_name: str) -> list[Any]:
    """The field's distinct values, sorted, found by skipping through its index (one probe per value).

    PostgreSQL (before 18) has no skip scan: ``SELECT DISTINCT`` reads every row or index entry. A
    recursive query asking for the smallest value above the last one found reads one index entry per
    distinct value instead (SQLite runs it too). The field must be indexed: without an index each
    probe is a scan of the table.
    """
    connection = connections[router.db_for_read(model)]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    field = model._meta.get_field(field_name)
    if not isinstance(field, Field) or field.column is None:
        raise ValueError(f"{field_name} is not a column of {model.__name__}'s table")
    column = quote(field.column)
    sql = (
        f"WITH RECURSIVE found(value) AS ("
        f" SELECT MIN({column}) FROM {table}"
        f" UNION ALL"
        f" SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > found.value) FROM found"
        f" WHERE found.value IS NOT NULL"
        f") SELECT value FROM found WHERE value IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


class DistinctValuesFilter(AllValuesFieldListFilter):
    """Django's filter by each value of a field, with the values read by ``distinct_values`` (an
    indexed field of the list's own model only)."""

    def __init__(
        self,
        field: Field[Any, Any],
        request: HttpRequest,
        params: dict[str, list[str]],
        model: type[Model],
        model_admin: admin.ModelAdmin[Any],
        field_path: str,
    ) -> None:
        super().__init__(field, request, params, model, model_admin, field_path)
        values = distinct_values(model, field.name)
        # None is how the parent learns to offer the empty value (an API call with no answer).
        if field.null and model._default_manager.filter(**{f"{field.name}__isnull": True}).exists():
            values.append(None)
        # The parent's lookup_choices is a lazy DISTINCT query; it never runs once replaced (by a list,
        # which is all choices() needs of it).
        self.lookup_choices = values  # type: ignore[assignment]


class BigTableAdmin(admin.ModelAdmin):
    """A list that stays fast on a table of millions of rows; see the module's docstring.

    Subclasses filter by a field's values with ``DistinctValuesFilter`` (on an indexed field), by
    dates with ``DateFieldListFilter`` (not ``date_hierarchy``), and search with lookups an index
    answers (exact values, a prefix) rather than ``icontains``.
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = ShowFacets.NEVER

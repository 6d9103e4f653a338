"""Trigram indexes for searching by part of a value (``icontains``), on PostgreSQL only.

SQLite has no ``pg_trgm``: there the migrations that call these do nothing, and a search is a plain
scan, which is fine at a development database's size. The indexes live in the migrations, not in
the models' ``Meta``, so that SQLite's schema and the migration state stay the same on both.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


def trigram_index_name(model_name: str, field: str) -> str:
    return f"{model_name}_{field}_trgm"[:30]


def trigram_indexes(
    app_label: str, model_name: str, fields: tuple[str, ...], *, any_case: bool = True
) -> migrations.RunPython:
    """A migration operation adding a GIN ``gin_trgm_ops`` index on each field, on PostgreSQL only.

    Django asks ``icontains`` as ``UPPER(field) LIKE UPPER('%…%')``: with ``any_case`` the index is on
    ``UPPER(field)``, the expression the query filters on; without it, on the field (``contains``).
    (Django 5.2 writes ``GinIndex(OpClass(Upper(…)))`` without the parentheses PostgreSQL needs
    around the expression, so that one is written out.)
    """

    def forwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        model = apps.get_model(app_label, model_name)
        quote = schema_editor.quote_name
        for field in fields:
            name = trigram_index_name(model_name, field)
            if not any_case:
                schema_editor.add_index(model, GinIndex(fields=[field], name=name, opclasses=["gin_trgm_ops"]))
                continue
            column = model._meta.get_field(field).column
            schema_editor.execute(
                f"CREATE INDEX {quote(name)} ON {quote(model._meta.db_table)} "
                f"USING gin ((UPPER({quote(column)}::text)) gin_trgm_ops)"
            )

    def backwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for field in fields:
            schema_editor.execute(
                f"DROP INDEX IF EXISTS {schema_editor.quote_name(trigram_index_name(model_name, field))}"
            )

    return migrations.RunPython(forwards, backwards, elidable=False)


# CreateExtension already does nothing on a database other than PostgreSQL.
__all__ = ["TrigramExtension", "trigram_indexes"]

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


def trigram_indexes(app_label: str, model_name: str, fields: tuple[str, ...]) -> migrations.RunPython:
    """A migration operation adding a GIN ``gin_trgm_ops`` index on each field, on PostgreSQL only."""

    def indexes() -> list[GinIndex]:
        return [
            GinIndex(fields=[field], name=trigram_index_name(model_name, field), opclasses=["gin_trgm_ops"])
            for field in fields
        ]

    def forwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        model = apps.get_model(app_label, model_name)
        for index in indexes():
            schema_editor.add_index(model, index)

    def backwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        model = apps.get_model(app_label, model_name)
        for index in indexes():
            schema_editor.remove_index(model, index)

    return migrations.RunPython(forwards, backwards, elidable=False)


# CreateExtension already does nothing on a database other than PostgreSQL.
__all__ = ["TrigramExtension", "trigram_indexes"]

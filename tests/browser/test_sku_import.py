"""A merchandiser imports a CSV with two bad rows at 1280 px: the report lists both rows' errors
(field, value, what is wrong), the confirm page says how many rows will be imported and rejected,
and the good rows import while the bad ones do not."""

import csv
from pathlib import Path

import pytest
from playwright.sync_api import expect

from catalog.models import Sku

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEADERS = [
    "sku_id",
    "name",
    "fulfillment_model",
    "tax_code",
    "eccn",
    "hs_code",
    "country_of_origin",
    "part_number",
    "weight",
]


def row(sku_id: str, **values: str) -> dict[str, str]:
    return {
        "sku_id": sku_id,
        "name": f"Desk lamp {sku_id}",
        "fulfillment_model": "distributed",
        "tax_code": "4512.1",
        "eccn": "EAR99",
        "hs_code": "9405.20.0000",
        "country_of_origin": "US",
        "part_number": f"PN-{sku_id}",
        "weight": "1.5",
        **values,
    }


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=HEADERS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_merchandiser_sees_both_bad_rows_and_imports_the_good_ones(page, live_server, log_in, screenshot, tmp_path):
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in("merchandiser", groups=["Merchandisers"], superuser=False)
    rows = [
        row("LAMP-1"),
        row("LAMP-2"),
        row("LAMP-3", weight="heavy"),  # row 3: one error
        row("LAMP-4"),
        row("LAMP-5", hs_code="9405", country_of_origin="XX"),  # row 5: two errors
        row("LAMP-6"),
    ]
    upload = write_csv(tmp_path / "lamps.csv", rows)

    page.goto(f"{live_server.url}/admin/catalog/sku/import/")
    page.set_input_files("#id_import_file", str(upload))
    page.click("input[type=submit]")

    report = page.locator("#import-report")
    report.wait_for(state="visible")
    expect(report.locator("h2")).to_have_text("2 rows rejected: fix them in the file and import it again")
    expect(report.locator("thead th")).to_have_text(["Row", "Field", "Value", "What is wrong"], ignore_case=True)
    table = [row.locator("td").all_inner_texts() for row in report.locator("tbody tr").all()]
    assert table == [
        ["3", "weight", "heavy", "'heavy' is not a number"],
        [
            "5",
            "hs_code",
            "9405",
            "'9405' is not a valid HS code: write ####.##.#### (the first six digits are required).",
        ],
        ["5", "country_of_origin", "XX", "'XX' is not an ISO 3166-1 alpha-2 country code (e.g. US, DE)."],
    ]
    # Before confirming, the page says what the click will do.
    summary = page.locator("#import-summary")
    expect(summary).to_contain_text("4 of 6 rows will be imported (4 new, 0 updated); 2 rejected")
    expect(page.locator(".import-preview tr.rejected")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    preview = page.locator(".import-preview").bounding_box()
    assert preview is not None
    full = screenshot("csv-import-report")
    page.screenshot(  # the part worth showing: the report, the summary, the preview
        path=str(full.with_name("csv-import-report-crop.png")),
        clip={"x": 0, "y": 0, "width": 1280, "height": preview["y"] + preview["height"] + 16},
    )
    assert not Sku.objects.exists()  # nothing until confirmed

    # While the request runs the button says what is happening: the form's submission is held back
    # (its submit() stands aside) to read the button, then let go.
    page.evaluate(
        "() => { const submit = HTMLFormElement.prototype.submit;"
        " HTMLFormElement.prototype.submit = function () { window.heldForm = this; window.realSubmit = submit; }; }"
    )
    button = page.locator("input[name=confirm]")
    expect(button).to_have_value("Import the 4 valid rows")
    button.click()
    state = page.evaluate("(b => [b.value, b.disabled])(document.querySelector('input[name=confirm]'))")
    assert state == ["Importing 4 rows…", True]
    with page.expect_navigation():
        page.evaluate("() => window.realSubmit.call(window.heldForm)")

    expect(page.locator(".messagelist")).to_have_text(
        "Imported 4 of 6 rows (4 new, 0 updated); 2 rejected (rows 3, 5)."
    )
    assert sorted(Sku.objects.values_list("sku_id", flat=True)) == ["LAMP-1", "LAMP-2", "LAMP-4", "LAMP-6"]
    listed = page.locator("#result_list tbody th, #result_list tbody td.field-sku_id").all_inner_texts()
    assert sorted(listed) == ["LAMP-1", "LAMP-2", "LAMP-4", "LAMP-6"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

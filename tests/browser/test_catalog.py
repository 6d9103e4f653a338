"""A merchandiser adds a SKU, pushes it to DR (the sandbox), and sees it synced."""

import pytest

from catalog.models import Sku
from sandbox.models import InventoryItem as SandboxInventoryItem
from sandbox.models import Sku as SandboxSku

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_merchandiser_adds_pushes_and_sees_a_synced_sku(page, live_server, log_in, screenshot, settings):
    settings.DR_API_BASE_URL = f"{live_server.url}/sandbox/api"
    settings.CATALOG_PUSH_DELAY_SECONDS = 0
    log_in("merchandiser", groups=["Merchandisers"], superuser=False)

    page.goto(f"{live_server.url}/admin/catalog/sku/add/")
    page.fill("#id_sku_id", "LAMP-1")
    page.fill("#id_name", "Desk lamp")
    page.select_option("#id_fulfillment_model", "distributed")
    page.fill("#id_tax_code", "4512.1")
    page.fill("#id_eccn", "EAR99")
    page.fill("#id_hs_code", "9405.20.0000")
    page.select_option("#id_country_of_origin", "US")
    page.fill("#id_part_number", "LMP-100")
    page.fill("#id_manufacturer_id", "ACME")
    page.click("input[name=_continue]")
    page.wait_for_selector("text=was added successfully")
    assert Sku.objects.get(sku_id="LAMP-1").sync_state == Sku.SyncState.DRAFT

    page.click("input[value='Push our values']")
    page.wait_for_selector("text=queued for a push")
    page.reload()
    assert Sku.objects.get(sku_id="LAMP-1").sync_state == Sku.SyncState.SYNCED
    page.locator(".field-sync_state", has_text="Synced").wait_for()
    assert screenshot("catalog-sku-synced").exists()

    # The pair at DR agrees on every shared attribute.
    at_dr = SandboxSku.objects.get(dr_id="LAMP-1").data
    item = SandboxInventoryItem.objects.get(dr_id="LAMP-1").data
    for key in ("partNumber", "manufacturerId", "countryOfOrigin", "eccn", "hsCode"):
        assert at_dr[key] == item[key], key

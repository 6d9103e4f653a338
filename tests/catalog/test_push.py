"""Pushing SKUs to DR through the outbox, against the sandbox over HTTP, checked in its stored state."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from catalog.models import Sku
from catalog.services import PUSH_KIND, sku_delete, sku_drift_fetch, sku_update, skus_change_model, skus_push
from digitalriver.models import ApiCall, Instruction

from .fixtures_flow import (
    SHARED_KEYS,
    dr_calls,
    dr_item,
    dr_sku,
    make_sku,
    refresh,
    refuse_next,
    send_due,
)

State = Sku.SyncState

pytestmark = pytest.mark.usefixtures("dr")


def push(sku: Sku) -> Sku:
    skus_push(skus=[sku])
    send_due()
    return refresh(sku)


def test_a_new_sku_is_a_draft_and_nothing_goes_to_dr():
    sku = make_sku()
    assert sku.sync_state == State.DRAFT
    assert not Instruction.objects.exists()
    sku_update(sku=sku, values={"name": "Renamed"})
    send_due()
    assert refresh(sku).sync_state == State.DRAFT
    assert dr_sku("WIDGET-1") is None


def test_distributed_push_sends_the_sku_and_an_inventory_item_sharing_its_attributes():
    sku = make_sku()
    skus_push(skus=[sku])
    assert refresh(sku).sync_state == State.QUEUED
    send_due()

    sku = refresh(sku)
    assert sku.sync_state == State.SYNCED and sku.sync_error == ""
    assert sku.pushed_at is not None and sku.pushed_model == Sku.FulfillmentModel.DISTRIBUTED
    stored_sku, stored_item = dr_sku("WIDGET-1"), dr_item("WIDGET-1")
    assert stored_sku["name"] == "Widget" and stored_sku["weight"] == 12.5 and stored_sku["managedFulfillment"] is None
    assert stored_item is not None and not stored_item.managed
    expected = {
        "manufacturerId": "MFR-1",
        "partNumber": "PN-1",
        "countryOfOrigin": "US",
        "eccn": "EAR99",
        "hsCode": "8471.30.0100",
        "allowOversell": True,
    }
    assert {key: stored_item.data.get(key) for key in SHARED_KEYS} == expected
    # allowOversell is the item's alone from API version 2021-12-13
    # (product-management/creating-and-updating-skus.md#allow-oversell): never in the SKU body.
    del expected["allowOversell"]
    assert {key: stored_sku.get(key) for key in SHARED_KEYS if key != "allowOversell"} == expected
    assert "allowOversell" not in stored_sku
    assert "allowOversell" not in sku.pushed_values and "managedFulfillment" not in sku.pushed_values
    # A new pair costs two calls: the SKU upsert and the item's creation.
    assert dr_calls("PUT", "/skus/WIDGET-1") == 1 and dr_calls("POST", "/inventory-items") == 1


def test_a_cleared_shared_attribute_leaves_the_sku_and_the_drift_check_shows_the_item_keeping_it():
    """DR documents no way to clear an inventory item's attribute (its update takes strings, never
    null), so a cleared value is left out of the update: the SKU loses it (the upsert replaces the
    SKU), the item keeps DR's old value, and the drift check names it."""
    sku = push(make_sku())
    sku_update(sku=sku, values={"hs_code": "", "manufacturer_id": "", "allow_oversell": False})
    send_due()
    assert refresh(sku).sync_state == State.SYNCED
    stored_sku, stored_item = dr_sku("WIDGET-1"), dr_item("WIDGET-1").data
    for key in ("hsCode", "manufacturerId"):
        assert key not in stored_sku
    assert stored_item["hsCode"] == "8471.30.0100" and stored_item["manufacturerId"] == "MFR-1"
    assert stored_item["allowOversell"] is False
    # The item existed, so it was updated in place rather than created again, with no null in it.
    assert dr_calls("POST", "/inventory-items/WIDGET-1") == 1
    update = ApiCall.objects.get(method="POST", path="/inventory-items/WIDGET-1")
    assert None not in json.loads(update.request_body).values()
    rows = {row["field"]: row for row in sku_drift_fetch(sku=refresh(sku)).rows}
    assert set(rows) == {"hsCode", "manufacturerId"}
    assert rows["hsCode"] == {"field": "hsCode", "ours": None, "sku": None, "inventory_item": "8471.30.0100"}


def test_orchestrated_push_sends_managed_fulfillment_and_dr_creates_the_inventory_item():
    sku = push(make_sku(fulfillment_model=Sku.FulfillmentModel.ORCHESTRATED))
    assert sku.sync_state == State.SYNCED
    assert dr_sku("WIDGET-1")["managedFulfillment"] == "DRGlobalFulfillment"
    item = dr_item("WIDGET-1")
    assert item is not None and item.managed and item.data["partNumber"] == "PN-1"
    assert dr_calls("POST", "/inventory-items") == 0


@pytest.mark.parametrize("model", [Sku.FulfillmentModel.THIRD_PARTY, Sku.FulfillmentModel.DIGITAL])
def test_third_party_and_digital_push_the_sku_only(model):
    values = {"fulfillment_model": model}
    if model == Sku.FulfillmentModel.DIGITAL:
        values |= {"tax_code": "4512.2", "part_number": "", "manufacturer_id": ""}
    sku = push(make_sku(**values))
    assert sku.sync_state == State.SYNCED
    assert dr_sku("WIDGET-1")["managedFulfillment"] is None
    assert dr_item("WIDGET-1") is None
    assert dr_sku("WIDGET-1")["physical"] is (model == Sku.FulfillmentModel.THIRD_PARTY)


def test_changing_model_distributed_to_orchestrated_to_third_party_and_back():
    sku = push(make_sku())
    assert not dr_item("WIDGET-1").managed

    skus_change_model(skus=[sku], model=Sku.FulfillmentModel.ORCHESTRATED)
    send_due()
    assert refresh(sku).sync_state == State.SYNCED
    # Ours was deleted first; the item now there is DR's own.
    assert dr_calls("DELETE", "/inventory-items/WIDGET-1") == 1
    assert dr_item("WIDGET-1").managed
    assert dr_sku("WIDGET-1")["managedFulfillment"] == "DRGlobalFulfillment"

    skus_change_model(skus=[sku], model=Sku.FulfillmentModel.THIRD_PARTY)
    send_due()
    assert refresh(sku).sync_state == State.SYNCED
    assert dr_sku("WIDGET-1")["managedFulfillment"] is None
    assert dr_item("WIDGET-1") is None
    # DR's documented way out of managed fulfillment: an update request with managedFulfillment null
    # (product-management/creating-and-updating-skus.md), then the upsert without the key.
    unmanage = ApiCall.objects.get(method="POST", path="/skus/WIDGET-1")
    assert json.loads(unmanage.request_body) == {"managedFulfillment": None}
    last_put = ApiCall.objects.filter(method="PUT", path="/skus/WIDGET-1").latest("pk")
    assert unmanage.pk < last_put.pk and "managedFulfillment" not in json.loads(last_put.request_body)

    skus_change_model(skus=[sku], model=Sku.FulfillmentModel.DISTRIBUTED)
    send_due()
    sku = refresh(sku)
    assert sku.sync_state == State.SYNCED and sku.pushed_model == Sku.FulfillmentModel.DISTRIBUTED
    item = dr_item("WIDGET-1")
    assert item is not None and not item.managed and item.data["partNumber"] == "PN-1"


def test_five_quick_edits_cause_one_push_of_the_newest_values():
    sku = push(make_sku())
    puts_before = dr_calls("PUT", "/skus/WIDGET-1")
    for number in range(1, 6):
        sku_update(sku=refresh(sku), values={"name": f"Widget v{number}"})
        assert refresh(sku).sync_state == State.QUEUED
    waiting = Instruction.objects.filter(kind=PUSH_KIND, state=Instruction.State.PENDING)
    assert waiting.count() == 1
    # Not due before the push delay: edits made meanwhile join it instead of sending one each.
    assert waiting.get().next_attempt_at > timezone.now() + timedelta(seconds=1)

    send_due()
    assert dr_calls("PUT", "/skus/WIDGET-1") == puts_before + 1
    assert dr_sku("WIDGET-1")["name"] == "Widget v5"
    assert refresh(sku).sync_state == State.SYNCED


def test_an_edit_after_a_push_is_out_of_sync_when_automatic_pushes_are_off(settings):
    sku = push(make_sku())
    settings.CATALOG_AUTO_PUSH = False
    sku_update(sku=sku, values={"name": "Renamed"})
    assert refresh(sku).sync_state == State.OUT_OF_SYNC
    assert not Instruction.objects.filter(state=Instruction.State.PENDING).exists()
    assert dr_sku("WIDGET-1")["name"] == "Widget"

    assert push(sku).sync_state == State.SYNCED
    assert dr_sku("WIDGET-1")["name"] == "Renamed"


def test_an_edit_that_does_not_touch_drs_values_queues_nothing():
    sku = push(make_sku())
    sku_update(sku=sku, values={"name": "Widget"})
    assert refresh(sku).sync_state == State.SYNCED
    assert not Instruction.objects.filter(state=Instruction.State.PENDING).exists()


def test_a_400_from_dr_leaves_the_sku_failed_with_drs_message_and_an_edit_queues_it_again():
    sku = make_sku()
    refuse_next("/skus/WIDGET-1", status=400, method="PUT")
    sku = push(sku)
    assert sku.sync_state == State.FAILED
    assert "sandbox_400" in sku.sync_error and "bad network answered this call" in sku.sync_error
    assert Instruction.objects.get(kind=PUSH_KIND).state == Instruction.State.FAILED

    sku_update(sku=sku, values={"name": "Fixed"})
    sku = refresh(sku)
    assert sku.sync_state == State.QUEUED and sku.sync_error == ""
    send_due()
    assert refresh(sku).sync_state == State.SYNCED
    assert dr_sku("WIDGET-1")["name"] == "Fixed"


def test_a_value_only_dr_can_refuse_fails_with_drs_own_words():
    # DR knows part number PN-1 as made by MFR-1 (from another item); only DR can tell.
    push(make_sku(sku_id="FIRST"))
    sku = push(make_sku(manufacturer_id="OTHER-MFR", fulfillment_model=Sku.FulfillmentModel.ORCHESTRATED))
    assert sku.sync_state == State.FAILED
    assert "Manufacturer id 'OTHER-MFR' does not match part number 'PN-1'" in sku.sync_error
    assert dr_sku("WIDGET-1") is None


def test_a_transient_failure_keeps_the_sku_queued_for_the_retry(settings):
    settings.DR_CLIENT_MAX_RETRIES = 0
    sku = make_sku()
    refuse_next("/skus/WIDGET-1", status=503, method="PUT")
    sku = push(sku)
    assert sku.sync_state == State.QUEUED
    assert Instruction.objects.get(kind=PUSH_KIND).state == Instruction.State.RETRY_WAIT
    send_due()
    assert refresh(sku).sync_state == State.SYNCED


def test_delete_removes_the_sku_and_its_inventory_item_at_dr():
    sku = push(make_sku())
    assert dr_item("WIDGET-1") is not None
    sku_delete(sku=sku)
    assert not Sku.objects.filter(sku_id="WIDGET-1").exists()
    send_due()
    assert dr_sku("WIDGET-1") is None and dr_item("WIDGET-1") is None


def test_deleting_a_sku_waiting_for_its_push_sends_no_push():
    sku = push(make_sku())
    sku_update(sku=sku, values={"name": "Renamed"})
    sku_delete(sku=refresh(sku))
    puts = dr_calls("PUT", "/skus/WIDGET-1")
    send_due()
    assert dr_calls("PUT", "/skus/WIDGET-1") == puts
    assert dr_sku("WIDGET-1") is None


def test_deleting_a_draft_calls_nothing():
    sku_delete(sku=make_sku())
    send_due()
    assert dr_calls("DELETE", "/skus/WIDGET-1") == 0


def test_a_model_the_sku_does_not_fit_is_refused_and_nothing_is_queued():
    sku = push(make_sku())
    changed, refused = skus_change_model(skus=[sku], model=Sku.FulfillmentModel.DIGITAL)
    assert changed == []
    assert (
        "part_number: A part number applies to physical products only: clear it for a digital SKU."
        in (refused["WIDGET-1"])
    )
    sku = refresh(sku)
    assert sku.fulfillment_model == Sku.FulfillmentModel.DISTRIBUTED and sku.sync_state == State.SYNCED


def test_the_id_of_a_pushed_sku_cannot_change():
    draft = make_sku(sku_id="DRAFT-1")
    assert sku_update(sku=draft, values={"sku_id": "DRAFT-2"}).sku_id == "DRAFT-2"
    sku = push(make_sku())
    with pytest.raises(ValidationError) as caught:
        sku_update(sku=sku, values={"sku_id": "WIDGET-2"})
    assert caught.value.message_dict == {
        "sku_id": ["The SKU id cannot change once the SKU was pushed: create a new SKU."]
    }
    assert refresh(sku).sku_id == "WIDGET-1"

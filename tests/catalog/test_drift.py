"""Drift: DR's copy changed behind our back is found, and both repairs leave the pair agreeing with us."""

import pytest
from django.core.exceptions import ValidationError

from catalog.models import Sku
from catalog.services import sku_drift_fetch, sku_take_dr_values, skus_drift_fetch, skus_push
from catalog.tasks import check_drift_all
from sandbox.models import Sku as DrSku

from .fixtures_flow import (
    SHARED_KEYS,
    change_at_dr,
    dr_item,
    dr_sku,
    make_sku,
    refresh,
    refuse_next,
    send_due,
)

State = Sku.SyncState

pytestmark = pytest.mark.usefixtures("dr")


def pushed_sku(**overrides) -> Sku:
    sku = make_sku(**overrides)
    skus_push(skus=[sku])
    send_due()
    sku = refresh(sku)
    assert sku.sync_state == State.SYNCED
    return sku


def assert_pair_agrees_with(sku: Sku) -> None:
    stored_sku, stored_item = dr_sku(sku.sku_id), dr_item(sku.sku_id).data
    ours = {
        "manufacturerId": sku.manufacturer_id,
        "partNumber": sku.part_number,
        "countryOfOrigin": sku.country_of_origin.code,
        "eccn": sku.eccn,
        "hsCode": sku.hs_code,
        "allowOversell": sku.allow_oversell,
    }
    assert {key: stored_item.get(key) for key in SHARED_KEYS} == ours
    # allowOversell is the item's alone (product-management/creating-and-updating-skus.md#allow-oversell).
    del ours["allowOversell"]
    assert {key: stored_sku.get(key) for key in SHARED_KEYS if key != "allowOversell"} == ours
    assert stored_sku["name"] == sku.name


def test_a_pushed_pair_has_no_drift():
    report = sku_drift_fetch(sku=pushed_sku())
    assert report.rows == [] and not report.drifted and report.error == ""
    assert refresh(report.sku).sync_state == State.SYNCED


def test_drift_in_the_sku_is_found_and_shown_side_by_side():
    sku = pushed_sku()
    change_at_dr("WIDGET-1", sku={"hsCode": "9999.99.9999", "name": "Renamed at DR"})

    report = sku_drift_fetch(sku=sku)
    assert report.drifted
    rows = {row["field"]: row for row in report.rows}
    assert set(rows) == {"name", "hsCode"}
    assert rows["hsCode"] == {
        "field": "hsCode",
        "ours": "8471.30.0100",
        "sku": "9999.99.9999",
        "inventory_item": "8471.30.0100",
    }
    assert rows["name"]["ours"] == "Widget" and rows["name"]["sku"] == "Renamed at DR"
    sku = refresh(sku)
    assert sku.sync_state == State.OUT_OF_SYNC
    assert sku.drift == report.rows and sku.dr_sku["hsCode"] == "9999.99.9999"


def test_drift_in_the_inventory_item_alone_is_found():
    sku = pushed_sku()
    change_at_dr("WIDGET-1", item={"partNumber": "PN-OTHER", "allowOversell": False})
    rows = {row["field"]: row for row in sku_drift_fetch(sku=sku).rows}
    assert set(rows) == {"partNumber", "allowOversell"}
    assert rows["partNumber"]["sku"] == "PN-1" and rows["partNumber"]["inventory_item"] == "PN-OTHER"


def test_a_missing_inventory_item_or_sku_is_drift():
    sku = pushed_sku()
    dr_item("WIDGET-1").delete()
    assert [row["field"] for row in sku_drift_fetch(sku=sku).rows] == ["inventoryItem"]
    DrSku.objects.filter(dr_id="WIDGET-1").delete()
    assert [row["field"] for row in sku_drift_fetch(sku=sku).rows] == ["sku"]


def test_push_our_values_repairs_the_sku_and_the_inventory_item():
    sku = pushed_sku()
    change_at_dr("WIDGET-1", sku={"hsCode": "9999.99.9999"}, item={"eccn": "5A992"})
    assert sku_drift_fetch(sku=sku).drifted

    skus_push(skus=[sku])
    send_due()
    sku = refresh(sku)
    assert sku.sync_state == State.SYNCED
    assert_pair_agrees_with(sku)
    assert sku.hs_code == "8471.30.0100"
    assert not sku_drift_fetch(sku=sku).drifted


def test_take_drs_values_copies_the_skus_values_and_brings_the_item_in_step():
    sku = pushed_sku()
    change_at_dr("WIDGET-1", sku={"hsCode": "8471.41.0000", "name": "DR's name", "countryOfOrigin": "DE"})
    sku_drift_fetch(sku=sku)

    sku = sku_take_dr_values(sku=refresh(sku))
    assert sku.hs_code == "8471.41.0000" and sku.name == "DR's name" and sku.country_of_origin == "DE"
    assert sku.sync_state == State.QUEUED
    send_due()
    sku = refresh(sku)
    assert sku.sync_state == State.SYNCED
    assert_pair_agrees_with(sku)
    assert dr_item("WIDGET-1").data["hsCode"] == "8471.41.0000"
    assert not sku_drift_fetch(sku=sku).drifted


def test_take_drs_values_needs_drs_values():
    sku = make_sku()
    with pytest.raises(ValidationError, match="check drift first"):
        sku_take_dr_values(sku=sku)
    sku = pushed_sku(sku_id="GONE")
    DrSku.objects.filter(dr_id="GONE").delete()
    sku_drift_fetch(sku=sku)
    with pytest.raises(ValidationError, match="push ours instead"):
        sku_take_dr_values(sku=refresh(sku))


def test_a_check_that_cannot_reach_dr_reports_the_error_and_changes_nothing():
    sku = pushed_sku()
    refuse_next("/skus/WIDGET-1", status=403, method="GET")
    report = sku_drift_fetch(sku=sku)
    assert "403" in report.error and report.rows == []
    assert refresh(sku).sync_state == State.SYNCED


def test_scan_checks_every_pushed_sku_and_counts():
    pushed_sku(sku_id="A-1")
    pushed_sku(sku_id="B-1")
    pushed_sku(sku_id="C-1")
    make_sku(sku_id="DRAFT-1")
    change_at_dr("B-1", item={"hsCode": "1111.11"})
    refuse_next("/skus/C-1", status=403, method="GET")

    scan = skus_drift_fetch()
    assert [report.sku.sku_id for report in scan.reports] == ["A-1", "B-1", "C-1"]
    assert scan.counts() == {"checked": 3, "in_step": 1, "drifted": 1, "errors": 1}
    assert Sku.objects.get(sku_id="B-1").sync_state == State.OUT_OF_SYNC


def test_the_daily_task_returns_the_counts():
    pushed_sku(sku_id="A-1")
    pushed_sku(sku_id="B-1")
    change_at_dr("A-1", sku={"eccn": "5A992"})
    assert check_drift_all.apply().get() == {"checked": 2, "in_step": 1, "drifted": 1, "errors": 0}
    assert Sku.objects.get(sku_id="A-1").drift[0]["field"] == "eccn"


def test_drift_in_drs_own_inventory_item_of_an_orchestrated_sku_is_repaired_by_a_push():
    sku = pushed_sku(fulfillment_model=Sku.FulfillmentModel.ORCHESTRATED)
    change_at_dr("WIDGET-1", item={"eccn": "5A992"})
    rows = sku_drift_fetch(sku=sku).rows
    assert [(row["field"], row["inventory_item"]) for row in rows] == [("eccn", "5A992")]

    skus_push(skus=[sku])
    send_due()
    assert dr_item("WIDGET-1").managed and dr_item("WIDGET-1").data["eccn"] == "EAR99"
    assert not sku_drift_fetch(sku=refresh(sku)).drifted


def test_take_drs_values_follows_drs_managed_fulfillment():
    sku = pushed_sku(fulfillment_model=Sku.FulfillmentModel.THIRD_PARTY)
    change_at_dr("WIDGET-1", sku={"managedFulfillment": "DRGlobalFulfillment"})
    assert [row["field"] for row in sku_drift_fetch(sku=sku).rows] == ["managedFulfillment"]

    sku = sku_take_dr_values(sku=refresh(sku))
    assert sku.fulfillment_model == Sku.FulfillmentModel.ORCHESTRATED
    send_due()
    assert refresh(sku).sync_state == State.SYNCED and not sku_drift_fetch(sku=refresh(sku)).drifted

    change_at_dr("WIDGET-1", sku={"managedFulfillment": None})
    sku_drift_fetch(sku=refresh(sku))
    assert sku_take_dr_values(sku=refresh(sku)).fulfillment_model == Sku.FulfillmentModel.THIRD_PARTY

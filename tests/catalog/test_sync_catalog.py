"""`manage.py sync_catalog`: push what is stale (or everything), or check every pushed SKU for drift."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Sku
from catalog.services import sku_update, skus_push

from .fixtures_flow import (
    change_at_dr,
    dr_calls,
    dr_sku,
    make_sku,
    refresh,
    refuse_next,
    send_due,
)

State = Sku.SyncState

pytestmark = pytest.mark.usefixtures("dr")


def sync_catalog(*args) -> str:
    out = StringIO()
    call_command("sync_catalog", *args, stdout=out)
    return out.getvalue()


def pushed_sku(sku_id: str) -> Sku:
    sku = make_sku(sku_id=sku_id)
    skus_push(skus=[sku])
    send_due()
    return refresh(sku)


def test_without_flags_it_pushes_skus_out_of_sync_or_failed_and_nothing_else(settings):
    settings.CATALOG_AUTO_PUSH = False
    in_step = pushed_sku("IN-STEP")
    stale = pushed_sku("STALE")
    sku_update(sku=stale, values={"name": "Renamed"})
    failing = make_sku(sku_id="FAILING")
    refuse_next("/skus/FAILING", status=400, method="PUT")
    skus_push(skus=[failing])
    send_due()
    assert refresh(failing).sync_state == State.FAILED
    draft = make_sku(sku_id="DRAFT")

    output = sync_catalog()

    assert "Pushed 2 SKUs: 2 synced, 0 failed, 0 still queued." in output
    assert refresh(stale).sync_state == State.SYNCED and dr_sku("STALE")["name"] == "Renamed"
    assert refresh(failing).sync_state == State.SYNCED
    assert refresh(draft).sync_state == State.DRAFT and dr_sku("DRAFT") is None
    assert dr_calls("PUT", f"/skus/{in_step.sku_id}") == 1


def test_all_pushes_every_sku_and_reports_drs_refusals(settings):
    pushed_sku("IN-STEP")
    make_sku(sku_id="DRAFT")
    make_sku(sku_id="REFUSED")
    refuse_next("/skus/REFUSED", status=400, method="PUT")

    output = sync_catalog("--all")

    assert "Pushed 3 SKUs: 2 synced, 1 failed, 0 still queued." in output
    assert "REFUSED: failed: sandbox_400: The sandbox's bad network answered this call." in output
    assert dr_calls("PUT", "/skus/IN-STEP") == 2 and dr_sku("DRAFT") is not None
    assert Sku.objects.get(sku_id="REFUSED").sync_state == State.FAILED


def test_a_push_dr_cannot_take_yet_is_reported_still_queued(settings):
    settings.DR_CLIENT_MAX_RETRIES = 0
    make_sku(sku_id="BUSY")
    refuse_next("/skus/BUSY", status=503, method="PUT")
    output = sync_catalog("--all")
    assert "BUSY: still queued (a retry after a temporary failure at DR, or another sender)" in output
    assert "Pushed 1 SKUs: 0 synced, 0 failed, 1 still queued." in output


def test_a_stale_sku_that_breaks_drs_rules_is_not_pushed_and_is_named(settings):
    settings.CATALOG_AUTO_PUSH = False
    stale = pushed_sku("STALE")
    sku_update(sku=stale, values={"name": "Renamed"})
    broken = pushed_sku("BROKEN")
    Sku.objects.filter(pk=broken.pk).update(sync_state=State.OUT_OF_SYNC, part_number="")

    output = sync_catalog()

    assert "BROKEN was not pushed: part_number: A part number is required for its inventory item." in output
    assert "Pushed 1 SKUs: 1 synced, 0 failed, 0 still queued. 1 not pushed: they break DR's rules." in output
    assert refresh(stale).sync_state == State.SYNCED
    assert refresh(broken).sync_state == State.OUT_OF_SYNC
    assert dr_calls("PUT", "/skus/BROKEN") == 1  # its first push only


def test_nothing_to_push_says_so():
    pushed_sku("IN-STEP")
    assert sync_catalog().strip() == "No SKUs out of sync or failed to push."


def test_check_drift_prints_each_sku_and_the_counts():
    pushed_sku("A-1")
    pushed_sku("B-1")
    pushed_sku("C-1")
    make_sku(sku_id="DRAFT")
    change_at_dr("B-1", sku={"hsCode": "9999.99.9999"})
    refuse_next("/skus/C-1", status=403, method="GET")

    output = sync_catalog("--check-drift").splitlines()

    assert output[0] == "A-1: in step"
    assert output[1] == (
        "B-1: drift in hsCode (ours '8471.30.0100', DR's SKU '9999.99.9999', inventory item '8471.30.0100')"
    )
    assert output[2].startswith("C-1: could not check: GET /skus/C-1: 403")
    assert output[3] == "Checked 3 SKUs: 1 in step, 1 drifted, 1 could not be checked."
    assert Sku.objects.get(sku_id="B-1").sync_state == State.OUT_OF_SYNC
    assert dr_sku("B-1")["hsCode"] == "9999.99.9999"  # checking repairs nothing


def test_all_and_check_drift_together_is_refused():
    with pytest.raises(CommandError, match="run them one at a time"):
        sync_catalog("--all", "--check-drift")


def test_missing_dr_configuration_is_a_clear_error(settings):
    settings.DR_SECRET_KEY = ""
    sku = make_sku(sku_id="A-1")
    with pytest.raises(CommandError, match="Digital River is not configured: DR_SECRET_KEY is not set"):
        sync_catalog("--all")
    assert refresh(sku).sync_state == State.DRAFT

"""How a SKU push and a SKU deletion reach DR (registered with the outbox in apps.py)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from core.types import JSONObject
from digitalriver import errors as dr_errors
from digitalriver.registry import Performer

from . import dr_mapping
from .models import Sku
from .services import DELETE_KIND, PUSH_KIND

if TYPE_CHECKING:
    from digitalriver.client import DigitalRiverClient
    from digitalriver.models import Instruction


class SkuPushPerformer(Performer):
    """Push the SKU's values as they are when the instruction is sent, so a burst of edits is one push.

    Changing the model at DR, decided from the model we last pushed:

    - to orchestrated: an inventory item we made for the distributed model is deleted first, then
      the SKU is sent with managedFulfillment and DR creates and keeps its own same-id item (ours
      would otherwise stand in the way of DR's, with our values instead of DR's stock);
    - away from orchestrated: first the update request DR's page documents, managedFulfillment
      null, which makes DR delete its item; then the SKU without managedFulfillment (the upsert
      body never carries null, which SkuUpsertRequest does not allow); distributed then creates
      ours, third party and digital have none;
    - from distributed to third party or digital: our inventory item is deleted (nothing at DR may
      fulfil from it any more), then the SKU is sent.

    Every step is an upsert or a delete, so a push repeated after a failure part-way is harmless.
    """

    kind = PUSH_KIND

    def perform(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject:
        sku = Sku.objects.filter(sku_id=instruction.payload["sku_id"]).first()
        if sku is None:
            return {"skipped": "the SKU was deleted before the push"}
        body = dr_mapping.sku_body(sku)
        ours_at_dr = sku.pushed_model == Sku.FulfillmentModel.DISTRIBUTED
        if ours_at_dr and not sku.has_inventory_item_of_ours:
            _delete_inventory_item(client, sku.sku_id)
        managed_at_dr = sku.pushed_model == Sku.FulfillmentModel.ORCHESTRATED
        if managed_at_dr and "managedFulfillment" not in body:
            with contextlib.suppress(dr_errors.NotFound):
                client.post(f"/skus/{sku.sku_id}", dr_mapping.UNMANAGE_BODY)
        dr_sku = client.put(f"/skus/{sku.sku_id}", body)
        dr_item = None
        if sku.has_inventory_item_of_ours:
            dr_item = _upsert_inventory_item(client, sku, known_at_dr=ours_at_dr)
        item_body = dr_mapping.inventory_item_body(sku) if dr_item is not None else None
        return {
            "pushed": body,
            "itemPushed": item_body,
            "model": sku.fulfillment_model,
            "sku": dr_sku,
            "inventoryItem": dr_item,
        }

    def on_done(self, instruction: Instruction, result: JSONObject) -> None:
        if "pushed" not in result:
            return
        sku = Sku.objects.select_for_update().filter(sku_id=instruction.payload["sku_id"]).first()
        if sku is None:
            return
        item_edited = (
            result.get("itemPushed") is not None and dr_mapping.inventory_item_body(sku) != result["itemPushed"]
        )
        if dr_mapping.sku_body(sku) != result["pushed"] or item_edited or sku.fulfillment_model != result["model"]:
            # Edited while the push was on its way: the newer values are queued in another push
            # (or, with automatic pushes off, the SKU stays out of sync).
            return
        sku.mark_synced(
            pushed=result["pushed"],
            model=result["model"],
            dr_sku=result["sku"],
            dr_inventory_item=result["inventoryItem"],
            description="pushed",
        )
        sku.save()

    def on_failed(self, instruction: Instruction) -> None:
        sku = Sku.objects.select_for_update().filter(sku_id=instruction.payload["sku_id"]).first()
        if sku is not None and sku.sync_state in (Sku.SyncState.QUEUED, Sku.SyncState.FAILED):
            sku.mark_push_failed(error=instruction.last_error, description=instruction.last_error[:300])
            sku.save()


class SkuDeletePerformer(Performer):
    kind = DELETE_KIND

    def perform(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject:
        try:
            client.delete(f"/skus/{instruction.payload['sku_id']}")
        except dr_errors.NotFound:
            return {"deleted": False, "reason": "DR did not have it"}
        return {"deleted": True}


def _upsert_inventory_item(client: DigitalRiverClient, sku: Sku, *, known_at_dr: bool) -> JSONObject:
    """Update the item if we made it before, else create it; either guess falls back on the other.

    Guessing from what we last pushed spends one call per push instead of two.
    """
    body = dr_mapping.inventory_item_body(sku)
    if known_at_dr:
        with contextlib.suppress(dr_errors.NotFound):
            return client.post(f"/inventory-items/{sku.sku_id}", body)
    try:
        return client.post("/inventory-items", {"id": sku.sku_id, **body})
    except dr_errors.Conflict as exc:
        if "already_exists" not in exc.codes:
            raise
        return client.post(f"/inventory-items/{sku.sku_id}", body)


def _delete_inventory_item(client: DigitalRiverClient, item_id: str) -> None:
    with contextlib.suppress(dr_errors.NotFound):
        client.delete(f"/inventory-items/{item_id}")

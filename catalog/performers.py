"""How a SKU push and a SKU deletion reach DR (registered with the outbox in apps.py)."""

import contextlib

from digitalriver import errors as dr_errors
from digitalriver.registry import Performer

from . import dr_mapping
from .models import Sku
from .services import DELETE_KIND, PUSH_KIND


class SkuPushPerformer(Performer):
    """Push the SKU's values as they are when the instruction is sent, so a burst of edits is one push.

    Changing the model at DR: orchestrated sets managedFulfillment and DR creates its own same-id
    inventory item, so an inventory item we made for the distributed model is deleted first;
    leaving orchestrated sends managedFulfillment null, which deletes DR's; distributed then
    creates ours. Every step is an upsert or a delete, so a repeated push is harmless.
    """

    kind = PUSH_KIND

    def perform(self, instruction, client):
        sku = Sku.objects.filter(sku_id=instruction.payload["sku_id"]).first()
        if sku is None:
            return {"skipped": "the SKU was deleted before the push"}
        body = dr_mapping.sku_body(sku)
        ours_at_dr = sku.pushed_model == Sku.FulfillmentModel.DISTRIBUTED
        if ours_at_dr and not sku.has_inventory_item_of_ours:
            _delete_inventory_item(client, sku.sku_id)
        dr_sku = client.put(f"/skus/{sku.sku_id}", body)
        dr_item = _upsert_inventory_item(client, sku) if sku.has_inventory_item_of_ours else None
        return {"pushed": body, "sku": dr_sku, "inventoryItem": dr_item}

    def on_done(self, instruction, result):
        if "pushed" not in result:
            return
        sku = Sku.objects.select_for_update().filter(sku_id=instruction.payload["sku_id"]).first()
        if sku is None:
            return
        if dr_mapping.sku_body(sku) != result["pushed"]:
            # Edited while the push was on its way: the newer values are queued in another push.
            return
        sku.mark_synced(
            pushed=result["pushed"],
            dr_sku=result["sku"],
            dr_inventory_item=result["inventoryItem"],
            description="pushed",
        )
        sku.save()

    def on_failed(self, instruction):
        sku = Sku.objects.select_for_update().filter(sku_id=instruction.payload["sku_id"]).first()
        if sku is not None and sku.sync_state in (Sku.SyncState.QUEUED, Sku.SyncState.FAILED):
            sku.mark_push_failed(error=instruction.last_error, description=instruction.last_error[:300])
            sku.save()


class SkuDeletePerformer(Performer):
    kind = DELETE_KIND

    def perform(self, instruction, client):
        try:
            client.delete(f"/skus/{instruction.payload['sku_id']}")
        except dr_errors.NotFound:
            return {"deleted": False, "reason": "DR did not have it"}
        return {"deleted": True}


def _upsert_inventory_item(client, sku: Sku) -> dict:
    body = dr_mapping.inventory_item_body(sku)
    try:
        return client.post(f"/inventory-items/{sku.sku_id}", body)
    except dr_errors.NotFound:
        return client.post("/inventory-items", {"id": sku.sku_id, **body})


def _delete_inventory_item(client, item_id: str) -> None:
    with contextlib.suppress(dr_errors.NotFound):
        client.delete(f"/inventory-items/{item_id}")

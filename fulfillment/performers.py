"""The calls the fulfillment flow makes at DR, sent by the outbox (registered in apps.py)."""

from datetime import timedelta

from commerce.services import lock_order
from core.types import JSONObject
from digitalriver.client import DigitalRiverClient
from digitalriver.errors import ApiError, Conflict
from digitalriver.models import Instruction
from digitalriver.registry import Performer

from . import cancellations, services
from .kinds import CREATE_FULFILLMENT_ORDER, POST_FULFILLMENT, REQUEST_CANCELLATION


class CreateFulfillmentOrderPerformer(Performer):
    """POST /fulfillment-orders for the distributed lines of an accepted order.

    DR has no idempotency key; after an uncertain try the order's fulfillment orders are looked up
    by upstreamId before a second one is created.
    """

    kind = CREATE_FULFILLMENT_ORDER

    def perform(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject:
        return client.post("/fulfillment-orders", instruction.payload)

    def find_existing_effect(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject | None:
        """Ours is the one holding our lines: DR's own fulfillment order of the orchestrated lines
        has the same upstreamId."""
        found = client.get("/fulfillment-orders", {"upstreamIds": instruction.payload["upstreamId"]})
        ours = {item["upstreamId"] for item in instruction.payload["items"]}
        for fulfillment_order in (found.get("data") if isinstance(found, dict) else None) or []:
            if ours <= {str(item.get("upstreamId")) for item in fulfillment_order.get("items") or []}:
                return fulfillment_order
        return None

    def on_done(self, instruction: Instruction, result: JSONObject) -> None:
        if "id" not in result:
            return
        order = lock_order(dr_order_id=instruction.payload["upstreamId"])  # in the outbox's transaction
        services.fulfillment_order_upsert_locked(order=order, data=result, created_by_us=True)


class FulfillmentPerformer(Performer):
    """POST /fulfillments: capture (quantity) or release (cancelQuantity) part of the payment.

    Each request carries the instruction's id in metadata, so after an uncertain try the sender can
    find it in GET /fulfillments?orderId=… and never captures twice.
    """

    kind = POST_FULFILLMENT

    def perform(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject:
        """A 409 naming one line as already fulfilled or cancelled settles that line only: the
        request is sent again without it until DR takes the rest (or every line is settled)."""
        items = list(instruction.payload.get("items") or [])
        settled: list[JSONObject] = []
        while True:
            body = {**instruction.payload, "items": items, "metadata": {"instructionId": str(instruction.pk)}}
            try:
                answer = client.post("/fulfillments", body)
            except Conflict as exc:
                named = exc.settled_lines([str(item.get("itemId")) for item in items])
                if not named:
                    raise
                settled += [{"itemId": item_id, "code": code} for item_id, code in named.items()]
                items = [item for item in items if str(item.get("itemId")) not in named]
                if not items:
                    return {"settledBefore": settled}
                continue
            return {**answer, "settledBefore": settled} if settled else answer

    def find_existing_effect(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject | None:
        shipment_id = instruction.payload.get("shipmentId")
        for fulfillment in client.paginate("/fulfillments", {"orderId": instruction.payload["orderId"]}):
            metadata = fulfillment.get("metadata") or {}
            if metadata.get("instructionId") == str(instruction.pk):
                return fulfillment
            if shipment_id and fulfillment.get("shipmentId") == shipment_id:
                return fulfillment
        return None

    def on_done(self, instruction: Instruction, result: JSONObject) -> None:
        services.fulfillment_accepted(payload=instruction.payload, result=result, instruction_id=instruction.pk)

    def on_failed(self, instruction: Instruction) -> None:
        services.fulfillment_refused(
            payload=instruction.payload, instruction_id=instruction.pk, reason=instruction.last_error
        )


class RequestCancellationPerformer(Performer):
    """POST /fulfillment-cancellations for units still pending or backordered at the warehouse.

    DR takes no id of ours on a cancellation request, so after an uncertain try the sender looks for
    a request of exactly these units on the same fulfillment order: in what we already know, then in
    ``GET /fulfillment-cancellations?fulfillmentOrderId=…`` (DR's page
    integration-options/checkouts/handling-digital-river-coordinated-fulfillments/instructing-digital-to-cancel-items.md),
    and only where that list cannot be read, in ``GET /events``. Sending again would cancel the
    units twice, or be refused and look like a rejection.
    """

    kind = REQUEST_CANCELLATION

    def perform(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject:
        return client.post("/fulfillment-cancellations", instruction.payload)

    def find_existing_effect(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject | None:
        known = cancellations.cancellation_known_at_dr(instruction=instruction)
        if known is not None:
            return known
        try:
            listed = list(
                client.paginate(
                    "/fulfillment-cancellations", {"fulfillmentOrderId": instruction.payload["fulfillmentOrderId"]}
                )
            )
        except ApiError as exc:
            if exc.status not in (404, 405):  # the list exists but failed: the sweep asks again later
                raise
            return self._find_in_events(instruction, client)
        for created in listed:
            if cancellations.cancellation_is_ours(instruction=instruction, data=created):
                return created
        return None

    def _find_in_events(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject | None:

        since = (instruction.created_at - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
        events = client.paginate("/events", {"types": "fulfillment_cancellation.created", "createdTime[gte]": since})
        for event in events:
            created = (event.get("data") or {}).get("object") or {}
            if cancellations.cancellation_is_ours(instruction=instruction, data=created):
                return created
        return None

    def on_done(self, instruction: Instruction, result: JSONObject) -> None:
        cancellations.cancellation_submitted(instruction=instruction, result=result)

    def on_failed(self, instruction: Instruction) -> None:
        cancellations.cancellation_failed(instruction=instruction)

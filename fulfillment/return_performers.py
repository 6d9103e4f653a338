"""The calls a return makes at DR, sent by the outbox (registered in apps.py).

DR has no idempotency key: after an uncertain try each performer looks for the effect at DR before
sending again (design.md section 4).
"""

from core.types import JSONObject
from digitalriver.client import DigitalRiverClient
from digitalriver.models import Instruction
from digitalriver.registry import Performer

from . import return_mirror as mirror
from .kinds import CREATE_FULFILLMENT_RETURN, CREATE_RETURN, RECEIVE_RETURN


class CreateFulfillmentReturnPerformer(Performer):
    """POST /fulfillment-returns: ask DR's warehouse to take units back.

    A fulfillment return takes no metadata (GlobalFulfillmentReturnRequest in DR's spec), so after an
    uncertain try the sender looks in ``GET /fulfillment-returns?fulfillmentOrderId=…`` for a return
    of exactly these units, made after the instruction and not claimed by another return of ours
    (order-management/returns-and-refunds-1/returns/digital-river-coordinated-returns.md,
    "Retrieving a fulfillment return").
    """

    kind = CREATE_FULFILLMENT_RETURN

    def perform(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject:
        return client.post("/fulfillment-returns", instruction.payload)

    def find_existing_effect(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject | None:
        known = mirror.return_known_at_dr(instruction=instruction)
        if known is not None:
            return known
        listed = client.paginate(
            "/fulfillment-returns", {"fulfillmentOrderId": instruction.payload["fulfillmentOrderId"]}
        )
        for found in listed:
            if mirror.fulfillment_return_is_ours(instruction=instruction, data=found):
                return found
        return None

    def on_done(self, instruction: Instruction, result: JSONObject) -> None:
        mirror.return_answered(instruction=instruction, result=result)

    def on_failed(self, instruction: Instruction) -> None:
        mirror.return_refused(instruction=instruction)


class CreateReturnPerformer(Performer):
    """POST /returns for third-party and digital lines, with our return's id in ``metadata``; after an
    uncertain try it is looked up in ``GET /returns?orderId=…`` by that id
    (order-management/returns-and-refunds-1/returns/creating-a-return.md)."""

    kind = CREATE_RETURN

    def perform(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject:
        return client.post("/returns", instruction.payload)

    def find_existing_effect(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject | None:
        known = mirror.return_known_at_dr(instruction=instruction)
        if known is not None:
            return known
        ours = instruction.payload["metadata"]["returnId"]
        for found in client.paginate("/returns", {"orderId": instruction.payload["orderId"]}):
            if str((found.get("metadata") or {}).get("returnId")) == ours:
                return found
        return None

    def on_done(self, instruction: Instruction, result: JSONObject) -> None:
        mirror.return_answered(instruction=instruction, result=result)

    def on_failed(self, instruction: Instruction) -> None:
        mirror.return_refused(instruction=instruction)


class ReceiveReturnPerformer(Performer):
    """POST /returns/{id}: goods of a third-party return received, all at once or one parcel.

    A parcel's receipt sent twice would count its units twice, so after a lost answer the sender reads
    ``GET /returns/{id}`` and sends nothing if the accepted quantities already include this receipt.
    """

    kind = RECEIVE_RETURN

    def perform(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject:
        return client.post(f"/returns/{instruction.payload['returnId']}", instruction.payload["body"])

    def find_existing_effect(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject | None:
        found = client.get(f"/returns/{instruction.payload['returnId']}")
        if isinstance(found, dict) and mirror.receipt_already_recorded(instruction=instruction, data=found):
            return found
        return None

    def on_done(self, instruction: Instruction, result: JSONObject) -> None:
        mirror.receipt_answered(instruction=instruction, result=result)

"""The calls commerce makes at DR, sent by the outbox (registered in apps.py)."""

from core.types import JSONObject
from digitalriver.client import DigitalRiverClient
from digitalriver.models import Instruction
from digitalriver.registry import Performer

from .refund_mirror import CREATE_REFUND, refund_refused, refund_sent


class CreateRefundPerformer(Performer):
    """POST /refunds with our reference in ``metadata.refundReference``.

    DR has no idempotency key: after an uncertain try the order's refunds are read
    (``GET /refunds?orderId=…``, page by page) and ours is the one carrying our reference, so a lost
    answer never refunds twice (issuing-refunds.md; the list operation in DR's OpenAPI file).
    """

    kind = CREATE_REFUND

    def perform(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject:
        return client.post("/refunds", instruction.payload)

    def find_existing_effect(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject | None:
        reference = str((instruction.payload.get("metadata") or {}).get("refundReference") or "")
        for refund in client.paginate("/refunds", {"orderId": instruction.payload["orderId"]}):
            if reference and str((refund.get("metadata") or {}).get("refundReference")) == reference:
                return refund
        return None

    def on_done(self, instruction: Instruction, result: JSONObject) -> None:
        refund_sent(instruction=instruction, result=result)

    def on_failed(self, instruction: Instruction) -> None:
        refund_refused(instruction=instruction)

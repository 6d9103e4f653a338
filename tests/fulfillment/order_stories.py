"""Orders told as stories for the order-screen tests: DR's payloads put through our own services."""

import copy
import json
from datetime import timedelta

from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django_fsm_log.models import StateLog

from catalog.models import Sku
from commerce.models import Order
from commerce.services import charge_upsert, order_upsert
from digitalriver.models import ApiCall, Attempt, Instruction, WebhookEvent
from fulfillment.cancellations import cancellation_answered
from fulfillment.kinds import POST_FULFILLMENT
from fulfillment.models import Notification
from fulfillment.services import fulfillment_order_upsert
from fulfillment.shipments import warehouse_shipment_mirror
from tests.conftest import fixture, make_event, restore_roles

T0 = parse_datetime("2026-11-20T10:00:00Z")


def order_data(*, dr_order_id="231388420336", lines=2, **changes) -> dict:
    """DR's order fixture under another id, with ``lines`` lines: the fixture's two, then more widgets."""
    data = fixture("order.json")
    items = data["items"][:lines]
    for number in range(len(items), lines):
        items.append({**copy.deepcopy(data["items"][0]), "productDetails": {"name": f"Widget {number}"}})
    for number, item in enumerate(items):
        item["id"] = f"{dr_order_id}-{number}"
    data["payment"]["charges"][0]["id"] = f"chg-{dr_order_id}"
    return {**data, "id": dr_order_id, "items": items, **changes}


def partner_gadget_sku() -> Sku:
    """The third-party SKU of the stories: a gadget our logistics partner ships (we capture it)."""
    return Sku.objects.create(
        sku_id="3p-1",
        name="Partner gadget",
        fulfillment_model=Sku.FulfillmentModel.THIRD_PARTY,
        tax_code="4512.1",
        eccn="EAR99",
        country_of_origin="US",
        part_number="P-3",
    )


def order_with_partner_gadgets(*, dr_order_id: str = "231388420777") -> Order:
    """An accepted order: a widget the warehouse ships through DR, and 3 partner gadgets."""
    partner_gadget_sku()
    data = order_data(dr_order_id=dr_order_id)
    data["items"][1].update(skuId="3p-1", quantity=3, productDetails={"id": "3p-1", "name": "Partner gadget"})
    return order_upsert(data=data)


def story(*, dr_order_id="231388420336", lines=2, extras=1) -> Order:
    """An order with a fulfillment order, one shipment, a failed capture, and ``extras`` events,
    instructions, attempts and calls, at known times (each source a minute after the last)."""
    order = order_upsert(data=order_data(dr_order_id=dr_order_id, lines=lines))
    StateLog.objects.for_(order).update(timestamp=T0)
    distributed = list(order.lines.filter(fulfillment_model=Sku.FulfillmentModel.DISTRIBUTED))
    fulfillment_order = fixture("fulfillment_order.json")
    fulfillment_order.update(id=f"fo-{dr_order_id}", upstreamId=dr_order_id)
    fulfillment_order["items"] = [
        {
            **fulfillment_order["items"][0],
            "id": f"foi-{line.dr_item_id}",
            "upstreamId": line.dr_item_id,
            "quantity": line.quantity,
            "pending": line.quantity - 1,
            "backordered": 1,
            "availableTime": "2026-12-01T00:00:00Z",
        }
        for line in distributed
    ]
    fulfillment_order_upsert(order=order, data=fulfillment_order, created_by_us=True)
    shipment = fixture("shipment.json")
    shipment.update(id=f"shp-{dr_order_id}-4f1b9d7e", fulfillmentOrderId=f"fo-{dr_order_id}")
    shipment["fulfillmentOrderUpstreamId"] = dr_order_id
    shipment["items"] = [
        {"id": f"si-{line.dr_item_id}", "fulfillmentOrderItemUpstreamId": line.dr_item_id, "quantity": 1}
        for line in distributed
    ]
    warehouse_shipment_mirror(data=shipment)
    charge = fixture("charge.json")
    charge.update(id=f"chg-{dr_order_id}", orderId=dr_order_id)
    charge["captures"].append(
        {
            "id": "cap-failed",
            "createdTime": "2026-11-20T12:30:00Z",
            "amount": 19.99,
            "state": "failed",
            "failureMessage": "Card declined by the issuer",
        }
    )
    charge_upsert(order=order, data=charge)
    Order.objects.filter(pk=order.pk).update(capture_failed=True)

    subject = f"order:{dr_order_id}"
    capture = Instruction.objects.get(kind=POST_FULFILLMENT, subject=subject)
    Instruction.objects.filter(pk=capture.pk).update(created_at=T0 + timedelta(minutes=2))
    for number in range(extras):
        event = make_event("fulfillment_order.shipped", {"id": "x"}, event_id=f"evt-{dr_order_id}-{number}")
        WebhookEvent.objects.create(
            dr_event_id=event["id"],
            type=event["type"],
            state=WebhookEvent.State.PROCESSED,
            order_id=dr_order_id,
            received_at=T0 + timedelta(minutes=1),
            body=json.dumps(event),
            payload=event,
        )
        Attempt.objects.create(
            instruction=capture,
            number=number + 1,
            started_at=T0 + timedelta(minutes=3),
            duration_ms=84,
            outcome=Attempt.Outcome.SUCCEEDED,
            http_status=201,
            request_id=f"req-{number}",
        )
        ApiCall.objects.create(
            method="POST",
            path="/fulfillments",
            status=201,
            duration_ms=84,
            subject=subject,
            started_at=T0 + timedelta(minutes=4),
        )
    # The shipment and backorder emails the story caused, after everything else.
    Notification.objects.filter(order=order).update(created_at=T0 + timedelta(minutes=5))
    return Order.objects.get(pk=order.pk)


def change_url(order: Order) -> str:
    return reverse("admin:commerce_order_change", args=[order.pk])


def customer_service(django_user_model, username="alice"):
    user = django_user_model.objects.create_user(username, password="x", is_staff=True)
    user.groups.add(restore_roles()["Customer service"])
    return user


def answer_cancellation(order: Order, line, accepted: int, asked: int = 1) -> None:
    cancellation_answered(
        data={
            "id": "fc-1",
            "upstreamId": order.dr_order_id,
            "fulfillmentOrderId": f"fo-{order.dr_order_id}",
            "state": "accepted",
            "items": [
                {"fulfillmentOrderItemId": f"foi-{line.dr_item_id}", "quantity": asked, "quantityAccepted": accepted}
            ],
        }
    )


def progress_of(admin_client, order: Order) -> list[tuple[str, str]]:
    [shown] = admin_client.get(change_url(order)).context["page"].cancellations
    return [(step.label, step.status) for step in shown.steps]

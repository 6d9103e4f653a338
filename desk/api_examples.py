"""Examples for the OpenAPI description of `/api/orders/…`: shapes a reader of `/api/docs/` can copy."""

from core.types import JSONObject

FLAGS_EXAMPLE = {
    "capture_failed": False,
    "cancellation_rejected": False,
    "backordered": False,
    "unknown_sku": False,
    "needs_attention": False,
}
ORDER_SUMMARY_EXAMPLE = {
    "dr_order_id": "231388420336",
    "upstream_id": "WEB-10001",
    "state": "accepted",
    "state_changed_at": "2026-11-20T10:00:05Z",
    "fraud_state": "passed",
    "email": "ada@example.com",
    "customer_name": "Ada Lovelace",
    "currency": "USD",
    "total_amount": "70.17",
    "dr_created_at": "2026-11-20T10:00:00Z",
    "dr_updated_at": "2026-11-20T10:00:05Z",
    "flags": FLAGS_EXAMPLE,
}
ORDER_DETAIL_EXAMPLE = {
    **ORDER_SUMMARY_EXAMPLE,
    "state": "fulfilled",
    "checkout_id": "chk_5d1b0f",
    "locale": "en_US",
    "ship_to": {"name": "Ada Lovelace", "address": {"line1": "1 Main St", "city": "Minneapolis", "country": "US"}},
    "bill_to": {"name": "Ada Lovelace"},
    "shipping_choice": {"id": "SG", "amount": 5.0, "serviceLevel": "SG", "shippingTerms": "DDP"},
    "subtotal": "59.97",
    "total_tax": "5.20",
    "total_shipping": "5.00",
    "captured_amount": "70.17",
    "cancelled_amount": "0.00",
    "refunded_amount": "0.00",
    "available_to_refund_amount": "70.17",
    "fetched_at": "2026-11-20T12:00:01Z",
    "lines": [
        {
            "dr_item_id": "164470560336",
            "dr_sku_id": "dist-1",
            "name": "Distributed widget",
            "fulfillment_model": "distributed",
            "dr_state": "fulfilled",
            "quantity": 3,
            "amount": "59.97",
            "tax_amount": "4.80",
            "tax_rate": "0.08000",
            "pending": 0,
            "backordered": 0,
            "shipped": 3,
            "fulfilled": 3,
            "cancel_requested": 0,
            "cancelled": 0,
            "open_quantity": 0,
        }
    ],
    "fulfillment_orders": [
        {
            "dr_fulfillment_order_id": "fo_8f2c",
            "state": "shipped",
            "created_by_us": True,
            "dr_updated_at": "2026-11-20T11:30:00Z",
            "lines": [
                {
                    "dr_item_id": "foi_1",
                    "order_item_id": "164470560336",
                    "inventory_item_id": "dist-1",
                    "state": "shipped",
                    "quantity": 3,
                    "pending": 0,
                    "backordered": 0,
                    "shipped": 3,
                    "cancelled": 0,
                    "returned": 0,
                    "cancel_instructed": 0,
                    "available_time": None,
                }
            ],
        }
    ],
    "shipments": [
        {
            "dr_shipment_id": "shp_41",
            "source": "dr",
            "fulfillment_order_id": "fo_8f2c",
            "tracking_company": "UPS",
            "tracking_number": "1Z999AA10123456784",
            "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
            "shipped_at": "2026-11-20T11:30:00Z",
            "items": [{"dr_shipment_item_id": "shpi_1", "order_item_id": "164470560336", "quantity": 3}],
        }
    ],
    "charges": [
        {
            "dr_charge_id": "ch_77",
            "amount": "70.17",
            "currency": "USD",
            "state": "complete",
            "captured": True,
            "refunded": False,
            "dr_updated_at": "2026-11-20T11:30:02Z",
            "captures": [
                {
                    "dr_id": "cap_1",
                    "amount": "70.17",
                    "state": "complete",
                    "failure_code": "",
                    "failure_message": "",
                    "fulfillment_id": "ful_9",
                    "dr_created_at": "2026-11-20T11:30:02Z",
                }
            ],
            "cancels": [],
            "refunds": [],
        }
    ],
    "documents": [
        {
            "dr_file_id": "6e5bf525-3907-40c5-86a9-f14ce4f33f35",
            "dr_id": "6e5bf525-3907-40c5-86a9-f14ce4f33f35",
            "purpose": "customer_invoice",
            "kind": "Invoice",
            "dr_created_at": "2026-11-20T12:04:13Z",
            "recorded_at": "2026-11-20T12:04:14Z",
            "download": "/api/orders/231388420336/documents/6e5bf525-3907-40c5-86a9-f14ce4f33f35/",
        }
    ],
    "documents_note": "Credit memos come after each completed refund.",
    "chargebacks": [],
}
DR_FAILED_EXAMPLE = {
    "detail": "Digital River could not be asked: GET /orders/231388420336: 503 service_unavailable",
}
ORDER_ID = "231388420336"
CANCEL_SOME_EXAMPLE = {"items": [{"item_id": "164470560336", "quantity": 1}], "reason": "The customer changed her mind"}
CANCEL_ALL_EXAMPLE = {"all": True, "reason": "Duplicate order"}
CANCELLATION_EXAMPLE: JSONObject = {
    "id": 17,
    "route": "fulfillment_cancellation",
    "state": "requested",
    "reason": "The customer changed her mind",
    "fulfillment_order_id": "fo_8f2c",
    "dr_cancellation_id": "",
    "requested_by": "ada.cs",
    "created_at": "2026-11-21T09:00:00Z",
    "updated_at": "2026-11-21T09:00:00Z",
    "lines": [
        {
            "item_id": "164470560336",
            "sku_id": "dist-1",
            "name": "Distributed widget",
            "quantity": 1,
            "quantity_accepted": None,
            "quantity_released": 0,
        }
    ],
    "progress": [{"state": "requested", "at": "2026-11-21T09:00:00Z", "description": "The customer changed her mind"}],
}
QUEUED_EXAMPLE = {"dr_order_id": ORDER_ID, "requests": [CANCELLATION_EXAMPLE]}
FOLLOWED_EXAMPLE = {
    "dr_order_id": ORDER_ID,
    "requests": [
        {
            **CANCELLATION_EXAMPLE,
            "state": "released",
            "dr_cancellation_id": "fc_3a9d",
            "updated_at": "2026-11-21T09:20:00Z",
            "lines": [{**CANCELLATION_EXAMPLE["lines"][0], "quantity_accepted": 1, "quantity_released": 1}],
            "progress": [
                *CANCELLATION_EXAMPLE["progress"],
                {"state": "submitted", "at": "2026-11-21T09:00:01Z", "description": "DR has the request"},
                {
                    "state": "accepted",
                    "at": "2026-11-21T09:15:00Z",
                    "description": "the warehouse accepted 1 of 1 unit(s)",
                },
                {"state": "released", "at": "2026-11-21T09:20:00Z", "description": "payment released"},
            ],
        }
    ],
}
CANCEL_REFUSED_EXAMPLE = {
    "detail": "Cannot cancel that many units. Distributed widget: asked for 2, 1 of 2 can be cancelled; "
    "1 shipped (a return is needed for those)."
}
CANCEL_MALFORMED_EXAMPLE = {"items": {"0": {"quantity": ["Ensure this value is greater than or equal to 1."]}}}
SHIPMENT_EXAMPLE = {
    "items": [{"item_id": "164470560337", "quantity": 1}],
    "tracking_company": "DHL",
    "tracking_number": "JD014600006281230701",
    "tracking_url": "https://www.dhl.com/track?id=JD014600006281230701",
}
SHIPMENT_RECORDED_EXAMPLE = {
    "id": 42,
    **{key: value for key, value in SHIPMENT_EXAMPLE.items() if key != "items"},
    "shipped_at": "2026-11-21T09:00:00Z",
    "items": SHIPMENT_EXAMPLE["items"],
    "capture": "queued",
}
SHIPMENT_REFUSED_EXAMPLE = {
    "detail": "Cannot record this shipment: Distributed widget is fulfilled through DR (distributed)."
}
SHIPMENT_MALFORMED_EXAMPLE = {"tracking_url": ["Enter a valid URL."]}

"""The sandbox's own tables: DR's resources as the emulator keeps them.

Every table has an integer primary key (cursor pagination walks it: newest first is highest pk
first) and a DR-style string id (`dr_id`) that is the only id the API ever shows.
"""

from .catalog import InventoryItem, InventoryLevel, Sku
from .events import Delivery, DeliveryAttempt, Event, Webhook
from .network import NetworkRule, NetworkSettings, RateWindow
from .orders import Charge, ChargeOperation, Fulfillment, Order, OrderItem, Source
from .reversals import (
    File,
    FileLink,
    FulfillmentReturn,
    FulfillmentReturnItem,
    Refund,
    RefundItem,
    Return,
    ReturnItem,
)
from .warehouse import (
    CancellationItem,
    FulfillmentCancellation,
    FulfillmentOrder,
    FulfillmentOrderItem,
    Shipment,
    ShipmentItem,
)

__all__ = [
    "CancellationItem",
    "Charge",
    "ChargeOperation",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "File",
    "FileLink",
    "Fulfillment",
    "FulfillmentCancellation",
    "FulfillmentOrder",
    "FulfillmentOrderItem",
    "FulfillmentReturn",
    "FulfillmentReturnItem",
    "InventoryItem",
    "InventoryLevel",
    "NetworkRule",
    "NetworkSettings",
    "Order",
    "OrderItem",
    "RateWindow",
    "Refund",
    "RefundItem",
    "Return",
    "ReturnItem",
    "Shipment",
    "ShipmentItem",
    "Sku",
    "Source",
    "Webhook",
]

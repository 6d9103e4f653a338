"""The sandbox's own tables: DR's resources as the emulator keeps them.

Every table has an integer primary key (cursor pagination walks it: newest first is highest pk
first) and a DR-style string id (`dr_id`) that is the only id the API ever shows.
"""

from .catalog import InventoryItem, InventoryLevel, Sku
from .events import Delivery, DeliveryAttempt, Event, Webhook
from .network import NetworkRule, NetworkSettings, RateWindow
from .orders import Charge, ChargeOperation, Fulfillment, Order, OrderItem, Source
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
    "Fulfillment",
    "FulfillmentCancellation",
    "FulfillmentOrder",
    "FulfillmentOrderItem",
    "InventoryItem",
    "InventoryLevel",
    "NetworkRule",
    "NetworkSettings",
    "Order",
    "OrderItem",
    "RateWindow",
    "Shipment",
    "ShipmentItem",
    "Sku",
    "Source",
    "Webhook",
]

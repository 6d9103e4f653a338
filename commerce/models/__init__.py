"""The order mirror and its money: orders, lines, charges, attention items, refunds, documents."""

from .attention import AttentionItem
from .orders import (
    ATTENTION_FLAGS,
    FLAGS_BY_FIELD,
    MONEY,
    NEEDS_ATTENTION,
    AttentionFlag,
    Charge,
    ChargeOperation,
    Order,
    OrderLine,
    OrderQuerySet,
    order_subject,
    quantities_by_item,
    units_of,
)
from .refunds import Chargeback, Document, Refund, RefundLine

__all__ = [
    "ATTENTION_FLAGS",
    "FLAGS_BY_FIELD",
    "MONEY",
    "NEEDS_ATTENTION",
    "AttentionFlag",
    "AttentionItem",
    "Charge",
    "ChargeOperation",
    "Chargeback",
    "Document",
    "Order",
    "OrderLine",
    "OrderQuerySet",
    "Refund",
    "RefundLine",
    "order_subject",
    "quantities_by_item",
    "units_of",
]

"""The people who use the back office, as Django groups: one table, applied after every migrate
(and after a test database's flush) by ``roles_sync``, and on demand by ``manage.py sync_roles``.

Each role gets exactly the permissions listed here; a permission granted by hand beyond them is
left alone, so an administrator may widen a group without it being undone on the next deploy.
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

MERCHANDISERS = "Merchandisers"
CUSTOMER_SERVICE = "Customer service"
OPERATIONS = "Operations"
# Customer-service leads: refunds move money out, so they are granted on their own.
REFUNDS = "Refunds"

# What everyone who follows orders reads: the fulfillment records behind an order page, and the SKUs.
FOLLOWS_ORDERS: list[tuple[str, str, list[str]]] = [
    ("fulfillment", "fulfillmentorder", ["view_fulfillmentorder"]),
    ("fulfillment", "shipment", ["view_shipment"]),
    ("fulfillment", "drfulfillment", ["view_drfulfillment"]),
    ("fulfillment", "cancellationrequest", ["view_cancellationrequest"]),
    ("fulfillment", "notification", ["view_notification"]),
    ("fulfillment", "return", ["view_return"]),
    ("commerce", "refund", ["view_refund"]),
    ("commerce", "document", ["view_document"]),
    ("commerce", "chargeback", ["view_chargeback"]),
    ("commerce", "attentionitem", ["view_attentionitem"]),
    ("catalog", "sku", ["view_sku"]),
]

# role -> [(app label, model, [codenames])]
ROLES: dict[str, list[tuple[str, str, list[str]]]] = {
    MERCHANDISERS: [
        ("catalog", "sku", ["add_sku", "change_sku", "delete_sku", "view_sku", "push_sku"]),
    ],
    CUSTOMER_SERVICE: [
        (
            "commerce",
            "order",
            [
                "view_order",
                "change_order",
                "cancel_order_lines",
                "record_shipment",
                "start_return",
                "acknowledge_attention",
            ],
        ),
        ("commerce", "orderline", ["view_orderline"]),
        ("commerce", "charge", ["view_charge"]),
        *FOLLOWS_ORDERS,
    ],
    OPERATIONS: [
        ("digitalriver", "webhookevent", ["view_webhookevent", "replay_webhookevent"]),
        ("digitalriver", "instruction", ["view_instruction", "operate_instruction"]),
        ("digitalriver", "attempt", ["view_attempt"]),
        ("digitalriver", "apicall", ["view_apicall"]),
        ("commerce", "order", ["view_order", "change_order", "acknowledge_attention"]),
        *FOLLOWS_ORDERS,
        ("operations", "operationsalert", ["view_operationsalert"]),
    ],
    REFUNDS: [
        ("commerce", "order", ["view_order", "refund_order"]),
        ("commerce", "refund", ["view_refund"]),
    ],
}


def roles_sync() -> dict[str, Group]:
    """Create each role's group and grant it the permissions of the table; returns them by name."""
    for app_config in global_apps.get_app_configs():
        # Permissions of apps migrated after this one's post_migrate ran would not exist yet.
        create_permissions(app_config, verbosity=0)
    groups = {}
    for name, grants in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, model, codenames in grants:
            group.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label=app_label, content_type__model=model, codename__in=codenames
                )
            )
        groups[name] = group
    return groups

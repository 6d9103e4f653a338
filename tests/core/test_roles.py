"""The three roles exist after migrating, each with what its people need and nothing else."""

import pytest
from django.contrib.auth.models import Group

pytestmark = pytest.mark.django_db


def codenames(group_name: str) -> set[str]:
    group = Group.objects.get(name=group_name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_merchandisers_own_the_catalog_and_see_no_orders():
    perms = codenames("Merchandisers")
    assert {"catalog.add_sku", "catalog.change_sku", "catalog.push_sku"} <= perms
    assert not any(p.startswith(("commerce.", "digitalriver.", "fulfillment.")) for p in perms)


def test_customer_service_can_cancel_and_record_shipments_but_not_operate_the_outbox():
    perms = codenames("Customer service")
    assert {"commerce.view_order", "commerce.cancel_order_lines", "commerce.record_shipment"} <= perms
    assert "digitalriver.operate_instruction" not in perms
    assert "digitalriver.replay_webhookevent" not in perms
    assert "catalog.change_sku" not in perms


def test_operations_replay_events_and_retry_instructions_but_cannot_cancel_lines():
    perms = codenames("Operations")
    assert {
        "digitalriver.replay_webhookevent",
        "digitalriver.operate_instruction",
        "digitalriver.view_apicall",
    } <= perms
    assert "commerce.cancel_order_lines" not in perms
    assert "catalog.push_sku" not in perms

"""What outsiders write is shown escaped: markup in a webhook delivery, in DR's copy of an order or in a
SKU never runs in an operator's browser on any admin page (lists, change pages, the order's timeline
and forms, the dashboard)."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.models import Sku
from commerce.models import Chargeback, Document, Order, OrderLine
from tests.security.conftest import person
from tests.security.test_no_secrets_leak import admin_pages
from tests.security.test_role_permissions import ADMIN_BUTTONS, BUTTONS, button_args

SCRIPT = '<script>alert("xss")</script>'
IMG = '"><img src=x onerror=alert(1)>'
MARKUP = ("<script>alert(", "<img src=x onerror")

pytestmark = pytest.mark.django_db


@pytest.fixture
def hostile(settings, post_event):
    settings.DR_WEBHOOK_SECRETS = ["whsec_escaping_0123456789"]
    event = {
        "id": f"evt-{uuid.uuid4()}{SCRIPT}"[:100],
        "type": f"order.{IMG}"[:100],
        "data": {"object": {"id": SCRIPT, "orderId": IMG, "note": SCRIPT + IMG}},
        "createdTime": "2026-11-20T10:00:00Z",
    }
    response = post_event(event, headers={"HTTP_X_TRACE": SCRIPT})  # signed with the secret above
    assert response.status_code == 202, response.content
    sku = Sku.objects.create(sku_id="XSS-1", name=SCRIPT, description=IMG, tax_code="4512.1", eccn="EAR99")
    contact = {"name": SCRIPT, "address": {"line1": IMG, "city": SCRIPT, "country": "US"}, "phone": IMG}
    order = Order.objects.create(
        dr_order_id="240000000666",
        state=Order.State.ACCEPTED,
        currency="USD",
        email="ada@example.com",
        customer_name=SCRIPT,
        upstream_id=IMG[:100],
        ship_to=contact,
        bill_to=contact,
        shipping_choice={"description": SCRIPT, "serviceLevel": IMG, "amount": 5},
        raw={"id": "240000000666", "metadata": {"note": SCRIPT}},
        dr_created_at=timezone.now(),
        total_amount="10.00",
    )
    OrderLine.objects.create(
        order=order,
        dr_item_id="240000000666-1",
        dr_sku_id=IMG[:100],
        name=SCRIPT,
        fulfillment_model="third_party",
        quantity=1,
        amount="10.00",
        tax_amount="0.00",
    )
    document = Document.objects.create(order=order, dr_file_id=IMG, purpose=Document.Purpose.INVOICE)
    Chargeback.objects.create(order=order, dr_id=SCRIPT, kind=IMG, amount="25.00", currency=SCRIPT)
    staff = Client()
    staff.force_login(person("root", superuser=True))
    return {"staff": staff, "sku": sku, "order": order, "document": document}


def test_markup_from_outside_is_escaped_on_every_admin_page(hostile):
    pages = admin_pages()
    objects = {"sku": hostile["sku"], "order": hostile["order"]}
    for name in sorted(BUTTONS):
        method, about, _roles = ADMIN_BUTTONS[name]
        if method == "get" and about and about != "document":  # a document's download is a PDF, not a page
            pages.append(reverse(f"admin:{name}", args=button_args(about, objects)))
    # The confirmation before a document's link is emailed shows the order's and the file's values.
    pages.append(reverse("admin:commerce_order_document_link", args=[hostile["order"].pk, IMG]))
    pages.append(reverse("admin:index"))
    assert reverse("admin:commerce_order_change", args=[hostile["order"].pk]) in pages
    shown = 0
    for url in pages:
        # An order's or a SKU's page by its DR id redirects to the page itself: that page is read too.
        response = hostile["staff"].get(url, follow=True)
        assert response.status_code == 200, url
        html = response.content.decode()
        for markup in MARKUP:
            assert markup not in html, f"{url} renders {markup!r} unescaped"
        shown += "&lt;script&gt;alert(" in html
    assert shown >= 4, "the control: the hostile values should be on the pages, escaped"

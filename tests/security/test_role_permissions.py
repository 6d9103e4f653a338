"""What each role may do, on every admin action, admin button, admin list and API operation.

The cases are enumerated from the running project (the admin registry, each ModelAdmin's URLs, the
OpenAPI schema), so a new action, button or endpoint fails `test_*_are_all_classified` until someone
writes down here who may use it. The tables are the specification; tests/test_roles.py says which
permissions each group holds.
"""

import functools
import json

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import URLPattern, reverse
from drf_spectacular.generators import SchemaGenerator

from tests.security.conftest import NO_ROLE, ROLES, token_for

MERCH, CS, OPS = ROLES
NOBODY: frozenset[str] = frozenset()
EVERY_ROLE = frozenset(ROLES)
ORDER_PEOPLE = frozenset({CS, OPS})

# --- the specification ---------------------------------------------------------------------------

#: (model, action) → roles that get the action. ``delete_selected`` is nobody's unless listed.
ADMIN_ACTIONS = {
    ("catalog.sku", "push_to_dr"): {MERCH},
    ("catalog.sku", "check_drift"): {MERCH},
    ("catalog.sku", "change_fulfillment_model"): {MERCH},
    ("catalog.sku", "delete_selected"): {MERCH},
    ("digitalriver.webhookevent", "replay"): {OPS},
    ("digitalriver.instruction", "retry_now"): {OPS},
    ("digitalriver.instruction", "cancel_instructions"): {OPS},
}

#: URL name of a ModelAdmin's own view → (method, the object it is about or None, roles allowed).
ADMIN_BUTTONS = {
    "catalog_sku_check_drift": ("post", "sku", {MERCH}),
    "catalog_sku_push": ("post", "sku", {MERCH}),
    # A read at DR that stores DR's figures only: whoever may view the SKU (see catalog/admin.py).
    "catalog_sku_fetch_stock": ("post", "sku", EVERY_ROLE),
    "catalog_sku_take_dr_values": ("post", "sku", {MERCH}),
    "catalog_sku_import": ("get", None, {MERCH}),
    "catalog_sku_process_import": ("post", None, {MERCH}),
    "catalog_sku_export": ("get", None, EVERY_ROLE),
    "commerce_order_refresh": ("post", "order", ORDER_PEOPLE),
    # The order list as CSV, and an order's or a SKU's page by its DR id: whoever may read them.
    "commerce_order_export": ("get", None, ORDER_PEOPLE),
    "commerce_order_by_dr_id": ("get", "dr_order_id", ORDER_PEOPLE),
    "catalog_sku_by_sku_id": ("get", "sku_id", EVERY_ROLE),
    "commerce_order_cancel": ("get", "order", {CS}),
    "commerce_order_record_shipment": ("get", "order", {CS}),
    "commerce_order_start_return": ("get", "order", {CS}),
    "commerce_order_return_received": ("get", "order", {CS}),
    "commerce_order_timeline": ("get", "order", ORDER_PEOPLE),
    "commerce_order_acknowledge": ("post", "order", ORDER_PEOPLE),
    # Refunds move money out: the Refunds role alone (not in ROLES; see tests/desk/test_refund_roles.py).
    "commerce_order_refund": ("get", "order", NOBODY),
    "commerce_order_refund_retry": ("get", "order", NOBODY),
    # The PDF streamed from DR: whoever may view the order (desk/documents.py).
    "commerce_order_document": ("get", "document", ORDER_PEOPLE),
    # Emails the customer a link DR makes: the right to act on orders (view and change), as for refresh.
    "commerce_order_document_link": ("post", "document", ORDER_PEOPLE),
    # A sample of each customer email, read-only: whoever may see the emails sent.
    "fulfillment_notification_preview": ("get", None, ORDER_PEOPLE),
}

#: model → roles that may open its list in the admin.
ADMIN_LISTS = {
    "auth.group": NOBODY,
    "auth.user": NOBODY,
    "authtoken.tokenproxy": NOBODY,
    "catalog.sku": EVERY_ROLE,
    "commerce.order": ORDER_PEOPLE,
    "commerce.attentionitem": ORDER_PEOPLE,
    "commerce.chargeback": ORDER_PEOPLE,
    "commerce.document": ORDER_PEOPLE,
    "commerce.refund": ORDER_PEOPLE,
    "digitalriver.apicall": {OPS},
    "digitalriver.instruction": {OPS},
    "digitalriver.webhookevent": {OPS},
    "fulfillment.cancellationrequest": ORDER_PEOPLE,
    "fulfillment.drfulfillment": ORDER_PEOPLE,
    "fulfillment.fulfillmentorder": ORDER_PEOPLE,
    "fulfillment.notification": ORDER_PEOPLE,
    "fulfillment.return": ORDER_PEOPLE,
    "fulfillment.shipment": ORDER_PEOPLE,
    "operations.dashboard": {OPS},
    "operations.operationsalert": {OPS},
}

#: (method, path in the schema) → roles allowed.
API = {
    ("GET", "/api/skus/"): EVERY_ROLE,
    ("POST", "/api/skus/"): {MERCH},
    ("GET", "/api/skus/{sku_id}/"): EVERY_ROLE,
    ("PUT", "/api/skus/{sku_id}/"): {MERCH},
    ("PATCH", "/api/skus/{sku_id}/"): {MERCH},
    ("DELETE", "/api/skus/{sku_id}/"): {MERCH},
    ("GET", "/api/skus/{sku_id}/drift/"): EVERY_ROLE,  # the last known drift, no call to DR
    ("POST", "/api/skus/{sku_id}/drift/"): {MERCH},  # asks DR now
    ("POST", "/api/skus/{sku_id}/sync/"): {MERCH},
    ("GET", "/api/orders/"): ORDER_PEOPLE,
    ("GET", "/api/orders/{dr_order_id}/"): ORDER_PEOPLE,
    ("POST", "/api/orders/{dr_order_id}/refresh/"): ORDER_PEOPLE,
    ("GET", "/api/orders/{dr_order_id}/cancellations/"): ORDER_PEOPLE,
    ("POST", "/api/orders/{dr_order_id}/cancellations/"): {CS},
    ("POST", "/api/orders/{dr_order_id}/shipments/"): {CS},
    ("POST", "/api/orders/{dr_order_id}/refunds/"): NOBODY,  # the Refunds role: tests/desk/test_refund_roles.py
    ("POST", "/api/orders/{dr_order_id}/returns/"): {CS},
    ("POST", "/api/orders/{dr_order_id}/returns/{return_id}/received/"): {CS},
    ("GET", "/api/orders/{dr_order_id}/documents/{file_id}/"): ORDER_PEOPLE,
}

#: (method, path in the schema) → the header that authenticates it instead of a person: public, open to
#: a request that proves itself (design.md section 4), and to no role's token or session without it.
SIGNED = {
    ("POST", "/webhooks/digitalriver/"): "DigitalRiver-Signature",
}

# --- what the project has -------------------------------------------------------------------------

STANDARD_VIEWS = ("_changelist", "_add", "_history", "_delete", "_change", "_autocomplete")


def model_admins() -> dict[str, admin.ModelAdmin]:
    return {model._meta.label_lower: ma for model, ma in admin.site._registry.items()}


def registered_actions() -> list[tuple[str, str]]:
    return sorted((label, name) for label, ma in model_admins().items() for _, name, _ in ma._get_base_actions())


def registered_buttons() -> dict[str, str]:
    """URL name → model, for every view a ModelAdmin adds to the standard ones."""
    return {
        pattern.name: label
        for label, ma in model_admins().items()
        for pattern in ma.get_urls()
        if isinstance(pattern, URLPattern) and pattern.name and not pattern.name.endswith(STANDARD_VIEWS)
    }


def api_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    )


ACTIONS = registered_actions()
BUTTONS = registered_buttons()
ALL_OPERATIONS = api_operations()
#: What a person's credentials open: the roles tests below (and test_csrf.py) are about these.
OPERATIONS = [case for case in ALL_OPERATIONS if case not in SIGNED]
PEOPLE = [*ROLES, NO_ROLE]


def test_admin_actions_are_all_classified():
    unclassified = [case for case in ACTIONS if case[1] != "delete_selected" and case not in ADMIN_ACTIONS]
    assert not unclassified, f"say in ADMIN_ACTIONS who may use {unclassified}"
    assert set(ADMIN_ACTIONS) <= set(ACTIONS), "ADMIN_ACTIONS names actions that no longer exist"


def test_admin_buttons_are_all_classified():
    unclassified = set(BUTTONS) - set(ADMIN_BUTTONS)
    assert not unclassified, f"say in ADMIN_BUTTONS who may use {sorted(unclassified)}"


def test_admin_lists_are_all_classified():
    unclassified = set(model_admins()) - set(ADMIN_LISTS)
    assert not unclassified, f"say in ADMIN_LISTS who may open {sorted(unclassified)}"


def test_api_operations_are_all_classified():
    unclassified = set(ALL_OPERATIONS) - set(API) - set(SIGNED)
    assert not unclassified, f"say in API who may call {sorted(unclassified)}"


def test_signed_operations_are_in_the_schema():
    assert set(SIGNED) <= set(ALL_OPERATIONS), "SIGNED names operations the schema does not have"


# --- the admin ------------------------------------------------------------------------------------


def spy(monkeypatch, label: str, name: str) -> list:
    """Record calls of the action while keeping what it does and the permissions it declares."""
    ma = model_admins()[label]
    calls = []
    on_class = hasattr(type(ma), name)
    original = getattr(type(ma), name) if on_class else dict(admin.site.actions)[name]

    @functools.wraps(original)
    def recorded(modeladmin, request, queryset):
        calls.append(request.user.username)
        return original(modeladmin, request, queryset)

    if on_class:
        monkeypatch.setattr(type(ma), name, recorded)
    else:
        monkeypatch.setitem(admin.site._actions, name, recorded)
    return calls


@pytest.mark.django_db
@pytest.mark.parametrize(("label", "action"), ACTIONS, ids=[f"{label}:{name}" for label, name in ACTIONS])
def test_admin_action_is_offered_to_and_runs_for_exactly_its_roles(people, dr, monkeypatch, label, action):
    allowed = ADMIN_ACTIONS.get((label, action), NOBODY)
    ma = model_admins()[label]
    calls = spy(monkeypatch, label, action)
    url = reverse(f"admin:{label.replace('.', '_')}_changelist")
    for role in PEOPLE:
        user = people[role]
        request = RequestFactory().get(url)
        request.user = user
        offered = action in ma.get_actions(request)
        assert offered == (role in allowed), f"{role} {'is' if offered else 'is not'} offered {label}:{action}"

        client = Client()
        client.force_login(user)
        calls.clear()
        # A selected id that matches no row: the action runs (on nothing) only if the admin lets it.
        response = client.post(url, {"action": action, "index": "0", "_selected_action": ["0"]})
        assert response.status_code < 500
        if role in allowed:
            assert calls == [user.username], f"{role} could not run {label}:{action} ({response.status_code})"
        else:
            assert calls == [], f"{role} ran {label}:{action}"
            assert response.status_code in (200, 302, 403)


def button_args(about: str | None, objects) -> list:
    """The URL's arguments: the object's pk; a document's URL names its order and its file id."""
    if about == "document":
        return [objects["order"].pk, objects["document"].dr_file_id]
    if about == "dr_order_id":
        return [objects["order"].dr_order_id]
    if about == "sku_id":
        return [objects["sku"].sku_id]
    return [objects[about].pk] if about else []


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(BUTTONS))
def test_admin_button_answers_403_to_everyone_but_its_roles(people, dr, objects, name):
    if name not in ADMIN_BUTTONS:
        pytest.fail(f"say in ADMIN_BUTTONS who may use {name}")
    method, about, allowed = ADMIN_BUTTONS[name]
    args = button_args(about, objects)
    url = reverse(f"admin:{name}", args=args)
    for role in PEOPLE:
        client = Client()
        client.force_login(people[role])
        response = getattr(client, method)(url)
        if role in allowed:
            assert response.status_code not in (401, 403), f"{role} refused {name}"
            assert response.status_code < 500, f"{name} as {role}: {response.status_code}"
            assert "/admin/login/" not in response.get("Location", "")
        else:
            assert response.status_code == 403, f"{role} got {response.status_code} from {name}"


@pytest.mark.django_db
@pytest.mark.parametrize("label", sorted(model_admins()))
def test_admin_list_opens_only_for_its_roles(people, label):
    allowed = ADMIN_LISTS.get(label, NOBODY)
    url = reverse(f"admin:{label.replace('.', '_')}_changelist")
    for role in PEOPLE:
        client = Client()
        client.force_login(people[role])
        response = client.get(url)
        expected = 200 if role in allowed else 403
        assert response.status_code == expected, f"{role} opening {label}: {response.status_code}"


# --- the API --------------------------------------------------------------------------------------

BODIES = {
    ("POST", "/api/skus/"): {"sku_id": "SEC-NEW", "name": "New", "tax_code": "4512.1", "eccn": "EAR99"},
    ("PUT", "/api/skus/{sku_id}/"): {"sku_id": "SEC-1", "name": "Renamed", "tax_code": "4512.1", "eccn": "EAR99"},
    ("PATCH", "/api/skus/{sku_id}/"): {"name": "Renamed"},
    ("POST", "/api/orders/{dr_order_id}/cancellations/"): {"all": True, "reason": "security suite"},
    ("POST", "/api/orders/{dr_order_id}/shipments/"): {"items": [{"item_id": "nope", "quantity": 1}]},
    ("POST", "/api/orders/{dr_order_id}/refunds/"): {"reason": "security suite", "amount": "1.00"},
    ("POST", "/api/orders/{dr_order_id}/returns/"): {"items": [{"item_id": "nope", "quantity": 1}]},
}


def api_path(path: str, objects) -> str:
    # No return exists: a role allowed in gets 404 for it, the others 403 before the lookup.
    return path.format(
        sku_id=objects["sku"].sku_id,
        dr_order_id=objects["order"].dr_order_id,
        file_id=objects["document"].dr_file_id,
        return_id=0,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@pytest.mark.parametrize("role", PEOPLE)
def test_api_operation_answers_403_to_everyone_but_its_roles(people, dr, objects, method, path, role):
    client = Client(HTTP_AUTHORIZATION=f"Token {token_for(people[role])}")
    body = BODIES.get((method, path))
    response = client.generic(
        method,
        api_path(path, objects),
        data=b"" if body is None else json.dumps(body),
        content_type="application/json",
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if role in API.get((method, path), NOBODY):
        assert response.status_code not in (401, 403), f"{role} refused {method} {path}: {response.content[:200]}"
    else:
        assert response.status_code == 403, f"{role} got {response.status_code} from {method} {path}"


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_api_operation_answers_401_without_credentials(objects, method, path):
    response = Client().generic(method, api_path(path, objects), HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), sorted(SIGNED), ids=[f"{m} {p}" for m, p in sorted(SIGNED)])
@pytest.mark.parametrize("role", [*PEOPLE, None])
def test_signed_operation_opens_to_no_role_without_its_signature(people, method, path, role):
    """Neither a token (any role's, or none) nor a session stands in for the signature: 400 naming it."""
    client = Client() if role is None else Client(HTTP_AUTHORIZATION=f"Token {token_for(people[role])}")
    if role is not None:
        client.force_login(people[role])
    body = json.dumps({"id": f"evt-{role}", "type": "order.accepted", "data": {}})
    response = client.generic(method, path, data=body, content_type="application/json", HTTP_ACCEPT="application/json")
    assert response.status_code == 400, (role, response.status_code, response.content[:200])
    assert SIGNED[(method, path)] in response.json()["error"]


@pytest.mark.django_db
def test_a_wrong_token_is_401_not_anybodys(objects, people):
    token_for(people[OPS])
    response = Client(HTTP_AUTHORIZATION="Token " + "0" * 40).get("/api/orders/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401

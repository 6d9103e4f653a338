"""The merchandisers' catalog admin: list, bulk actions, the change page's DR panel and its buttons."""

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.admin import SkuAdmin
from catalog.models import Sku
from digitalriver.models import Instruction
from sandbox.models import InventoryItem as DrInventoryItem
from sandbox.models import Sku as DrSku
from tests.conftest import fixture

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/catalog/sku/"


def dr_payload(name: str, values: dict | None = None) -> dict:
    """One of the DR payload fixtures, with ``values`` laid over it."""
    return {**fixture(f"{name}.json"), **(values or {})}


def dr_sku_of(sku: Sku, **overrides) -> dict:
    """DR's SKU object holding exactly our values."""
    ours = {
        "id": sku.sku_id,
        "name": sku.name,
        "description": sku.description,
        "taxCode": sku.tax_code,
        "eccn": sku.eccn,
        "hsCode": sku.hs_code,
        "countryOfOrigin": sku.country_of_origin.code,
        "partNumber": sku.part_number,
        "manufacturerId": sku.manufacturer_id,
        "weight": float(sku.weight),
        "weightUnit": sku.weight_unit,
    }
    return dr_payload("sku", {**ours, **overrides})


def dr_item_of(sku: Sku, **overrides) -> dict:
    ours = {
        "id": sku.sku_id,
        "partNumber": sku.part_number,
        "manufacturerId": sku.manufacturer_id,
        "countryOfOrigin": sku.country_of_origin.code,
        "eccn": sku.eccn,
        "hsCode": sku.hs_code,
        "allowOversell": sku.allow_oversell,
    }
    return dr_payload("inventory_item", {**ours, **overrides})


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def run_action(client, action: str, skus, **extra):
    data = {"action": action, "_selected_action": [sku.pk for sku in skus], **extra}
    return client.post(CHANGELIST, data)


def in_state(sku: Sku, state: str) -> Sku:
    """Put a SKU in a sync state as if its history had happened (the field is protected)."""
    Sku.objects.filter(pk=sku.pk).update(sync_state=state)
    return Sku.objects.get(pk=sku.pk)


# --- the list ---


def test_changelist_filters_and_searches(merchandiser_client, sku_factory):
    sku_factory("A-1", name="Anvil", part_number="PN-ANVIL", country_of_origin="DE")
    sku_factory("B-2", name="Bellows", part_number="PN-BELLOWS", allow_oversell=True)
    in_state(sku_factory("C-3", name="Chisel", fulfillment_model=Sku.FulfillmentModel.THIRD_PARTY), "synced")

    def ids(params):
        page = merchandiser_client.get(CHANGELIST, params)
        assert page.status_code == 200
        return [sku.sku_id for sku in page.context["cl"].result_list]

    assert ids({"sync_state__exact": "synced"}) == ["C-3"]
    assert ids({"fulfillment_model__exact": "third_party"}) == ["C-3"]
    assert ids({"country_of_origin": "DE"}) == ["A-1"]
    assert ids({"allow_oversell__exact": "1"}) == ["B-2"]
    assert ids({"q": "bellows"}) == ["B-2"]
    assert ids({"q": "PN-ANVIL"}) == ["A-1"]
    assert ids({"q": "C-3"}) == ["C-3"]


def test_changelist_shows_state_model_country_and_last_push(merchandiser_client, sku_factory):
    sku_factory("A-1", country_of_origin="DE")
    html = merchandiser_client.get(CHANGELIST).content.decode()
    assert "Draft (never pushed)" in html
    assert "Distributed (our warehouse, DR coordinates)" in html
    assert "Germany" in html
    assert "last pushed" in html.lower()


def test_changelist_queries_do_not_grow_with_rows(merchandiser_client, sku_factory):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert merchandiser_client.get(CHANGELIST).status_code == 200
        return len(captured)

    for number in range(3):
        sku_factory(f"S-{number}")
    few = queries()
    for number in range(3, 40):
        sku_factory(f"S-{number}", country_of_origin="DE" if number % 2 else "FR")
    assert queries() == few


# --- bulk actions ---


def test_push_action_confirms_then_reports_each_sku(merchandiser_client, sku_factory):
    good = [sku_factory("A-1"), sku_factory("A-2"), sku_factory("A-3")]
    bad = sku_factory("X-1")
    Sku.objects.filter(pk=bad.pk).update(part_number="")  # broken behind the form's back, e.g. by SQL

    confirmation = run_action(merchandiser_client, "push_to_dr", [*good, bad])
    assert confirmation.status_code == 200
    assert "Push SKUs to Digital River" in confirmation.content.decode()
    assert not Instruction.objects.exists()

    done = run_action(merchandiser_client, "push_to_dr", [*good, bad], confirmed="yes")
    assert done.status_code == 302
    [message] = message_texts(done)
    assert message.startswith("3 queued for a push; 1 refused: X-1: part_number: A part number is required")
    assert set(Sku.objects.filter(sync_state="queued").values_list("sku_id", flat=True)) == {"A-1", "A-2", "A-3"}
    assert Sku.objects.get(sku_id="X-1").sync_state == "draft"
    assert Instruction.objects.filter(kind="catalog.sku.push").count() == 3


def test_check_drift_action_confirms_then_reports_each_sku(merchandiser_client, sku_factory, dr_responses):
    same, drifted, missing = sku_factory("A-1"), sku_factory("A-2"), sku_factory("A-3")
    for sku, dr_sku in ((same, dr_sku_of(same)), (drifted, dr_sku_of(drifted, hsCode="9999.99.9999"))):
        dr_responses.get(f"https://dr.test/skus/{sku.sku_id}", json=dr_sku)
        dr_responses.get(f"https://dr.test/inventory-items/{sku.sku_id}", json=dr_item_of(sku))
    dr_responses.get("https://dr.test/skus/A-3", status=404, json=dr_payload("error_not_found"))
    dr_responses.get("https://dr.test/inventory-items/A-3", status=404, json=dr_payload("error_not_found"))

    confirmation = run_action(merchandiser_client, "check_drift", [same, drifted, missing])
    assert confirmation.status_code == 200
    assert len(dr_responses.calls) == 0

    done = run_action(merchandiser_client, "check_drift", [same, drifted, missing], confirmed="yes")
    [message] = message_texts(done)
    assert message == "1 match Digital River; 2 differ: A-2 (hsCode); A-3 (sku)."
    assert Sku.objects.get(sku_id="A-2").drift[0]["field"] == "hsCode"


def test_check_drift_action_reports_skus_dr_did_not_answer_for(merchandiser_client, sku_factory, dr_responses):
    sku = sku_factory("A-1")
    done = run_action(merchandiser_client, "check_drift", [sku], confirmed="yes")
    [message] = message_texts(done)
    assert message.startswith("0 match Digital River; 1 could not be checked: A-1: GET /skus/A-1")


def test_check_drift_action_refuses_more_skus_than_a_page_can_wait_for(
    merchandiser_client, sku_factory, dr_responses, monkeypatch
):
    monkeypatch.setattr("catalog.admin.DRIFT_CHECK_MAX", 1)
    skus = [sku_factory("A-1"), sku_factory("A-2")]
    done = run_action(merchandiser_client, "check_drift", skus, confirmed="yes")
    assert message_texts(done) == ["Select at most 1 SKUs to check while you wait; the daily scan checks them all."]
    assert len(dr_responses.calls) == 0


def test_change_model_action_asks_for_the_model_then_reports_refusals(merchandiser_client, sku_factory):
    movable = in_state(sku_factory("A-1"), "synced")
    no_part_number = sku_factory("X-1", fulfillment_model=Sku.FulfillmentModel.THIRD_PARTY, part_number="")

    confirmation = run_action(merchandiser_client, "change_fulfillment_model", [movable, no_part_number])
    html = confirmation.content.decode()
    assert confirmation.status_code == 200
    assert 'name="fulfillment_model"' in html

    unchosen = run_action(merchandiser_client, "change_fulfillment_model", [movable], confirmed="yes")
    assert unchosen.status_code == 200  # asked again: no model chosen
    assert Sku.objects.get(sku_id="A-1").fulfillment_model == "distributed"

    done = run_action(
        merchandiser_client,
        "change_fulfillment_model",
        [movable, no_part_number],
        confirmed="yes",
        fulfillment_model="orchestrated",
    )
    [message] = message_texts(done)
    assert message == (
        "1 now Orchestrated (DR Global Fulfillment) (1 queued for a push); "
        "1 refused: X-1: part_number: A part number is required for DR-managed fulfillment."
    )
    assert Sku.objects.get(sku_id="A-1").fulfillment_model == "orchestrated"
    assert Sku.objects.get(sku_id="X-1").fulfillment_model == "third_party"


def test_dr_actions_need_the_push_permission(client, sku_factory):
    editor = User.objects.create_user("editor", password="pw", is_staff=True)
    editor.user_permissions.add(*Permission.objects.filter(codename__in=["view_sku", "change_sku"]))
    client.force_login(editor)
    sku = sku_factory("A-1")

    actions = client.get(CHANGELIST).context["action_form"].fields["action"].choices
    names = {name for name, _ in actions}
    assert "push_to_dr" not in names and "check_drift" not in names
    assert "change_fulfillment_model" in names
    assert client.post(f"{CHANGELIST}{sku.pk}/push/").status_code == 403
    assert "Push our values" not in client.get(f"{CHANGELIST}{sku.pk}/change/").content.decode()


# --- the change page ---


def test_add_creates_a_draft_and_reports_rule_errors_by_field(merchandiser_client):
    form = {
        "sku_id": "NEW-1",
        "name": "New",
        "description": "",
        "fulfillment_model": "orchestrated",
        "tax_code": "4512.1",
        "eccn": "EAR99",
        "hs_code": "8471.30.0100",
        "country_of_origin": "US",
        "part_number": "",
        "manufacturer_id": "",
        "weight": "",
        "weight_unit": "oz",
        "image": "",
        "url": "",
        "item_breadcrumb": "",
        "sku_group_id": "",
    }
    refused = merchandiser_client.post(f"{CHANGELIST}add/", form)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["part_number"] == [
        "A part number is required for DR-managed fulfillment."
    ]

    created = merchandiser_client.post(f"{CHANGELIST}add/", {**form, "part_number": "PN-9"})
    assert created.status_code == 302
    assert Sku.objects.get(sku_id="NEW-1").sync_state == "draft"


def test_editing_a_synced_sku_queues_a_push(merchandiser_client, sku_factory, dr_responses):
    sku = in_state(sku_factory("A-1"), "synced")
    page = merchandiser_client.get(f"{CHANGELIST}{sku.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data.update(name="Renamed", allow_oversell="")

    saved = merchandiser_client.post(f"{CHANGELIST}{sku.pk}/change/", data)
    assert saved.status_code == 302
    sku.refresh_from_db()
    assert (sku.name, sku.sync_state) == ("Renamed", "queued")
    assert Instruction.objects.filter(subject="sku:A-1").exists()
    assert "sku_id" not in form.fields and "sync_state" not in form.fields


def test_saving_the_form_keeps_a_push_that_finished_meanwhile(
    merchandiser_client, sku_factory, dr_responses, monkeypatch
):
    sku = in_state(sku_factory("A-1"), "queued")
    form = merchandiser_client.get(f"{CHANGELIST}{sku.pk}/change/").context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data["allow_oversell"] = ""
    load = SkuAdmin.get_object

    def load_then_push_finishes(self, request, object_id, from_field=None):
        loaded = load(self, request, object_id, from_field)
        if request.method == "POST":
            Sku.objects.filter(pk=loaded.pk).update(sync_state="synced", pushed_at=timezone.now())
        return loaded

    monkeypatch.setattr(SkuAdmin, "get_object", load_then_push_finishes)
    assert merchandiser_client.post(f"{CHANGELIST}{sku.pk}/change/", data).status_code == 302
    sku.refresh_from_db()
    assert sku.sync_state == "synced" and sku.pushed_at is not None


def test_change_page_shows_drift_side_by_side_with_differing_cells_marked(
    merchandiser_client, sku_factory, dr_responses
):
    sku = sku_factory("A-1")
    Sku.objects.filter(pk=sku.pk).update(
        sync_state="out_of_sync",
        dr_sku=dr_sku_of(sku, partNumber="PN-DR"),
        dr_inventory_item=dr_item_of(sku, hsCode="8471.30.0999"),
        drift=[
            {"field": "partNumber", "ours": "PN-1", "sku": "PN-DR", "inventory_item": "PN-1"},
            {"field": "hsCode", "ours": "8471.30.0100", "sku": "8471.30.0100", "inventory_item": "8471.30.0999"},
        ],
    )
    html = merchandiser_client.get(f"{CHANGELIST}{sku.pk}/change/").content.decode()
    part_number_row = html.split('data-field="partNumber"')[1].split("</tr>")[0]
    hs_code_row = html.split('data-field="hsCode"')[1].split("</tr>")[0]
    assert '<td class="differs">PN-DR</td>' in part_number_row
    assert '<td class="differs">' not in part_number_row.replace('<td class="differs">PN-DR</td>', "")
    assert '<td class="differs">8471.30.0999</td>' in hs_code_row
    assert "part number" in part_number_row
    assert "Take DR's values" in html
    assert 'class="dr-json"' in html  # DR's copy as last fetched


def test_check_drift_button_checks_and_reports(merchandiser_client, sku_factory, dr_responses):
    sku = in_state(sku_factory("A-1"), "synced")
    dr_responses.get("https://dr.test/skus/A-1", json=dr_sku_of(sku, partNumber="PN-DR"))
    dr_responses.get("https://dr.test/inventory-items/A-1", json=dr_item_of(sku))
    dr_responses.get("https://dr.test/inventory-levels", json=dr_payload("inventory_levels"))

    done = merchandiser_client.post(f"{CHANGELIST}{sku.pk}/check-drift/")
    assert done.status_code == 302 and done.url == f"{CHANGELIST}{sku.pk}/change/"
    assert message_texts(done) == ["A-1 differs from Digital River in: partNumber."]
    sku.refresh_from_db()
    assert sku.sync_state == "out_of_sync"
    assert sku.dr_sku["partNumber"] == "PN-DR"


def test_dr_buttons_answer_post_only(merchandiser_client, sku_factory):
    sku = sku_factory("A-1")
    for button in ("check-drift", "push", "fetch-stock"):
        assert merchandiser_client.get(f"{CHANGELIST}{sku.pk}/{button}/").status_code == 405
    # "Take DR's values" reloaded by GET goes back to the SKU with a message, changing nothing.
    reloaded = merchandiser_client.get(f"{CHANGELIST}{sku.pk}/take-dr-values/")
    assert reloaded.status_code == 302 and reloaded.url == f"{CHANGELIST}{sku.pk}/change/"
    assert "Nothing was changed" in message_texts(reloaded)[0]
    assert not Instruction.objects.exists()


def test_push_button_reaches_dr_once_committed(
    merchandiser_client, sku_factory, dr_responses, settings, django_capture_on_commit_callbacks
):
    settings.CATALOG_PUSH_DELAY_SECONDS = 0
    sku = sku_factory("A-1")
    put = dr_responses.put("https://dr.test/skus/A-1", json=dr_sku_of(sku), status=201)
    dr_responses.post("https://dr.test/inventory-items", json=dr_item_of(sku), status=201)
    dr_responses.get("https://dr.test/inventory-levels", json=dr_payload("inventory_levels"))

    with django_capture_on_commit_callbacks(execute=True):
        merchandiser_client.post(f"{CHANGELIST}{sku.pk}/push/")
    assert put.call_count == 1
    sku.refresh_from_db()
    assert sku.sync_state == "synced"

    html = merchandiser_client.get(f"{CHANGELIST}{sku.pk}/change/").content.decode()
    history = html.split('id="dr-history"')[1].split("</ol>")[0]
    assert "<strong>synced</strong>" in history and "<strong>queued</strong>" in history
    assert "by merch" in history


def test_take_dr_values_asks_first_then_takes_them(merchandiser_client, sku_factory, settings):
    settings.CATALOG_PUSH_DELAY_SECONDS = 0
    sku = sku_factory("A-1")
    Sku.objects.filter(pk=sku.pk).update(
        sync_state="out_of_sync",
        dr_sku=dr_sku_of(sku, name="DR's name", partNumber="PN-DR"),
        fetched_at=timezone.now(),
        drift=[{"field": "partNumber", "ours": "PN-1", "sku": "PN-DR", "inventory_item": None}],
    )
    url = f"{CHANGELIST}{sku.pk}/take-dr-values/"

    confirmation = merchandiser_client.post(url)
    assert confirmation.status_code == 200
    assert "What we have now is lost" in confirmation.content.decode()
    assert Sku.objects.get(pk=sku.pk).part_number == "PN-1"

    done = merchandiser_client.post(url, {"confirmed": "yes"})
    assert done.status_code == 302
    assert message_texts(done) == [
        "A-1 now has Digital River's values; a push is queued so its inventory item agrees too."
    ]
    sku.refresh_from_db()
    assert (sku.name, sku.part_number, sku.sync_state) == ("DR's name", "PN-DR", "queued")


def test_take_dr_values_refuses_values_that_break_the_rules(merchandiser_client, sku_factory):
    sku = sku_factory("A-1")
    Sku.objects.filter(pk=sku.pk).update(
        sync_state="out_of_sync", dr_sku=dr_sku_of(sku, partNumber=None), fetched_at=timezone.now()
    )
    done = merchandiser_client.post(f"{CHANGELIST}{sku.pk}/take-dr-values/", {"confirmed": "yes"})
    assert message_texts(done) == [
        "A-1 kept our values: part_number: A part number is required for its inventory item."
    ]
    assert Sku.objects.get(pk=sku.pk).part_number == "PN-1"


def test_take_dr_values_needs_a_drift_check_first(merchandiser_client, sku_factory):
    sku = in_state(sku_factory("A-1"), "synced")
    done = merchandiser_client.post(f"{CHANGELIST}{sku.pk}/take-dr-values/")
    assert message_texts(done) == ["There are no Digital River values to take: check drift first (or push ours)."]


def test_change_page_shows_stock_per_warehouse_once_fetched(merchandiser_client, sku_factory, dr_responses):
    sku = in_state(sku_factory("A-1"), "synced")
    levels = dr_payload("inventory_levels")
    levels["data"].append({**levels["data"][0], "locationId": "warehouse-2", "availableQuantity": 7})
    dr_responses.get("https://dr.test/inventory-levels", json=levels)

    fetched = merchandiser_client.post(f"{CHANGELIST}{sku.pk}/fetch-stock/")
    assert fetched.status_code == 302 and fetched.url == f"{CHANGELIST}{sku.pk}/change/"
    assert message_texts(fetched) == ["A-1: stock fetched from Digital River (2 warehouses)."]
    html = merchandiser_client.get(f"{CHANGELIST}{sku.pk}/change/").content.decode()
    stock = html.split('id="dr-stock"')[1].split("</table>")[0]
    assert "sandbox-warehouse-1" in stock and "<td>100</td>" in stock
    assert "warehouse-2" in stock and "<td>7</td>" in stock
    assert dr_responses.calls[0].request.params == {"inventoryItemIds": "A-1"}
    assert len(dr_responses.calls) == 1  # the button asked DR; showing the page did not


def test_fetch_stock_button_stores_the_levels_with_the_time(merchandiser_client, sku_factory, dr_responses):
    sku = in_state(sku_factory("A-1"), "synced")
    dr_responses.get("https://dr.test/inventory-levels", json=dr_payload("inventory_levels"))
    before = timezone.now()

    merchandiser_client.post(f"{CHANGELIST}{sku.pk}/fetch-stock/")
    sku.refresh_from_db()
    assert sku.stock_levels == dr_payload("inventory_levels")["data"]
    assert sku.stock_fetched_at >= before
    assert sku.sync_state == "synced"


def test_fetch_stock_button_says_so_when_dr_is_unreachable(merchandiser_client, sku_factory, dr_responses):
    sku = in_state(sku_factory("A-1"), "synced")  # nothing registered: every call fails to connect
    Sku.objects.filter(pk=sku.pk).update(stock_levels=[{"locationId": "kept", "availableQuantity": 3}])
    done = merchandiser_client.post(f"{CHANGELIST}{sku.pk}/fetch-stock/")
    [message] = message_texts(done)
    assert "Digital River could not be reached for stock levels" in message
    assert Sku.objects.get(pk=sku.pk).stock_levels == [{"locationId": "kept", "availableQuantity": 3}]
    page = merchandiser_client.get(f"{CHANGELIST}{sku.pk}/change/")
    assert page.status_code == 200


def test_change_page_renders_stored_stock_only_and_asks_dr_nothing(merchandiser_client, sku_factory, dr_responses):
    sku = in_state(sku_factory("A-1"), "synced")
    dr_responses.get("https://dr.test/inventory-levels", json=dr_payload("inventory_levels"))
    dr_responses.get("https://dr.test/skus/A-1", json=dr_sku_of(sku, partNumber="PN-DR"))

    html = merchandiser_client.get(f"{CHANGELIST}{sku.pk}/change/").content.decode()
    assert "Not fetched yet." in html
    assert "Fetch stock from DR now" in html
    assert 'id="dr-stock"' not in html

    Sku.objects.filter(pk=sku.pk).update(
        stock_levels=[{"locationId": "stored-warehouse", "available": True, "availableQuantity": 42}],
        stock_fetched_at=timezone.now(),
    )
    html = merchandiser_client.get(f"{CHANGELIST}{sku.pk}/change/").content.decode()
    stock = html.split('id="dr-stock"')[1].split("</table>")[0]
    assert "stored-warehouse" in stock and "<td>42</td>" in stock
    assert len(dr_responses.calls) == 0
    assert Sku.objects.get(pk=sku.pk).sync_state == "synced"


def test_fetch_stock_is_for_whoever_may_view_the_sku(client, sku_factory, dr_responses):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_sku"))
    stranger = User.objects.create_user("stranger", password="pw", is_staff=True)
    sku = in_state(sku_factory("A-1"), "synced")
    dr_responses.get("https://dr.test/inventory-levels", json=dr_payload("inventory_levels"))

    client.force_login(stranger)
    assert client.post(f"{CHANGELIST}{sku.pk}/fetch-stock/").status_code == 403
    client.force_login(viewer)
    html = client.get(f"{CHANGELIST}{sku.pk}/change/").content.decode()
    assert "Fetch stock from DR now" in html and "Push our values" not in html
    assert client.post(f"{CHANGELIST}{sku.pk}/fetch-stock/").status_code == 302
    assert Sku.objects.get(pk=sku.pk).stock_levels == dr_payload("inventory_levels")["data"]


def test_fetch_stock_of_a_draft_asks_dr_nothing(merchandiser_client, sku_factory, dr_responses):
    sku = sku_factory("A-1")
    done = merchandiser_client.post(f"{CHANGELIST}{sku.pk}/fetch-stock/")
    assert message_texts(done) == [
        "A-1: Only a pushed distributed or orchestrated SKU has an inventory item, and so stock, at Digital River."
    ]
    assert len(dr_responses.calls) == 0
    assert Sku.objects.get(pk=sku.pk).stock_levels is None


def test_draft_change_page_does_not_ask_dr_for_stock(merchandiser_client, sku_factory, dr_responses):
    sku = sku_factory("A-1")
    page = merchandiser_client.get(f"{CHANGELIST}{sku.pk}/change/")
    assert page.status_code == 200
    assert len(dr_responses.calls) == 0
    html = page.content.decode()
    assert "never pushed" in html
    assert "Fetch stock from DR now" not in html
    headings = re.findall(r'class="fieldset-heading">([^<]+)<', html)
    assert headings[:5] == ["Identity", "Classification and customs", "Physical", "Presentation", "Digital River sync"]


# --- the buttons against the sandbox, over real HTTP ---


@pytest.fixture
def sandbox_dr(dr, settings):
    """The sandbox on the live server plays DR (conftest's ``dr``); a push is sent as soon as the
    request commits."""
    settings.CATALOG_PUSH_DELAY_SECONDS = 0
    return dr


def test_push_check_and_take_dr_values_against_the_sandbox(admin_client, sku_factory, sandbox_dr):
    sku = sku_factory("FLOW-1")
    page = f"{CHANGELIST}{sku.pk}/change/"

    pushed = admin_client.post(f"{CHANGELIST}{sku.pk}/push/")
    assert message_texts(pushed) == ["FLOW-1: our values are queued for a push."]
    assert Sku.objects.get(pk=sku.pk).sync_state == "synced"
    assert "Not fetched yet." in admin_client.get(page).content.decode()
    fetched = admin_client.post(f"{CHANGELIST}{sku.pk}/fetch-stock/")
    assert message_texts(fetched)[0].startswith("FLOW-1: stock fetched from Digital River")
    stock = admin_client.get(page).content.decode().split('id="dr-stock"')[1].split("</table>")[0]
    levels = list(DrInventoryItem.objects.get(dr_id="FLOW-1").levels.all())
    assert levels
    for level in levels:
        assert f"<td>{level.location_id}</td><td>yes</td><td>{level.available_quantity}</td>" in stock

    at_dr = DrSku.objects.get(dr_id="FLOW-1")  # someone at DR edits the SKU behind our back
    at_dr.data = {**at_dr.data, "partNumber": "PN-DR"}
    at_dr.save()
    checked = admin_client.post(f"{CHANGELIST}{sku.pk}/check-drift/")
    assert message_texts(checked) == ["FLOW-1 differs from Digital River in: partNumber."]
    assert '<td class="differs">PN-DR</td>' in admin_client.get(page).content.decode()

    taken = admin_client.post(f"{CHANGELIST}{sku.pk}/take-dr-values/", {"confirmed": "yes"})
    assert taken.status_code == 302
    sku.refresh_from_db()
    assert (sku.part_number, sku.sync_state, sku.drift) == ("PN-DR", "synced", [])
    assert DrInventoryItem.objects.get(dr_id="FLOW-1").data["partNumber"] == "PN-DR"

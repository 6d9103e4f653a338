"""`/api/skus/…`: every status the API answers, token and session auth, writes through the services."""

import pytest
from django.contrib.auth.models import User
from django.http import HttpRequest
from rest_framework.test import APIClient

from catalog.models import Sku
from catalog.services import DELETE_KIND, PUSH_KIND, sku_create, skus_push
from digitalriver.models import Instruction
from tests.conftest import token_client, user_with

from .fixtures_flow import SKU_VALUES, change_at_dr, make_sku, refuse_next, send_due

State = Sku.SyncState

NEW_SKU = {
    "sku_id": "API.SKU_1",
    "name": "Widget",
    "fulfillment_model": "distributed",
    "tax_code": "4512.1",
    "eccn": "EAR99",
    "hs_code": "8471.30.0100",
    "country_of_origin": "US",
    "part_number": "PN-1",
    "manufacturer_id": "MFR-1",
    "weight": "12.5",
    "weight_unit": "oz",
}


@pytest.fixture
def api(merchandiser):
    """A merchandiser calling with a token, as another program would."""
    return token_client(merchandiser)


def as_user(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def synced(sku: Sku) -> Sku:
    """Mark a SKU as pushed without asking DR (for tests about what an edit does afterwards)."""
    sku.queue_push()
    sku.mark_synced(pushed={}, model=sku.fulfillment_model, dr_sku=None, dr_inventory_item=None)
    sku.save()
    return sku


# --- authentication and permissions --------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_calls_are_401():
    response = APIClient().get("/api/skus/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert APIClient().post("/api/skus/WIDGET-1/sync/").status_code == 401


@pytest.mark.django_db
def test_a_wrong_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/skus/").status_code == 401


@pytest.mark.django_db
def test_session_auth_works_for_a_signed_in_merchandiser(merchandiser, client):
    make_sku()
    # django-axes needs the request in authenticate()
    client.login(request=HttpRequest(), username="merch", password="secret-pass-123")
    response = client.get("/api/skus/")
    assert response.status_code == 200 and response.json()["count"] == 1


@pytest.mark.django_db
def test_a_user_without_catalog_permissions_is_403():
    client = as_user(user_with("nobody"))
    assert client.get("/api/skus/").status_code == 403
    assert client.post("/api/skus/", NEW_SKU, format="json").status_code == 403


@pytest.mark.django_db
def test_a_reader_may_read_but_not_write_push_or_check():
    make_sku()
    client = as_user(user_with("reader", "view_sku", app_label="catalog"))
    assert client.get("/api/skus/WIDGET-1/").status_code == 200
    assert client.patch("/api/skus/WIDGET-1/", {"name": "x"}, format="json").status_code == 403
    assert client.delete("/api/skus/WIDGET-1/").status_code == 403
    response = client.post("/api/skus/WIDGET-1/sync/")
    assert response.status_code == 403 and "catalog.push_sku" in response.json()["detail"]
    assert client.post("/api/skus/WIDGET-1/drift/").status_code == 403
    # The last known drift is stored data, read like the rest of the SKU.
    assert client.get("/api/skus/WIDGET-1/drift/").status_code == 200


@pytest.mark.django_db
def test_an_editor_without_push_permission_cannot_sync():
    make_sku()
    client = as_user(user_with("editor", "view_sku", "change_sku", app_label="catalog"))
    assert client.patch("/api/skus/WIDGET-1/", {"name": "x"}, format="json").status_code == 200
    assert client.post("/api/skus/WIDGET-1/sync/").status_code == 403


# --- reading -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_filters_and_search(api):
    make_sku(sku_id="A-1", name="Blue widget")
    make_sku(sku_id="B-1", name="Red gadget", part_number="GADGET-9")
    make_sku(sku_id="C-1", fulfillment_model="third_party")
    skus_push(skus=[Sku.objects.get(sku_id="B-1")])

    def ids(query: str) -> list[str]:
        response = api.get(f"/api/skus/{query}")
        assert response.status_code == 200, response.content
        return [row["sku_id"] for row in response.json()["results"]]

    assert ids("") == ["A-1", "B-1", "C-1"]
    assert ids("?sync_state=queued") == ["B-1"]
    assert ids("?fulfillment_model=third_party") == ["C-1"]
    assert ids("?sync_state=draft&fulfillment_model=distributed") == ["A-1"]
    assert ids("?search=gadget-9") == ["B-1"]
    assert ids("?search=blue") == ["A-1"]
    assert ids("?search=C-1") == ["C-1"]


@pytest.mark.django_db
def test_a_filter_value_that_does_not_exist_is_400_naming_it(api):
    response = api.get("/api/skus/?sync_state=lost")
    assert response.status_code == 400
    assert response.json() == {"sync_state": ["'lost' is not one of draft, queued, synced, out_of_sync, failed."]}


@pytest.mark.django_db
def test_retrieve_is_snake_case_json_with_the_sync_state(api):
    make_sku(sku_id="A.B_C-1")
    response = api.get("/api/skus/A.B_C-1/")
    assert response.status_code == 200
    body = response.json()
    assert body["sku_id"] == "A.B_C-1" and body["country_of_origin"] == "US" and body["weight"] == "12.500"
    assert body["sync_state"] == "draft" and body["pushed_at"] is None and body["hs_code"] == "8471.30.0100"


@pytest.mark.django_db
def test_an_unknown_sku_is_404(api):
    assert api.get("/api/skus/NOPE/").status_code == 404
    assert api.patch("/api/skus/NOPE/", {"name": "x"}, format="json").status_code == 404
    assert api.delete("/api/skus/NOPE/").status_code == 404
    assert api.post("/api/skus/NOPE/sync/").status_code == 404
    assert api.get("/api/skus/NOPE/drift/").status_code == 404
    assert api.post("/api/skus/NOPE/drift/").status_code == 404


# --- writing -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_is_201_and_a_draft(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/skus/", NEW_SKU, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["sync_state"] == "draft"
    sku = Sku.objects.get(sku_id="API.SKU_1")
    assert sku.part_number == "PN-1" and str(sku.weight) == "12.500"
    assert not Instruction.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"sku_id": "bad id"}, "sku_id", "'bad id' is not a valid SKU id"),
        ({"hs_code": "84713"}, "hs_code", "'84713' is not a valid HS code"),
        ({"country_of_origin": "XX"}, "country_of_origin", "'XX' is not an ISO 3166-1 alpha-2 country code"),
        ({"weight_unit": "stone"}, "weight_unit", "'stone' is not a weight unit"),
        ({"part_number": ""}, "part_number", "A part number is required for its inventory item."),
        ({"tax_code": "", "eccn": ""}, "eccn", "An ECCN is required unless a SKU group supplies it."),
        ({"fulfillment_model": "digital"}, "manufacturer_id", "applies to physical products only"),
        ({"fulfillment_model": "dropship"}, "fulfillment_model", "'dropship' is not a fulfillment model"),
        ({"name": ""}, "name", "This field may not be blank."),
    ],
)
@pytest.mark.django_db
def test_create_refused_by_a_rule_is_400_naming_the_field(api, overrides, field, message):
    response = api.post("/api/skus/", {**NEW_SKU, **overrides}, format="json")
    assert response.status_code == 400
    assert any(message in text for text in response.json()[field]), response.json()
    assert not Sku.objects.exists()


@pytest.mark.django_db
def test_create_with_an_existing_id_is_400_naming_sku_id(api):
    make_sku(sku_id="API.SKU_1")
    response = api.post("/api/skus/", NEW_SKU, format="json")
    assert response.status_code == 400 and "sku_id" in response.json()


@pytest.mark.django_db
def test_put_replaces_the_values(api):
    make_sku(sku_id="API.SKU_1")
    response = api.put("/api/skus/API.SKU_1/", {**NEW_SKU, "name": "Replaced", "hs_code": ""}, format="json")
    assert response.status_code == 200, response.content
    sku = Sku.objects.get(sku_id="API.SKU_1")
    assert sku.name == "Replaced" and sku.hs_code == ""


@pytest.mark.django_db
def test_patch_checks_the_rules_against_the_whole_sku(api):
    make_sku()
    response = api.patch("/api/skus/WIDGET-1/", {"fulfillment_model": "orchestrated", "part_number": ""}, format="json")
    assert response.status_code == 400
    assert response.json() == {"part_number": ["A part number is required for DR-managed fulfillment."]}
    response = api.patch("/api/skus/WIDGET-1/", {"hs_code": "8471.41.0000"}, format="json")
    assert response.status_code == 200 and response.json()["hs_code"] == "8471.41.0000"
    assert response.json()["fulfillment_model"] == "distributed" and response.json()["country_of_origin"] == "US"


@pytest.mark.django_db
def test_the_id_of_a_pushed_sku_cannot_change(api):
    synced(make_sku())
    response = api.patch("/api/skus/WIDGET-1/", {"sku_id": "OTHER"}, format="json")
    assert response.status_code == 400
    assert response.json()["sku_id"] == ["The SKU id cannot change once the SKU was pushed: create a new SKU."]
    response = api.put("/api/skus/WIDGET-1/", {**NEW_SKU, "sku_id": "OTHER"}, format="json")
    assert response.status_code == 400
    assert response.json()["sku_id"] == ["The SKU id cannot change once the SKU was pushed: create a new SKU."]
    assert list(Sku.objects.values_list("sku_id", flat=True)) == ["WIDGET-1"]


@pytest.mark.django_db
def test_a_draft_may_still_be_renamed(api):
    make_sku()
    response = api.patch("/api/skus/WIDGET-1/", {"sku_id": "OTHER"}, format="json")
    assert response.status_code == 200 and response.json()["sku_id"] == "OTHER"
    assert list(Sku.objects.values_list("sku_id", flat=True)) == ["OTHER"]


@pytest.mark.django_db
def test_an_edit_of_a_pushed_sku_over_the_api_queues_a_push(api, django_capture_on_commit_callbacks):
    synced(make_sku())
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch("/api/skus/WIDGET-1/", {"eccn": "5A992"}, format="json")
    assert response.status_code == 200 and response.json()["sync_state"] == "queued"
    assert Instruction.objects.filter(kind=PUSH_KIND, subject="sku:WIDGET-1").count() == 1


@pytest.mark.django_db
def test_delete_is_204_and_queues_the_deletion_at_dr_for_a_pushed_sku(api, django_capture_on_commit_callbacks):
    synced(make_sku())
    sku_create(values={**SKU_VALUES, "sku_id": "DRAFT-1"})
    # The sending job is left unrun: this test is about what is queued, not about DR.
    with django_capture_on_commit_callbacks() as jobs:
        assert api.delete("/api/skus/WIDGET-1/").status_code == 204
        assert api.delete("/api/skus/DRAFT-1/").status_code == 204
    assert len(jobs) == 1
    assert not Sku.objects.exists()
    assert list(Instruction.objects.values_list("kind", "subject")) == [(DELETE_KIND, "sku:WIDGET-1")]


# --- sync and drift ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sync_is_202_with_the_sync_state_and_queues_one_push(api, django_capture_on_commit_callbacks):
    make_sku()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/skus/WIDGET-1/sync/")
        again = api.post("/api/skus/WIDGET-1/sync/")
    assert response.status_code == 202 and again.status_code == 202
    assert response.json() == {"sku_id": "WIDGET-1", "sync_state": "queued", "sync_error": "", "pushed_at": None}
    assert Instruction.objects.filter(kind=PUSH_KIND, state=Instruction.State.PENDING).count() == 1


@pytest.mark.django_db
def test_sync_refuses_a_sku_that_breaks_drs_rules_with_409_naming_the_fields(api):
    sku = make_sku()
    Sku.objects.filter(pk=sku.pk).update(part_number="")  # broken behind the services' back, e.g. by SQL

    response = api.post("/api/skus/WIDGET-1/sync/")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "WIDGET-1 was not pushed: part_number: A part number is required for its inventory item.",
        "fields": {"part_number": ["A part number is required for its inventory item."]},
    }
    assert Sku.objects.get(pk=sku.pk).sync_state == State.DRAFT
    assert not Instruction.objects.exists()


def test_drift_post_checks_dr_now_and_returns_the_rows(dr):
    pusher = user_with("pusher", "view_sku", "push_sku", app_label="catalog")
    sku = make_sku()
    skus_push(skus=[sku])
    send_due()
    change_at_dr("WIDGET-1", item={"hsCode": "9999.99.9999"})

    response = as_user(pusher).post("/api/skus/WIDGET-1/drift/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["drifted"] is True and body["sync_state"] == "out_of_sync" and body["checked_at"]
    assert body["rows"] == [
        {"field": "hsCode", "ours": "8471.30.0100", "sku": "8471.30.0100", "inventory_item": "9999.99.9999"}
    ]


def test_drift_post_when_dr_cannot_be_asked_is_502_with_the_reason(dr):
    pusher = user_with("pusher", "view_sku", "push_sku", app_label="catalog")
    make_sku()
    refuse_next("/skus/WIDGET-1", status=403, method="GET")
    response = as_user(pusher).post("/api/skus/WIDGET-1/drift/")
    assert response.status_code == 502
    assert response.json()["detail"].startswith("Digital River could not be asked: GET /skus/WIDGET-1: 403")


@pytest.mark.django_db
def test_drift_get_returns_the_last_known_drift_without_asking_dr_or_changing_anything(dr_responses):
    sku = synced(make_sku())
    # Were DR asked, it would show another HS code and the SKU would become out of sync.
    dr_responses.get("https://dr.test/skus/WIDGET-1", json={"id": "WIDGET-1", "hsCode": "9999.99.9999"})
    before = Sku.objects.filter(pk=sku.pk).values().get()
    reader = as_user(user_with("reader", "view_sku", app_label="catalog"))

    response = reader.get("/api/skus/WIDGET-1/drift/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["sku_id"], body["drifted"], body["sync_state"], body["rows"]) == ("WIDGET-1", False, "synced", [])
    assert body["checked_at"]  # the push's own check
    assert len(dr_responses.calls) == 0
    assert Sku.objects.filter(pk=sku.pk).values().get() == before

    rows = [{"field": "hsCode", "ours": "8471.30.0100", "sku": "9999.99.9999", "inventory_item": None}]
    Sku.objects.filter(pk=sku.pk).update(drift=rows, sync_state=State.OUT_OF_SYNC)
    body = reader.get("/api/skus/WIDGET-1/drift/").json()
    assert (body["drifted"], body["sync_state"], body["rows"]) == (True, "out_of_sync", rows)
    assert len(dr_responses.calls) == 0


@pytest.mark.django_db
def test_drift_get_of_a_sku_never_checked_says_so(api, dr_responses):
    make_sku()
    body = api.get("/api/skus/WIDGET-1/drift/").json()
    assert body == {"sku_id": "WIDGET-1", "drifted": False, "sync_state": "draft", "checked_at": None, "rows": []}
    assert len(dr_responses.calls) == 0


# --- the schema ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_openapi_schema_documents_every_sku_endpoint(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths["/api/skus/"]) >= {"get", "post"}
    assert set(paths["/api/skus/{sku_id}/"]) >= {"get", "put", "patch", "delete"}
    assert {"202", "409"} <= set(paths["/api/skus/{sku_id}/sync/"]["post"]["responses"])
    for method in ("get", "post"):
        drift = paths["/api/skus/{sku_id}/drift/"][method]
        assert drift["responses"]["200"]["content"]["application/json"]["examples"]
    assert "no call to DR" in paths["/api/skus/{sku_id}/drift/"]["get"]["summary"]
    list_parameters = {parameter["name"] for parameter in paths["/api/skus/"]["get"]["parameters"]}
    assert {"sync_state", "fulfillment_model", "search"} <= list_parameters

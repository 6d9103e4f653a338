"""Each catalog rule is written once and heard the same from every door: the admin, the API, the
CSV import and `sync_catalog`."""

from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils.html import escape
from rest_framework.test import APIClient

from catalog.models import SKU_ID_FIXED_MESSAGE, Sku
from catalog.resources import SkuResource
from catalog.services import sku_update
from digitalriver.models import Instruction

from .test_import import good_row

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/catalog/sku/"
ID_FIXED = "The SKU id cannot change once the SKU was pushed: create a new SKU."
PUSH_REFUSED = "A-1 was not pushed: part_number: A part number is required for its inventory item."


def pushed(sku: Sku) -> Sku:
    Sku.objects.filter(pk=sku.pk).update(sync_state=Sku.SyncState.SYNCED)
    return Sku.objects.get(pk=sku.pk)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def api(merchandiser) -> APIClient:
    client = APIClient()
    client.force_authenticate(merchandiser)
    return client


# --- a pushed SKU keeps its id -------------------------------------------------------------------


def test_the_id_rule_has_one_wording(merchandiser_client, api, sku_factory):
    assert SKU_ID_FIXED_MESSAGE == ID_FIXED
    sku = pushed(sku_factory("A-1"))

    # The admin: the id is read-only, and the rule's words stand under it.
    page = merchandiser_client.get(f"{CHANGELIST}{sku.pk}/change/")
    assert "sku_id" not in page.context["adminform"].form.fields
    assert ID_FIXED in page.content.decode()

    # The API.
    response = api.patch("/api/skus/A-1/", {"sku_id": "A-2"}, format="json")
    assert response.status_code == 400 and response.json()["sku_id"] == [ID_FIXED]

    # The CSV import's row validation (what import_row runs on each row). A file cannot ask for
    # this through the admin page, whose rows are matched to SKUs by this very id, so the rule is
    # met here by handing the resource a stored SKU and a row with another id.
    resource = SkuResource()
    stored = Sku.objects.get(pk=sku.pk)
    with pytest.raises(ValidationError) as caught:
        resource.import_instance(stored, good_row("A-2"))
        resource.validate_instance(stored)
    assert caught.value.message_dict["sku_id"] == [ID_FIXED]

    # The service.
    with pytest.raises(ValidationError) as caught:
        sku_update(sku=sku, values={"sku_id": "A-2"})
    assert caught.value.message_dict == {"sku_id": [ID_FIXED]}
    assert list(Sku.objects.values_list("sku_id", flat=True)) == ["A-1"]


def test_a_draft_may_be_renamed_in_the_admin(merchandiser_client, sku_factory):
    sku = sku_factory("A-1")
    form = merchandiser_client.get(f"{CHANGELIST}{sku.pk}/change/").context["adminform"].form
    assert "sku_id" in form.fields
    data = {name: form[name].value() or "" for name in form.fields}
    data.update(sku_id="A-2", allow_oversell="")

    assert merchandiser_client.post(f"{CHANGELIST}{sku.pk}/change/", data).status_code == 302
    assert Sku.objects.get(pk=sku.pk).sku_id == "A-2"


# --- the push gate -------------------------------------------------------------------------------


@pytest.fixture
def broken(sku_factory) -> Sku:
    """A SKU whose values break DR's rules, written around the services (e.g. by SQL)."""
    sku = sku_factory("A-1")
    Sku.objects.filter(pk=sku.pk).update(part_number="")
    return Sku.objects.get(pk=sku.pk)


def test_the_push_gate_refuses_alike_in_the_admin_the_api_and_sync_catalog(
    merchandiser_client, api, broken, dr_responses
):
    button = merchandiser_client.post(f"{CHANGELIST}{broken.pk}/push/")
    assert messages_of(button) == [PUSH_REFUSED]

    confirmation = merchandiser_client.post(
        CHANGELIST, {"action": "push_to_dr", "_selected_action": [broken.pk]}
    ).content.decode()
    assert escape(f"1 of them break DR's rules now: {PUSH_REFUSED}") in confirmation
    bulk = merchandiser_client.post(
        CHANGELIST, {"action": "push_to_dr", "_selected_action": [broken.pk], "confirmed": "yes"}
    )
    assert messages_of(bulk) == [
        "0 queued for a push; 1 refused: A-1: part_number: A part number is required for its inventory item."
    ]

    response = api.post("/api/skus/A-1/sync/")
    assert response.status_code == 409
    assert response.json()["detail"] == PUSH_REFUSED
    assert response.json()["fields"] == {"part_number": ["A part number is required for its inventory item."]}

    out = StringIO()
    call_command("sync_catalog", "--all", stdout=out)
    assert out.getvalue().splitlines() == [PUSH_REFUSED, "No SKUs pushed: 1 break DR's rules."]

    assert Sku.objects.get(pk=broken.pk).sync_state == Sku.SyncState.DRAFT
    assert not Instruction.objects.exists()
    assert len(dr_responses.calls) == 0

"""POST /webhooks/digitalriver/ as an API endpoint: described in the OpenAPI schema, authenticated by DR's
signature alone, answering in the same bytes whatever the client negotiates, and refusing an oversized
body without reading it. test_inbox.py covers what it stores and how it is processed."""

import json

import pytest
from django.test import Client

from digitalriver import signature
from digitalriver.models import WebhookEvent
from tests.conftest import make_event

URL = "/webhooks/digitalriver/"
SECRET = "whsec_webhook_api_0123456789"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.DR_WEBHOOK_SECRETS = [SECRET]
    settings.DR_WEBHOOK_TOLERANCE_SECONDS = 300


def signed(body: bytes) -> dict:
    return {"HTTP_DIGITALRIVER_SIGNATURE": signature.sign(SECRET, body)}


# --- the schema ----------------------------------------------------------------------------------


@pytest.fixture
def schema(admin_client) -> dict:
    response = admin_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else node


def test_the_schema_lists_the_webhook_with_its_answers(schema):
    assert set(schema["paths"][URL]) == {"post"}
    operation = schema["paths"][URL]["post"]
    assert operation["summary"] and operation["description"]

    body = operation["requestBody"]["content"]["application/json"]
    assert {"id", "type"} <= set(resolve(schema, body["schema"])["required"])
    assert body["examples"]

    answers = operation["responses"]
    assert set(answers) == {"202", "200", "400", "413"}
    for code, keys in (("202", {"id", "status"}), ("200", {"id", "status"}), ("400", {"error"}), ("413", {"error"})):
        content = answers[code]["content"]["application/json"]
        assert set(resolve(schema, content["schema"])["properties"]) == keys, code
        examples = [example["value"] for example in content["examples"].values()]
        assert examples and all(set(example) == keys for example in examples), code
    statuses = {
        example["value"]["status"]
        for code in ("202", "200")
        for example in answers[code]["content"]["application/json"]["examples"].values()
    }
    assert statuses == {"accepted", "duplicate"}


def test_the_schema_says_the_signature_is_the_only_authentication(schema):
    assert schema["paths"][URL]["post"]["security"] == [{"DigitalRiverSignature": []}]
    scheme = schema["components"]["securitySchemes"]["DigitalRiverSignature"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "DigitalRiver-Signature")


def test_the_api_keeps_its_operation_names(schema):
    """The webhook outside /api/ does not rename the API's operations (the prefix would become '/')."""
    assert schema["paths"]["/api/skus/"]["get"]["operationId"] == "skus_list"
    assert schema["paths"]["/api/orders/"]["get"]["tags"] == ["orders"]


# --- the answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["application/json", "text/html", "application/json; indent=4", "image/png", ""])
def test_answers_are_the_same_json_bytes_whatever_the_client_accepts(client, accept):
    """No browsable API, no 406, no indentation on request: DR gets exactly what it always got."""
    event = make_event("something.unknown", event_id="evt-\u00e9-bytes")
    body = json.dumps(event).encode()

    refused = client.post(URL, data=body, content_type="application/json", HTTP_ACCEPT=accept)
    assert refused.status_code == 400
    assert refused["Content-Type"] == "application/json"
    assert refused.content == b'{"error": "missing DigitalRiver-Signature header"}'

    accepted = client.post(URL, data=body, content_type="application/json", HTTP_ACCEPT=accept, **signed(body))
    assert accepted.status_code == 202
    assert accepted["Content-Type"] == "application/json"
    assert accepted.content == b'{"id": "evt-\\u00e9-bytes", "status": "accepted"}'

    again = client.post(URL, data=body, content_type="application/json", HTTP_ACCEPT=accept, **signed(body))
    assert again.status_code == 200
    assert again.content == b'{"id": "evt-\\u00e9-bytes", "status": "duplicate"}'


def test_every_answer_carries_the_headers_drf_gave(client):
    """A POST is answered without DRF (WebhookView.post): its answers keep DRF's Content-Type and Allow."""
    event = make_event("something.unknown")
    body = json.dumps(event).encode()
    answers = [
        client.post(URL, data=body, content_type="application/json", **signed(body)),  # 202
        client.post(URL, data=body, content_type="application/json", **signed(body)),  # 200
        client.post(URL, data=body, content_type="application/json"),  # 400
        client.post(URL, data=b"{}", content_type="application/json", CONTENT_LENGTH=str(10**7)),  # 413
        client.get(URL),  # 405, from DRF itself
    ]
    assert [answer.status_code for answer in answers] == [202, 200, 400, 413, 405]
    for answer in answers:
        assert (answer["Content-Type"], answer["Allow"]) == ("application/json", "POST")
        assert "Vary" not in answer


class Unreadable:
    """A request body stream that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


@pytest.mark.parametrize("length", [str(1024 * 1024 + 1), str(10**12), "9" * 40])
def test_an_oversized_content_length_is_refused_before_the_body_is_read(length):
    response = Client(raise_request_exception=True).post(
        URL, data=b"{}", content_type="application/json", CONTENT_LENGTH=length, **{"wsgi.input": Unreadable()}
    )
    assert response.status_code == 413
    assert response.json() == {"error": "body larger than 1048576 bytes"}
    assert not WebhookEvent.objects.exists()


def test_a_token_opens_nothing_without_the_signature(client, admin_user):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=admin_user)
    body = json.dumps(make_event("something.unknown")).encode()
    response = client.post(URL, data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 400
    assert response.json() == {"error": "missing DigitalRiver-Signature header"}
    assert not WebhookEvent.objects.exists()

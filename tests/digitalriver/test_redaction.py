import json

import pytest

from core.redaction import REDACTED, redact_data, redact_headers, redact_text


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.DR_SECRET_KEY = "sk_test_settings_key_123456"
    settings.DR_WEBHOOK_SECRETS = ["whsec_first_abcdef", "second-plain-secret", "short"]


@pytest.mark.parametrize(
    "key",
    [
        "clientSecret",
        "number",
        "cvv",
        "CVV",
        "securityCode",
        "password",
        "secretKey",
        "webhookSecret",
        "signingSecret",
        "accessToken",
        "token",
        "iban",
    ],
)
def test_secret_keys_are_redacted_at_any_depth(key):
    data = {"id": "src_1", "payment": {"sources": [{"creditCard": {key: "s3cr3t-value", "brand": "Visa"}}]}}

    redacted = redact_data(data)

    card = redacted["payment"]["sources"][0]["creditCard"]
    assert card[key] == REDACTED
    assert card["brand"] == "Visa"
    assert redacted["id"] == "src_1"
    assert data["payment"]["sources"][0]["creditCard"][key] == "s3cr3t-value"  # the input is untouched


def test_ordinary_fields_stay_readable():
    body = {
        "id": "240",
        "state": "accepted",
        "items": [{"id": "9", "quantity": 2, "skuId": "sku_1"}],
        "creditCard": {"lastFourDigits": "1111", "expirationYear": 2030},
        "trackingNumber": "1Z999",
    }

    assert json.loads(redact_text(json.dumps(body))) == body


def test_json_text_is_redacted_by_key():
    text = json.dumps({"creditCard": {"number": 4111111111111111, "cvv": "737"}, "clientSecret": "cs_abc"})

    redacted = json.loads(redact_text(text))

    assert redacted == {"creditCard": {"number": REDACTED, "cvv": REDACTED}, "clientSecret": REDACTED}


def test_text_that_is_not_json_is_redacted_by_pattern():
    text = 'partial {"clientSecret" : "cs_abc\\"def", "Number": 4111111111111111, "cvv":"737", "state": "ok"'

    redacted = redact_text(text)

    for secret in ("cs_abc", "4111111111111111", "737"):
        assert secret not in redacted
    assert '"state": "ok"' in redacted


def test_configured_secrets_and_key_shapes_are_redacted_anywhere():
    text = (
        "key sk_test_settings_key_123456, hook whsec_first_abcdef, other second-plain-secret, "
        "live sk_live_AbC123, bare sk_9f8e7d, a signing whsec_zz99"
    )

    redacted = redact_text(text)

    for secret in (
        "sk_test_settings_key_123456",
        "whsec_first_abcdef",
        "second-plain-secret",
        "sk_live_AbC123",
        "sk_9f8e7d",
        "whsec_zz99",
    ):
        assert secret not in redacted
    assert redacted.startswith("key [redacted], hook [redacted]")


def test_extra_secrets_passed_by_the_caller_are_redacted():
    assert redact_text('{"note": "rk_restricted_key_42"}', ["rk_restricted_key_42"]) == '{"note": "[redacted]"}'


def test_words_that_merely_contain_a_key_prefix_are_kept():
    assert redact_text("task_42 desk_7 risk_high") == "task_42 desk_7 risk_high"


def test_empty_text():
    assert redact_text("") == ""


def test_headers():
    headers = {
        "Authorization": "Bearer sk_test_x",
        "Cookie": "sessionid=1",
        "X-Api-Token": "t",
        "Content-Type": "application/json",
        "DigitalRiver-Signature": "t=1,v0=abc",
    }

    assert redact_headers(headers) == {
        "Authorization": REDACTED,
        "Cookie": REDACTED,
        "X-Api-Token": REDACTED,
        "Content-Type": "application/json",
        "DigitalRiver-Signature": "t=1,v0=abc",
    }

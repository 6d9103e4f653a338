"""Card numbers are masked wherever text or JSON is redacted for the call log, the outbox and the admin;
ids and numbers that only look long are left readable."""

import pytest

from core.admin import pretty_json
from core.redaction import REDACTED, mask_card_numbers, redact_json, redact_text


@pytest.mark.parametrize(
    "text",
    [
        "Card 4111111111111111 was declined",
        "paid with 4242 4242 4242 4242.",
        "4000-0566-5566-5556",
        "amex 3782 822463 10005",
        "(5555555555554444)",
        "diners 30569309025904",
        "19 digits 6011111111111111110",
    ],
)
def test_a_card_number_in_free_text_is_masked(text):
    masked = mask_card_numbers(text)
    assert REDACTED in masked
    assert not any(run.isdigit() and len(run) >= 13 for run in masked.replace(" ", "").replace("-", "").split())


@pytest.mark.parametrize(
    "text",
    [
        "order 231388420336",  # DR's order and item ids: 12 digits
        "item 231388420336-0",
        "4111111111111112",  # fails the Luhn check
        "ful_5d1b0f12-3456-7890-1234-567890123456",
        "2026-11-20T10:00:00Z",
        "+1 612 555 0100",
        "tracking 1Z999AA10123456784",
        "amount 70.17 of 1000000000000.00",
    ],
)
def test_ids_dates_and_amounts_are_left_alone(text):
    assert mask_card_numbers(text) == text


def test_json_is_masked_by_value_and_stays_json():
    text = redact_text('{"note": "card 4111111111111111", "orderId": "231388420336", "amount": 4111111111111111}')
    assert text == '{"note": "card [redacted]", "orderId": "231388420336", "amount": 4111111111111111}'


def test_the_admin_shows_json_without_secrets_or_card_numbers(settings):
    settings.DR_SECRET_KEY = "sk_live_admin_view_0123456789"
    shown = pretty_json(
        {
            "payment": {
                "session": {"clientSecret": "cs_abc"},
                "sources": [{"creditCard": {"number": "4111111111111111"}}],
            },
            "note": "key sk_live_admin_view_0123456789, card 4242-4242-4242-4242",
            "orderId": "231388420336",
        }
    )
    assert "cs_abc" not in shown
    assert "4111111111111111" not in shown and "4242-4242" not in shown
    assert "sk_live_admin_view" not in shown
    assert "231388420336" in shown
    assert pretty_json("not json: 4111111111111111") == '<pre class="dr-json">not json: [redacted]</pre>'
    assert redact_json({"a": 1}, indent=2) == '{\n  "a": 1\n}'

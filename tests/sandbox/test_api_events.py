"""Contract: /events and /webhooks over HTTP."""

from tests.conftest import fixture

from .conftest import assert_keys_like
from .test_api_catalog import error_of


def test_events_list_filter_and_get(api, place, skus):
    place((skus["distributed"], 1), upstream_id="WEB-1")
    place((skus["distributed"], 1), state="in_review", upstream_id="WEB-2")
    events = api.get("/events").json()
    assert [event["type"] for event in events["data"]] == ["order.review_opened", "order.accepted"]
    event = events["data"][1]
    assert_keys_like(event, fixture("event_order_accepted.json"))
    assert event["data"]["previousAttributes"] == {"state": "pending_payment"}
    assert api.get(f"/events/{event['id']}").json() == event
    assert api.get("/events/nope").status_code == 404
    assert [e["type"] for e in api.get("/events", type="order.accepted").json()["data"]] == ["order.accepted"]
    assert len(api.get("/events", type="order.*").json()["data"]) == 2
    assert len(api.get("/events", types="order.accepted,order.review_opened").json()["data"]) == 2
    assert api.get("/events", type="fulfillment.created").json() == {"hasMore": False, "data": []}
    page = api.get("/events", limit=1).json()
    assert page["hasMore"] is True
    assert api.get("/events", limit=1, startingAfter=page["data"][0]["id"]).json()["data"][0]["id"] == event["id"]


def test_webhooks_crud(api):
    body = {k: fixture("webhook.json")[k] for k in ("types", "address", "apiVersion", "enabled")}
    created = api.post("/webhooks", body)
    assert created.status_code == 201, created.text
    hook = created.json()
    assert_keys_like(hook, fixture("webhook.json"))
    assert api.get(f"/webhooks/{hook['id']}").json() == hook
    patched = api.patch(f"/webhooks/{hook['id']}", {"enabled": False})
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    posted = api.post(f"/webhooks/{hook['id']}", {"types": ["order.*"]})
    assert posted.json()["types"] == ["order.*"] and posted.json()["enabled"] is False
    assert [h["id"] for h in api.get("/webhooks").json()["data"]] == [hook["id"]]
    assert api.delete(f"/webhooks/{hook['id']}").status_code == 204
    assert api.get(f"/webhooks/{hook['id']}").status_code == 404


def test_webhook_validation(api):
    assert error_of(api.post("/webhooks", {}))[1] == [("missing_parameter", "types"), ("missing_parameter", "address")]
    bad = api.post("/webhooks", {"types": "order.accepted", "address": "ftp://x", "enabled": "yes"})
    assert error_of(bad)[1] == [
        ("invalid_parameter", "types"),
        ("invalid_parameter", "address"),
        ("invalid_parameter", "enabled"),
    ]


def test_events_are_kept_thirty_days_and_filter_by_created_time(api, place, skus):
    from datetime import timedelta

    from django.utils import timezone

    from sandbox.models import Event

    place((skus["distributed"], 1))
    place((skus["distributed"], 1))
    old, new = Event.objects.order_by("pk")
    Event.objects.filter(pk=old.pk).update(created_time=timezone.now() - timedelta(days=31))
    assert [event["id"] for event in api.get("/events").json()["data"]] == [new.dr_id]
    Event.objects.filter(pk=old.pk).update(created_time=timezone.now() - timedelta(days=2))
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [event["id"] for event in api.get("/events", **{"createdTime[gte]": since}).json()["data"]] == [new.dr_id]
    bad = api.get("/events", **{"createdTime[gte]": "yesterday"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["parameter"] == "createdTime[gte]"


def test_events_refuse_20_types_as_dr_does(api):
    response = api.get("/events", types=[f"order.type_{n}" for n in range(20)])
    assert response.status_code == 400
    assert response.json()["errors"][0]["parameter"] == "types"
    assert api.get("/events", types=[f"order.type_{n}" for n in range(19)]).status_code == 200

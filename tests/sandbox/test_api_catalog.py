"""Contract: /skus, /inventory-items, /inventory-levels over HTTP."""

import pytest

from tests.conftest import fixture

from .conftest import assert_keys_like, sku_body


def error_of(response):
    body = response.json()
    assert set(body) == {"type", "errors"}, body
    # The spec's Error: code, parameter (a string: left out when the error names none), message.
    assert all(set(error) in ({"code", "parameter", "message"}, {"code", "message"}) for error in body["errors"]), body
    return body["type"], [(error["code"], error.get("parameter")) for error in body["errors"]]


def test_bearer_key_is_required(api):
    api.session.headers["Authorization"] = "Bearer sk_test_wrong"
    response = api.get("/skus")
    assert response.status_code == 401
    assert response.json() == fixture("error_unauthorized.json")
    del api.session.headers["Authorization"]
    assert api.get("/skus").status_code == 401


def test_put_creates_then_updates_and_get_matches_fixture(api):
    created = api.put("/skus/dist-1", sku_body(name="Distributed widget", partNumber="PN-D"))
    assert created.status_code == 201, created.text
    assert created.headers["x-dr-requestid"]
    updated = api.put("/skus/dist-1", sku_body(name="Renamed", partNumber="PN-D"))
    assert updated.status_code == 200
    body = api.get("/skus/dist-1").json()
    # An unmanaged SKU has no managedFulfillment: the spec's only value is "DRGlobalFulfillment".
    assert body["name"] == "Renamed" and body["physical"] is True and "managedFulfillment" not in body
    assert_keys_like(body, fixture("sku.json"))


@pytest.mark.parametrize("method", ["put", "post"])
def test_allow_oversell_on_a_sku_is_an_unknown_parameter(api, method):
    """From API version 2021-12-13 a SKU's allowOversell cannot be set
    (product-management/creating-and-updating-skus.md#allow-oversell); SkuUpsertRequest does not name
    it, so DR refuses it like any unknown field, in its own words."""
    body = sku_body(allowOversell=True)
    response = api.put("/skus/s1", body) if method == "put" else api.post("/skus", {"id": "s1", **body})
    assert response.status_code == 400
    assert response.json() == {
        "type": "bad_request",
        "errors": [
            {
                "code": "unknown_parameter",
                "parameter": "allowOversell",
                "message": "'allowOversell' is an unknown parameter.",
            }
        ],
    }
    assert api.get("/skus/s1").status_code == 404
    assert api.put("/skus/s1", sku_body()).status_code == 201
    partial = api.post("/skus/s1", {"allowOversell": True})
    assert partial.status_code == 400 and error_of(partial) == ("bad_request", [("unknown_parameter", "allowOversell")])


def test_post_creates_and_refuses_an_existing_id(api):
    assert api.post("/skus", {"id": "new-1", **sku_body()}).status_code == 201
    response = api.post("/skus", {"id": "new-1", **sku_body()})
    assert response.status_code == 409
    assert error_of(response) == ("conflict", [("already_exists", "id")])


def test_partial_update_keeps_other_fields_and_null_removes(api):
    api.put("/skus/s1", sku_body(description="first"))
    response = api.post("/skus/s1", {"name": "New name", "description": None})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "New name" and "description" not in body and body["hsCode"] == "8471.30.0100"
    assert api.post("/skus/missing", {"name": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("path", "overrides", "expected"),
    [
        ("/skus/bad id!", {}, [("invalid_parameter", "id")]),
        ("/skus/s1", {"name": None}, [("missing_parameter", "name")]),
        ("/skus/s1", {"hsCode": "84713"}, [("invalid_parameter", "hsCode")]),
        ("/skus/s1", {"countryOfOrigin": "XX"}, [("invalid_parameter", "countryOfOrigin")]),
        ("/skus/s1", {"weightUnit": "stone"}, [("invalid_parameter", "weightUnit")]),
        (
            "/skus/s1",
            {"eccn": None, "taxCode": None},
            [("missing_parameter", "taxCode"), ("missing_parameter", "eccn")],
        ),
        ("/skus/s1", {"colour": "red"}, [("unknown_parameter", "colour")]),
        (
            "/skus/s1",
            {"taxCode": "4512.2"},
            [("invalid_parameter", "partNumber"), ("invalid_parameter", "manufacturerId")],
        ),
        ("/skus/s1", {"managedFulfillment": "Elsewhere"}, [("invalid_parameter", "managedFulfillment")]),
        (
            "/skus/s1",
            {"managedFulfillment": "DRGlobalFulfillment", "partNumber": None, "manufacturerId": None},
            [("missing_parameter", "partNumber")],
        ),
        ("/skus/s1", {"itemBreadcrumb": "A > "}, [("invalid_parameter", "itemBreadcrumb")]),
    ],
)
def test_sku_validation(api, path, overrides, expected):
    response = api.put(path, sku_body(**overrides) if "colour" not in overrides else {**sku_body(), **overrides})
    assert response.status_code == 400, response.text
    kind, errors = error_of(response)
    assert kind == "bad_request"
    assert errors == expected
    assert all(error["message"] for error in response.json()["errors"])


def test_sku_group_supplies_tax_fields(api):
    body = sku_body(taxCode=None, eccn=None, countryOfOrigin=None, skuGroupId="widgets")
    assert api.put("/skus/g1", body).status_code == 201


def test_managed_fulfillment_creates_and_removes_the_inventory_item(api):
    body = sku_body(partNumber="PN-M", managedFulfillment="DRGlobalFulfillment")
    assert api.put("/skus/orch-1", body).status_code == 201
    item = api.get("/inventory-items/orch-1")
    assert item.status_code == 200
    assert item.json()["partNumber"] == "PN-M" and item.json()["manufacturerId"] == "MFR-1"
    # DR keeps that item: clients may not edit or delete it.
    assert api.post("/inventory-items/orch-1", {"partNumber": "other"}).status_code == 409
    assert api.delete("/inventory-items/orch-1").status_code == 409
    assert api.put("/skus/orch-1", {**body, "managedFulfillment": None}).status_code == 200
    assert api.get("/inventory-items/orch-1").status_code == 404


def test_managed_fulfillment_with_another_manufacturer_for_the_part_is_a_conflict(api):
    assert api.post("/inventory-items", {"id": "i1", "partNumber": "PN-X", "manufacturerId": "ACME"}).status_code == 201
    body = sku_body(partNumber="PN-X", manufacturerId="OTHER", managedFulfillment="DRGlobalFulfillment")
    response = api.put("/skus/orch-2", body)
    assert response.status_code == 409
    assert error_of(response) == ("conflict", [("invalid_parameter", "manufacturerId")])


def test_delete_sku_deletes_its_inventory_item(api):
    api.put("/skus/d1", sku_body())
    api.post("/inventory-items", {"id": "d1", "partNumber": "PN-1"})
    assert api.delete("/skus/d1").status_code == 204
    assert api.get("/skus/d1").status_code == 404
    assert api.get("/inventory-items/d1").status_code == 404
    response = api.delete("/skus/d1")
    assert response.status_code == 404
    assert error_of(response) == ("not_found", [("not_found", "id")])


def test_list_pagination_newest_first(api):
    for index in range(5):
        api.put(f"/skus/p{index}", sku_body())
    first = api.get("/skus", limit=2).json()
    assert [sku["id"] for sku in first["data"]] == ["p4", "p3"] and first["hasMore"] is True
    second = api.get("/skus", limit=2, startingAfter="p3").json()
    assert [sku["id"] for sku in second["data"]] == ["p2", "p1"] and second["hasMore"] is True
    last = api.get("/skus", limit=2, startingAfter="p1").json()
    assert [sku["id"] for sku in last["data"]] == ["p0"] and last["hasMore"] is False
    before = api.get("/skus", limit=2, endingBefore="p1").json()
    assert [sku["id"] for sku in before["data"]] == ["p3", "p2"] and before["hasMore"] is True
    assert [sku["id"] for sku in api.get("/skus").json()["data"]] == ["p4", "p3", "p2", "p1", "p0"]
    assert [sku["id"] for sku in api.get("/skus", ids="p1,p3").json()["data"]] == ["p3", "p1"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"startingAfter": "nope"}])
def test_list_parameter_errors(api, params):
    response = api.get("/skus", **params)
    assert response.status_code == 400
    assert error_of(response)[1][0][0] == "invalid_parameter"


def test_inventory_items_crud_and_validation(api):
    body = {
        "id": "dist-1",
        "partNumber": "PN-D",
        "manufacturerId": "MFR-1",
        "countryOfOrigin": "US",
        "eccn": "EAR99",
        "hsCode": "8471.30.0100",
        "allowOversell": False,
    }
    created = api.post("/inventory-items", body)
    assert created.status_code == 201, created.text
    assert_keys_like(created.json(), fixture("inventory_item.json"))
    assert api.post("/inventory-items", body).status_code == 409
    missing = api.post("/inventory-items", {"id": "x"})
    assert missing.status_code == 400 and error_of(missing)[1] == [("missing_parameter", "partNumber")]
    updated = api.post("/inventory-items/dist-1", {"allowOversell": True})
    # 201 is the only success DR's spec lists for updateInventoryItems.
    assert updated.status_code == 201 and updated.json()["allowOversell"] is True
    assert [item["id"] for item in api.get("/inventory-items").json()["data"]] == ["dist-1"]
    assert api.delete("/inventory-items/dist-1").status_code == 204
    assert api.get("/inventory-items/dist-1").status_code == 404


def test_inventory_levels(api):
    api.post("/inventory-items", {"id": "dist-1", "partNumber": "PN-D"})
    response = api.get("/inventory-levels", inventoryItemIds="dist-1")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data"}
    assert_keys_like(body, fixture("inventory_levels.json"))
    assert body["data"][0]["availableQuantity"] == 100
    assert api.get("/inventory-levels", inventoryItemIds="dist-1", available="false").json() == {"data": []}
    missing = api.get("/inventory-levels")
    assert missing.status_code == 400 and error_of(missing)[1] == [("missing_parameter", "inventoryItemIds")]


def test_unknown_route_and_method(api):
    response = api.get("/nothing-here")
    assert response.status_code == 404 and error_of(response)[0] == "not_found"
    response = api.delete("/skus")
    assert response.status_code == 405 and error_of(response)[0] == "method_not_allowed"


def test_malformed_json(api):
    response = api.session.put(api.base + "/skus/x", data=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and error_of(response)[0] == "bad_request"


def test_validation_messages_name_the_problem(api):
    def messages(response):
        return {error["parameter"]: error["message"] for error in response.json()["errors"]}

    assert messages(api.put("/skus/bad id!", sku_body())) == {
        "id": "'bad id!' is not a valid id: use only 0-9 A-Z a-z . _ -"
    }
    bad = messages(api.put("/skus/s1", sku_body(hsCode="8471", countryOfOrigin="USA", weightUnit="st")))
    assert bad == {
        "countryOfOrigin": "'USA' is not an ISO 3166-1 alpha-2 country code.",
        "hsCode": "'8471' is not a valid HS code: use ####.##.#### (first six digits required).",
        "weightUnit": "'st' is not a weight unit: use oz, lb, g or kg.",
    }
    managed = messages(
        api.put(
            "/skus/s2",
            sku_body(taxCode="4512.2", partNumber=None, manufacturerId=None, managedFulfillment="DRGlobalFulfillment"),
        )
    )
    assert managed == {
        "taxCode": "A SKU with managed fulfillment needs a physical 'taxCode'.",
        "partNumber": "A SKU with managed fulfillment needs a 'partNumber'.",
    }


def test_an_unexpected_failure_answers_in_dr_shape(api, monkeypatch, caplog):
    from sandbox.services import catalog

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(catalog, "sku_delete", broken)
    response = api.delete("/skus/any")
    assert response.status_code == 500
    assert error_of(response) == ("internal_server_error", [("internal_server_error", None)])
    assert "boom" in caplog.text

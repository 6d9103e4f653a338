"""The committed extract of DR's OpenAPI file: where it comes from, structure only, and fresh."""

import json
import os
from pathlib import Path

import pytest

from . import extract as extractor
from .schemas import extract


def test_the_extract_names_its_source():
    source = extract()["source"]
    assert source["repository"] == "DigitalRiver/GitBook"
    assert source["branch"] == "Digital-River-API"
    assert source["path"] == ".gitbook/assets/2021-12-13.json"
    assert source["info.version"] and source["commit"]


def _keys_outside_properties(value, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            if key == "properties":
                for prop in sub.values():
                    _keys_outside_properties(prop, found)
            else:
                found.add(key)
                _keys_outside_properties(sub, found)
    elif isinstance(value, list):
        for item in value:
            _keys_outside_properties(item, found)


def test_the_extract_holds_structure_and_no_prose():
    data = extract()
    found: set[str] = set()
    for schema in data["schemas"].values():
        _keys_outside_properties(schema, found)
    for operation in data["operations"].values():
        _keys_outside_properties([operation.get("request"), *operation["responses"].values()], found)
    assert found <= extractor.STRUCTURAL
    # Code names only: no sentence ever made it in.
    assert all(" " not in code for code in data["errorCodes"])


def test_every_call_of_the_app_is_an_operation_of_the_extract():
    operations = extract()["operations"]
    for method, path in extractor.OPERATIONS:
        assert f"{method} {path}" in operations


MIRROR = os.environ.get("DR_GITBOOK_GIT_DIR", extractor.DEFAULT_GIT_DIR)


@pytest.mark.skipif(not Path(MIRROR).is_dir(), reason="no clone of DigitalRiver/GitBook on this machine")
def test_the_extract_is_what_the_script_makes_from_drs_file(tmp_path):
    spec, commit = extractor.load_from_git(MIRROR)
    if commit != extract()["source"]["commit"]:
        pytest.skip(f"the clone is at {commit}; the extract was made from {extract()['source']['commit']}")
    assert json.loads(extractor.render(extractor.extract(spec, commit=commit))) == extract()


def test_openapi_nullable_becomes_json_schema_null():
    """OpenAPI 3.0 has no null type: `nullable: true` admits null, its absence refuses it."""
    from .schemas import contract

    the_contract = contract()
    # FulfillmentRequestItem.quantity is a nullable integer; FulfillmentRequest.orderId a plain string.
    body = {"orderId": "1", "items": [{"itemId": "2", "quantity": None, "cancelQuantity": 1}]}
    assert the_contract.request_errors("POST", "/fulfillments", body) == []
    assert the_contract.request_errors("POST", "/fulfillments", {**body, "orderId": None}) == [
        "POST /fulfillments request: orderId: None is not of type 'string'"
    ]
    # A nullable enum (signatureRequiredType) takes null besides its values, and nothing else.
    choice = {"id": "SG", "signatureRequiredType": None}
    assert the_contract.schema_errors("GlobalFulfillmentShippingChoice", choice, answer=False) == []
    assert the_contract.schema_errors("GlobalFulfillmentShippingChoice", {**choice, "signatureRequiredType": "x"})


def test_read_only_fields_may_not_be_sent():
    """FulfillmentRequestItem.skuId is readOnly: DR fills it, a request may not carry it."""
    from .schemas import contract

    body = {"orderId": "1", "items": [{"itemId": "2", "quantity": 1, "skuId": "dist-1"}]}
    assert contract().request_errors("POST", "/fulfillments", body) == [
        "POST /fulfillments request: items[0]: Additional properties are not allowed ('skuId' was unexpected)"
    ]

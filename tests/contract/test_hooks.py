"""The edges are watched: a body DR's spec refuses, sent by the client, is caught and named."""

import pytest
import responses

from digitalriver.client import DigitalRiverClient


@pytest.mark.django_db
def test_a_body_the_spec_refuses_is_caught_at_the_clients_edge(dr_contract):
    client = DigitalRiverClient(base_url="https://dr.test", secret_key="sk_test_x", sleep=lambda _: None)
    body = {"name": "W", "taxCode": "4512.1", "eccn": "EAR99", "countryOfOrigin": "US", "allowOversell": True}
    with responses.RequestsMock() as dr:
        dr.put("https://dr.test/skus/W-1", json={"id": "W-1", "name": "W"}, status=201)
        client.put("/skus/W-1", body)
    found, dr_contract.found[:] = list(dr_contract.found), []
    assert found == [
        "PUT /skus/{id} request: (body): Additional properties are not allowed ('allowOversell' was unexpected)"
    ]


@pytest.mark.django_db
def test_a_call_outside_the_extract_is_caught(dr_contract):
    client = DigitalRiverClient(base_url="https://dr.test", secret_key="sk_test_x", sleep=lambda _: None)
    with responses.RequestsMock() as dr:
        dr.post("https://dr.test/reservations", json={}, status=201)
        client.post("/reservations", {"id": "chk_1"})
    found, dr_contract.found[:] = list(dr_contract.found), []
    assert found == ["POST /reservations: no such operation in DR's spec extract"]

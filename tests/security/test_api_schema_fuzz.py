"""Schemathesis against the live /api/schema/: every operation, with data that fits the schema and data
that does not, as a superuser with a DRF token, never answers 5xx.

The schema is read from the running app (WSGI, in this process), so a new endpoint is fuzzed without
anyone adding it here. Requests go through the app in the test's own transaction; calls the app makes
to DR are answered by `responses` (404, or 503 for the 'DR is down' paths), never by a network.
"""

import json
import re

import pytest
import responses
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from commerce.services import order_fetch
from config.wsgi import application
from tests.conftest import fixture
from tests.security.conftest import DR_TEST_URL, person, token_for


def load_schema():
    """The schema /api/schema/ serves (to signed-in users only), made by the same generator."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    schema = schemathesis.openapi.from_dict(document)
    schema.app, schema.location = application, "/api/schema/"
    return schema


SCHEMA = load_schema()
OPERATIONS = {operation.label: operation for operation in (result.ok() for result in SCHEMA.get_all_operations())}
EXAMPLES_PER_MODE = 25
DR_ORDER = fixture("order.json")
#: Rows that exist: the `objects` fixture's SKU and DR's documented order (also the OpenAPI examples' id).
KNOWN = {"sku_id": "SEC-1", "dr_order_id": DR_ORDER["id"]}

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_this_transaction():
    """Like Django's test client: a request's end must not close the connection holding the test's
    transaction (the WSGI handler would, through close_old_connections)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(db):
    return token_for(person("fuzzer", superuser=True))


@pytest.fixture
def dr(settings):
    """DR knows its documented order and nothing else; never a network."""
    settings.DR_API_BASE_URL = DR_TEST_URL
    settings.DR_CLIENT_MAX_RETRIES = 0
    settings.DR_RATE_LIMIT_PER_SECOND = 10_000
    not_found = {"type": "not_found", "errors": [{"code": "not_found", "message": "Not found."}]}

    def answer(request):
        if request.method == "GET" and request.url == f"{DR_TEST_URL}/orders/{DR_ORDER['id']}":
            return 200, {}, json.dumps(DR_ORDER)
        return 404, {}, json.dumps(not_found)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        for method in (responses.GET, responses.POST, responses.PUT, responses.DELETE):
            mocked.add_callback(method, re.compile(re.escape(DR_TEST_URL) + r"/.*"), callback=answer)
        yield mocked


@pytest.fixture
def mirrored_order(dr, objects):
    return order_fetch(dr_order_id=DR_ORDER["id"])


def with_known_ids(case):
    """Half the cases name rows that exist, so the handlers behind the 404s are fuzzed too."""
    if case.path_parameters:
        case.path_parameters = {name: KNOWN.get(name, value) for name, value in case.path_parameters.items()}
    return case


def cases(operation, mode: GenerationMode):
    strategy = operation.as_strategy(generation_mode=mode)
    documented = SCHEMA.get_strategies_from_examples(operation) if mode == GenerationMode.POSITIVE else []
    return st.one_of(strategy, strategy.map(with_known_ids), *documented)


def test_the_schema_has_the_documented_operations():
    assert {
        "GET /api/skus/",
        "POST /api/skus/",
        "GET /api/orders/",
        "POST /api/orders/{dr_order_id}/cancellations/",
        "POST /api/orders/{dr_order_id}/shipments/",
    } <= set(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_operation_answers_a_server_error(in_this_transaction, mirrored_order, token, label, mode):
    operation = OPERATIONS[label]
    seen = []

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases(operation, mode))
    def fuzz(case):
        response = case.call(headers={"Authorization": f"Token {token}", "Accept": "application/json"})
        seen.append(response.status_code)
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except Exception as exc:
            request = case.as_curl_command()
            raise AssertionError(f"{response.status_code} from {request}\n{response.text[:500]}") from exc

    try:
        fuzz()
    except Unsatisfiable:
        # Only a path parameter that takes any string: nothing about the request can be made invalid.
        assert mode == GenerationMode.NEGATIVE and not seen
        pytest.skip(f"{label} has nothing schemathesis can make invalid")
    assert seen, "no request was sent"
    # Authentication worked: the token is a superuser's, so nothing is refused for lack of rights.
    assert 401 not in seen and 403 not in seen, seen

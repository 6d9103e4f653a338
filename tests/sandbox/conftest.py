"""The sandbox over real HTTP: a live server, a plain requests session and a webhook receiver."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.conf import settings

from sandbox.services.orders import Line, order_place


def assert_keys_like(actual, expected, path="$"):
    """Every key of the documented example exists in the sandbox's payload, recursively."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        missing = sorted(set(expected) - set(actual))
        assert not missing, f"{path}: missing keys {missing}"
        for key, value in expected.items():
            if actual[key] is not None and value is not None:
                assert_keys_like(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list) and expected and isinstance(expected[0], dict):
        assert isinstance(actual, list) and actual, f"{path}: expected a non-empty list, got {actual!r}"
        failures = []
        for index, element in enumerate(actual):
            try:
                assert_keys_like(element, expected[0], f"{path}[{index}]")
                return
            except AssertionError as exc:
                failures.append(str(exc))
        raise AssertionError("; ".join(failures))


class Api:
    """A plain `requests` session aimed at the sandbox, bearer key set; returns responses."""

    def __init__(self, base_url: str, key: str):
        self.base = base_url.rstrip("/") + "/sandbox/api"
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {key}", "Accept": "application/json"})

    def call(self, method: str, path: str, body=None, **params):
        response = self.session.request(method, self.base + path, json=body, params=params or None, timeout=10)
        # A kept-alive connection to the live server waits ~40 ms per call on delayed ACKs; a fresh
        # connection per call keeps the suite fast.
        self.session.close()
        return response

    def get(self, path, **params):
        return self.call("GET", path, **params)

    def post(self, path, body=None):
        return self.call("POST", path, body)

    def put(self, path, body=None):
        return self.call("PUT", path, body)

    def patch(self, path, body=None):
        return self.call("PATCH", path, body)

    def delete(self, path):
        return self.call("DELETE", path)


@pytest.fixture
def api(live_server, transactional_db):
    return Api(live_server.url, settings.DR_SECRET_KEY)


@pytest.fixture
def control(live_server, transactional_db):
    def post(**values):
        response = requests.post(
            f"{live_server.url}/sandbox/control/",
            json=values,
            headers={"Authorization": f"Bearer {settings.DR_SECRET_KEY}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()

    return post


class Receiver:
    """A tiny webhook endpoint outside Django: records every delivery, answers `status`."""

    def __init__(self):
        self.received: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append({"body": body, "headers": dict(self.headers)})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self) -> list[dict]:
        return [json.loads(item["body"]) for item in self.received]

    def types(self) -> list[str]:
        return [event["type"] for event in self.events()]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    hook = Receiver()
    settings.SANDBOX_DEFAULT_WEBHOOK_URL = hook.url
    yield hook
    hook.close()


def sku_body(**overrides) -> dict:
    body = {
        "name": "Widget",
        "description": "A physical widget",
        "taxCode": "4512.1",
        "eccn": "EAR99",
        "countryOfOrigin": "US",
        "hsCode": "8471.30.0100",
        "partNumber": "PN-1",
        "manufacturerId": "MFR-1",
        "weight": 12,
        "weightUnit": "oz",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


@pytest.fixture
def skus(api):
    """One distributed SKU (with its inventory item, as the client creates it) and one orchestrated."""
    assert api.put("/skus/dist-1", sku_body(name="Distributed widget", partNumber="PN-D")).status_code == 201
    item = {"id": "dist-1", "partNumber": "PN-D", "manufacturerId": "MFR-1", "countryOfOrigin": "US"}
    assert api.post("/inventory-items", item).status_code == 201
    orchestrated = sku_body(name="Managed widget", partNumber="PN-M", managedFulfillment="DRGlobalFulfillment")
    assert api.put("/skus/orch-1", orchestrated).status_code == 201
    return {"distributed": "dist-1", "orchestrated": "orch-1"}


@pytest.fixture
def place(skus):
    def place_order(*lines, state="accepted", **kwargs):
        return order_place(lines=[Line(sku_id, quantity) for sku_id, quantity in lines], state=state, **kwargs)

    return place_order

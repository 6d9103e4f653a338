"""DR's contract as JSON Schema: the committed extract of DR's OpenAPI file, plus the few places where
DR's own pages document something the spec does not (each cited, each checked by a test).

- Requests are checked strictly: required fields, types, enums, and no field the schema does not
  name (DR answers an unknown field with ``400 unknown_parameter``); readOnly fields may not be sent.
- Answers (the sandbox's, and the fixtures) are checked the same way with writeOnly fields left out:
  an emulator that invents a field the client then reads would drift from DR unnoticed.

OpenAPI 3.0 is not JSON Schema: ``nullable: true`` becomes ``type: [T, "null"]`` (and ``null`` joins
an ``enum``); without it, ``null`` is refused like any other wrong type.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jsonschema import Draft4Validator

EXTRACT = Path(__file__).resolve().parent / "dr_openapi_extract.json"


@functools.cache
def extract() -> dict:
    return json.loads(EXTRACT.read_text())


# --- where DR's pages and its spec disagree ---------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """A page of DR's documentation (a path in DigitalRiver/GitBook, branch Digital-River-API) that
    documents what the spec does not allow. ``patch`` widens the spec's schemas to admit both."""

    name: str
    page: str
    spec_says: str
    page_says: str
    patch: Callable[[dict], None]


def _add(schema: dict, **properties) -> None:
    schema.setdefault("properties", {}).update(properties)


def _nullable(schema: dict, *names: str) -> None:
    for name in names:
        schema["properties"][name]["nullable"] = True


def _string_or_number(schema: dict, name: str) -> None:
    prop = schema["properties"][name]
    prop.pop("format", None)
    prop["type"] = ["string", "number"]


def _item_breadcrumb(schemas: dict) -> None:
    for name in ("SkuUpsertRequest", "SkuRequest", "UpdateSkuRequest", "Sku"):
        _add(schemas[name], itemBreadcrumb={"type": "string"})


def _unset_managed_fulfillment(schemas: dict) -> None:
    _nullable(schemas["UpdateSkuRequest"], "managedFulfillment")


def _sku_group_supplies(schemas: dict) -> None:
    for name in ("SkuUpsertRequest", "SkuRequest"):
        schema = schemas[name]
        supplied = ["countryOfOrigin", "eccn", "taxCode"]
        schema["required"] = [field for field in schema["required"] if field not in supplied]
        schema["anyOf"] = [{"required": supplied}, {"required": ["skuGroupId"]}]


def _expanded_product_details(schemas: dict) -> None:
    _add(schemas["ProductDetails"], physical={"type": "boolean"}, metadata={"$ref": "#/components/schemas/Metadata"})


def _order_shipping_choice_id(schemas: dict) -> None:
    _add(schemas["ShippingChoice"], id={"type": "string"})


def _capture_fulfillment_id(schemas: dict) -> None:
    _add(schemas["Capture"], fulfillmentId={"type": "string"})


def _fulfillment_order_ids(schemas: dict) -> None:
    _string_or_number(schemas["GlobalFulfillmentOrder"], "id")
    _string_or_number(schemas["LineItem"], "id")


def _backordered_items(schemas: dict) -> None:
    _add(
        schemas["LineItem"],
        ordered={"type": "integer"},
        totalBackordered={"type": "integer"},
        availableTime={"type": "string", "format": "date-time", "nullable": True},
    )


def _event_envelope(schemas: dict) -> None:
    event = schemas["Event"]
    _add(event, digitalriverVersion={"type": "string"}, webhookIds={"type": "array", "items": {"type": "string"}})
    event["required"] = [name for name in event["required"] if name in ("data", "id", "type")]


PAGE_READINGS: tuple[Reading, ...] = (
    Reading(
        name="SKU itemBreadcrumb",
        page="product-management/creating-and-updating-skus.md#item-breadcrumb",
        spec_says="SkuUpsertRequest, SkuRequest, UpdateSkuRequest and Sku name no itemBreadcrumb",
        page_says="a SKU's itemBreadcrumb ('A > B', several joined by ';') feeds item classification",
        patch=_item_breadcrumb,
    ),
    Reading(
        name="a SKU group supplies the compliance fields",
        page="product-management/creating-and-updating-skus.md#country-of-origin",
        spec_says="SkuUpsertRequest and SkuRequest always require countryOfOrigin, eccn and taxCode",
        page_says="each is required only if the SKU has no skuGroupId (the group supplies them)",
        patch=_sku_group_supplies,
    ),
    Reading(
        name="managedFulfillment null in an update SKU request",
        page="product-management/creating-and-updating-skus.md#creating-and-updating-sku-inventory-item-pairs",
        spec_says="UpdateSkuRequest.managedFulfillment is a string from ['DRGlobalFulfillment'], not nullable",
        page_says="to remove DR as fulfillment coordinator, set managedFulfillment to null in an update SKU request",
        patch=_unset_managed_fulfillment,
    ),
    Reading(
        name="fulfillment order ids are strings",
        page="integration-options/checkouts/handling-digital-river-coordinated-fulfillments/global-fulfillments.md",
        spec_says="GlobalFulfillmentOrder.id and LineItem.id are numbers",
        page_says=(
            "events show fulfillmentOrderId and fulfillmentOrderItemId as strings, and a cancellation "
            "request (GlobalFulfillmentCancellationRequest) takes them as strings"
        ),
        patch=_fulfillment_order_ids,
    ),
    Reading(
        name="backordered line items",
        page=(
            "integration-options/checkouts/handling-digital-river-coordinated-fulfillments/"
            "global-fulfillments.md#backordered-events"
        ),
        spec_says="LineItem names no ordered, totalBackordered or availableTime",
        page_says="each backordered item carries ordered, backordered, totalBackordered and availableTime",
        patch=_backordered_items,
    ),
    Reading(
        name="an order's shippingChoice.id",
        page="order-management/events-and-webhooks-1/events-1/event-types.md",
        spec_says="the order's ShippingChoice names amount, taxAmount, description, serviceLevel, shippingTerms",
        page_says="the example orders' shippingChoice also carries an id",
        patch=_order_shipping_choice_id,
    ),
    Reading(
        name="expanded productDetails",
        page="order-management/events-and-webhooks-1/expanding-events.md",
        spec_says="ProductDetails names no physical and no metadata",
        page_says="expanded order events, and GET /orders/{id}?expand=true, add productDetails.physical and .metadata",
        patch=_expanded_product_details,
    ),
    Reading(
        name="a capture's fulfillmentId",
        page="order-management/informing-digital-river-of-a-fulfillment.md#handling-charge-capture-complete-and-failed-events",
        spec_says="Capture names no fulfillmentId",
        page_says="each capture carries the fulfillmentId of the fulfillment that triggered it",
        patch=_capture_fulfillment_id,
    ),
    Reading(
        name="event envelope",
        page="order-management/events-and-webhooks-1/events-1/event-types.md",
        spec_says=(
            "Event requires digitalriverVersion and pendingWebhooks but its properties name only "
            "digitalRiverVersion (and no webhook list)"
        ),
        page_says="every example envelope carries digitalriverVersion and webhookIds, none pendingWebhooks",
        patch=_event_envelope,
    ),
)


# --- OpenAPI 3.0 to JSON Schema ------------------------------------------------------------------


def _convert(schema, *, drop: str, strict: bool):
    """One schema for Draft 4: nullable folded into type/enum, ``drop`` (readOnly or writeOnly)
    properties removed, and, when ``strict``, objects with named properties closed to others."""
    if isinstance(schema, list):
        return [_convert(item, drop=drop, strict=strict) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return {"$ref": "#/definitions/" + schema["$ref"].rsplit("/", 1)[1]}
    out = {}
    for key, value in schema.items():
        if key in ("nullable", "readOnly", "writeOnly", "format"):
            continue
        if key == "properties":
            out[key] = {
                name: _convert(sub, drop=drop, strict=strict)
                for name, sub in value.items()
                if not (isinstance(sub, dict) and sub.get(drop))
            }
        elif key == "required":
            out[key] = [name for name in value if not (schema.get("properties", {}).get(name) or {}).get(drop)]
            if not out[key]:
                del out[key]
        elif key in ("items", "additionalProperties", "allOf", "oneOf", "anyOf", "not"):
            out[key] = _convert(value, drop=drop, strict=strict) if isinstance(value, dict | list) else value
        else:
            out[key] = value
    if schema.get("nullable"):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if strict and out.get("properties") and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _definitions(schemas: dict, *, drop: str, strict: bool) -> dict:
    return {name: _convert(schema, drop=drop, strict=strict) for name, schema in schemas.items()}


# --- operations ----------------------------------------------------------------------------------


def _route(template: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "/?$")


#: The object inside an event, by the event type's prefix (longest first). The spec does not tie
#: them together; DR's pages do (order-management/events-and-webhooks-1/events-1/README.md and
#: global-fulfillments.md): fulfillment_order.shipped carries a Shipment, fulfillment.created a
#: Fulfillment with orderDetails (the spec's FulfillmentOrder schema is exactly that), and some
#: order.charge.* events carry the order rather than the charge.
EVENT_OBJECTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fulfillment_order.shipped", ("Shipment",)),
    ("fulfillment_order.", ("GlobalFulfillmentOrder",)),
    ("fulfillment_cancellation.", ("GlobalFulfillmentCancellationResponse",)),
    ("fulfillment_return.", ("GlobalFulfillmentReturnResponse",)),
    ("return.", ("ReturnsResponse",)),
    ("fulfillment.created", ("FulfillmentOrder",)),
    ("order.charge.failed", ("Order", "Charge")),
    ("order.charge.refund.failed", ("Order", "Charge")),
    ("order.charge.reauth.failed", ("Order",)),
    ("order.charge.", ("Charge",)),
    ("order.invoice.", ()),
    ("order.credit_memo.", ()),
    ("order.", ("Order",)),
    ("sku.", ("Sku",)),
)


@dataclass
class Contract:
    """Validators built once from the extract (with or without the pages' readings)."""

    with_pages: bool = True

    def __post_init__(self):
        source = extract()
        schemas = copy.deepcopy(source["schemas"])
        if self.with_pages:
            for reading in PAGE_READINGS:
                reading.patch(schemas)
        self.schemas = schemas
        self.operations = source["operations"]
        self._requests = _definitions(schemas, drop="readOnly", strict=True)
        self._answers = _definitions(schemas, drop="writeOnly", strict=True)
        self._routes = [
            (method, template, _route(template))
            for method, _, template in (key.partition(" ") for key in self.operations)
        ]
        self._cache: dict = {}

    # The operation a call is ----------------------------------------------------------------------
    def operation(self, method: str, path: str) -> str | None:
        path = "/" + path.split("?", 1)[0].lstrip("/")
        method = method.upper()
        # A literal path (/skus) beats a template (/skus/{id}) of the same method.
        matches = [template for m, template, pattern in self._routes if m == method and pattern.match(path)]
        matches.sort(key=lambda template: template.count("{"))
        return f"{method} {matches[0]}" if matches else None

    # Validation -----------------------------------------------------------------------------------
    def _validator(self, key: tuple, schema: dict | None, *, answer: bool) -> Draft4Validator | None:
        if schema is None:
            return None
        if key not in self._cache:
            definitions = self._answers if answer else self._requests
            converted = _convert(schema, drop="writeOnly" if answer else "readOnly", strict=True)
            self._cache[key] = Draft4Validator({"definitions": definitions, "allOf": [converted]})
        return self._cache[key]

    def schema_errors(self, name: str, instance, *, answer: bool = True) -> list[str]:
        schema = {"$ref": f"#/components/schemas/{name}"}
        return _messages(self._validator(("schema", name, answer), schema, answer=answer), instance)

    def request_errors(self, method: str, path: str, body) -> list[str]:
        operation = self.operation(method, path)
        if operation is None:
            return [f"{method} {path}: no such operation in DR's spec extract"]
        schema = self.operations[operation].get("request")
        if schema is None:
            return [] if body is None else [f"{operation} takes no body, got one"]
        if body is None:
            return [f"{operation} needs a body"]
        return [f"{operation} request: {message}" for message in self._validate(("request", operation), schema, body)]

    def answer_errors(self, method: str, path: str, status: int, body) -> list[str]:
        operation = self.operation(method, path)
        if operation is None:
            return []
        responses = self.operations[operation]["responses"]
        if str(status) not in responses:
            # A success DR does not list is a drift; DR's lists of error statuses are boilerplate (the
            # same eleven on every operation), so an unlisted error is checked against the error shape.
            if status < 400:
                return [f"{operation} answered {status}, a success DR's spec does not list for it"]
            return [f"{operation} {status}: {message}" for message in self.schema_errors("Errors", body)]
        schema = responses[str(status)]
        if schema is None:
            return [] if body in (None, "", b"") else [f"{operation} {status}: DR answers no body, got one"]
        errors = [
            f"{operation} {status}: {message}"
            for message in self._validate(("answer", operation, str(status)), schema, body, answer=True)
        ]
        if operation.startswith("GET /events") and status == 200:
            events = body.get("data", []) if operation == "GET /events" else [body]
            for event in events if isinstance(events, list) else []:
                errors.extend(f"{operation} {status}: {message}" for message in self.event_object_errors(event))
        return errors

    def event_errors(self, event) -> list[str]:
        return self.schema_errors("Event", event) + self.event_object_errors(event)

    def event_object_errors(self, event) -> list[str]:
        if not isinstance(event, dict):
            return []
        event_type = str(event.get("type") or "")
        obj = (event.get("data") or {}).get("object")
        names = next((names for prefix, names in EVENT_OBJECTS if event_type.startswith(prefix)), ())
        failures = [self.schema_errors(name, obj) for name in names]
        if not failures or any(not failure for failure in failures):
            return []
        return [
            f"{event_type} data.object as {name}: {message}"
            for name, found in zip(names, failures, strict=True)
            for message in found
        ]

    def _validate(self, key: tuple, schema: dict, instance, *, answer: bool = False) -> list[str]:
        return _messages(self._validator(key, schema, answer=answer), instance)


def _messages(validator: Draft4Validator | None, instance) -> list[str]:
    if validator is None:
        return []
    found = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "(body)"
        found.append(f"{where.lstrip('.')}: {error.message}")
    return found


@functools.cache
def contract() -> Contract:
    return Contract(with_pages=True)


@functools.cache
def spec_only() -> Contract:
    return Contract(with_pages=False)

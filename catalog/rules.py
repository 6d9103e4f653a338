"""DR's rules for a SKU and its inventory item (DR's page product-management/creating-and-updating-skus.md
and product-management/managing-inventory.md in the DigitalRiver/GitBook repository, branch
Digital-River-API), each failure naming its field.

The same rules serve the admin form, the REST API and the CSV import, so a merchandiser hears about
a bad value before anything is sent, in the words DR would use.
"""

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django_countries import countries

SKU_ID_PATTERN = re.compile(r"^[0-9A-Za-z._-]{1,100}$")
HS_CODE_PATTERN = re.compile(r"^\d{4}\.\d{2}(\.\d{1,4})?$")
WEIGHT_UNITS = ("oz", "lb", "g", "kg")
FULFILLMENT_MODELS = ("distributed", "orchestrated", "third_party", "digital")
DESCRIPTION_MAX = 1000

# DR decides whether a tax code is for physical or digital goods (its supported tax codes come as a
# PDF table) and says so in the SKU's read-only `physical` (product-management/skus.md, "How
# products are classified as physical or digital"). We do not guess from the code: its own managed,
# physical example uses 4323.310_A. DR's answer is shown on the SKU, and its refusal if it refuses.

# Attributes a SKU and its same-id inventory item must agree on, as (our field, DR's key).
SHARED_ATTRIBUTES = (
    ("manufacturer_id", "manufacturerId"),
    ("part_number", "partNumber"),
    ("country_of_origin", "countryOfOrigin"),
    ("eccn", "eccn"),
    ("hs_code", "hsCode"),
    ("allow_oversell", "allowOversell"),
)


def sku_id_error(value: str) -> str | None:
    if not SKU_ID_PATTERN.match(value or ""):
        return f"'{value}' is not a valid SKU id: use 1 to 100 of 0-9 A-Z a-z . _ - (no spaces)."
    return None


def hs_code_error(value: str) -> str | None:
    if value and not HS_CODE_PATTERN.match(value):
        return f"'{value}' is not a valid HS code: write ####.##.#### (the first six digits are required)."
    return None


def country_error(value: str) -> str | None:
    # DR takes ISO 3166-1 alpha-2 codes exactly as written: upper case, no names.
    if value and (value != value.upper() or value not in countries):
        return f"'{value}' is not an ISO 3166-1 alpha-2 country code (e.g. US, DE)."
    return None


def web_address_error(value: str) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        return f"'{value}' is not a web address: it must start with http:// or https://."
    return None


def breadcrumb_error(value: str) -> str | None:
    if value and any(not part.strip() for trail in value.split(";") for part in trail.split(">")):
        return f"'{value}' is not a breadcrumb: write 'Category > Subcategory', several joined by ';'."
    return None


def weight_error(value: Any) -> str | None:
    if value in (None, ""):
        return None
    try:
        weight = Decimal(str(value))
    except InvalidOperation:
        return f"'{value}' is not a number."
    if not weight.is_finite() or weight < 0:
        return "The weight must be a number of zero or more."
    return None


def sku_errors(values: dict) -> dict[str, list[str]]:
    """Every rule the values break, by our field name. ``values`` uses the Sku model's field names."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    model = values.get("fulfillment_model") or "distributed"
    for field, check in (
        ("sku_id", sku_id_error),
        ("hs_code", hs_code_error),
        ("country_of_origin", country_error),
        ("item_breadcrumb", breadcrumb_error),
        ("url", web_address_error),
        ("image", web_address_error),
    ):
        message = check(str(values.get(field) or ""))
        if message:
            add(field, message)
    if not (values.get("name") or "").strip():
        add("name", "A name is required.")
    if len(values.get("description") or "") > DESCRIPTION_MAX:
        add("description", f"The description is longer than DR's {DESCRIPTION_MAX} characters.")
    if not values.get("sku_group_id"):
        for field, label in (
            ("tax_code", "A tax code"),
            ("eccn", "An ECCN"),
            ("country_of_origin", "A country of origin"),
        ):
            if not values.get(field):
                add(field, f"{label} is required unless a SKU group supplies it.")
    weight_message = weight_error(values.get("weight"))
    if weight_message:
        add("weight", weight_message)
    if values.get("weight_unit") and values["weight_unit"] not in WEIGHT_UNITS:
        add("weight_unit", f"'{values['weight_unit']}' is not a weight unit: use oz, lb, g or kg.")

    physical = model != "digital"
    if not physical:
        for field, label in (("part_number", "part number"), ("manufacturer_id", "manufacturer id")):
            if values.get(field):
                add(field, f"A {label} applies to physical products only: clear it for a digital SKU.")
    if model not in FULFILLMENT_MODELS:
        add("fulfillment_model", f"'{model}' is not a fulfillment model: use {', '.join(FULFILLMENT_MODELS)}.")
    if model in ("distributed", "orchestrated") and not (values.get("part_number") or "").strip():
        reason = "its inventory item" if model == "distributed" else "DR-managed fulfillment"
        add("part_number", f"A part number is required for {reason}.")
    return errors


def _with_article(model: str) -> str:
    return {"third_party": "a third-party", "orchestrated": "an orchestrated"}.get(model, f"a {model}")

"""DR's rules for a SKU (product-management/creating-and-updating-skus.md), each failure naming its
field in words a merchandiser reads.

The same values are also sent to the sandbox, which validates like DR: where our rules refuse,
DR refuses too, so nothing we accept comes back as a 400 for a reason we could have told first.
"""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from catalog.models import Sku
from catalog.rules import sku_errors
from sandbox.errors import ApiError
from sandbox.services.catalog import tax_code_is_physical, validate_sku

VALID = {
    "sku_id": "WIDGET-1",
    "name": "Widget",
    "description": "A physical widget",
    "fulfillment_model": "distributed",
    "tax_code": "4512.1",
    "eccn": "EAR99",
    "hs_code": "8471.30.0100",
    "country_of_origin": "US",
    "part_number": "PN-1",
    "manufacturer_id": "MFR-1",
    "weight": Decimal("12"),
    "weight_unit": "oz",
    "image": "https://example.com/widget.png",
    "url": "https://example.com/widget",
    "item_breadcrumb": "Tools > Widgets",
    "sku_group_id": "",
    "allow_oversell": False,
}


def errors_for(**overrides) -> dict[str, list[str]]:
    return sku_errors({**VALID, **overrides})


def test_valid_values_have_no_errors_for_every_model():
    assert errors_for() == {}
    assert errors_for(fulfillment_model="orchestrated") == {}
    assert errors_for(fulfillment_model="third_party", part_number="", manufacturer_id="") == {}
    assert errors_for(fulfillment_model="digital", tax_code="4512.2", part_number="", manufacturer_id="") == {}


@pytest.mark.parametrize("sku_id", ["bad id", "a/b", "é", "", "x" * 101, "semi;colon"])
def test_sku_id_outside_drs_charset_is_refused(sku_id):
    errors = errors_for(sku_id=sku_id)
    assert list(errors) == ["sku_id"]
    assert errors["sku_id"] == [f"'{sku_id}' is not a valid SKU id: use 1 to 100 of 0-9 A-Z a-z . _ - (no spaces)."]


@pytest.mark.parametrize("sku_id", ["A-1", "a.b_c-9", "x" * 100])
def test_sku_id_in_drs_charset_is_accepted(sku_id):
    assert errors_for(sku_id=sku_id) == {}


@pytest.mark.parametrize("hs_code", ["84713", "8471.3", "8471-30-0100", "8471.30.01000", "abcd.ef"])
def test_hs_code_format(hs_code):
    assert errors_for(hs_code=hs_code) == {
        "hs_code": [f"'{hs_code}' is not a valid HS code: write ####.##.#### (the first six digits are required)."]
    }


@pytest.mark.parametrize("hs_code", ["8471.30", "8471.30.01", "8471.30.0100", ""])
def test_hs_code_needs_only_the_first_six_digits(hs_code):
    assert errors_for(hs_code=hs_code) == {}


@pytest.mark.parametrize("country", ["XX", "USA", "us", "United States"])
def test_country_of_origin_is_iso_alpha_2(country):
    assert errors_for(country_of_origin=country) == {
        "country_of_origin": [f"'{country}' is not an ISO 3166-1 alpha-2 country code (e.g. US, DE)."]
    }


@pytest.mark.parametrize("unit", ["stone", "OZ", "kgs"])
def test_weight_unit_is_one_of_drs(unit):
    assert errors_for(weight_unit=unit) == {"weight_unit": [f"'{unit}' is not a weight unit: use oz, lb, g or kg."]}


@pytest.mark.parametrize(("weight", "message"), [(Decimal("-1"), "The weight must be a number of zero or more.")])
def test_weight_is_not_negative(weight, message):
    assert errors_for(weight=weight) == {"weight": [message]}


def test_name_is_required():
    assert errors_for(name="  ") == {"name": ["A name is required."]}


def test_description_is_at_most_1000_characters():
    assert errors_for(description="x" * 1000) == {}
    assert errors_for(description="x" * 1001) == {
        "description": ["The description is longer than DR's 1000 characters."]
    }


def test_breadcrumb_shape():
    assert errors_for(item_breadcrumb="Tools > Widgets; Gifts > Office") == {}
    assert errors_for(item_breadcrumb="Tools > ") == {
        "item_breadcrumb": ["'Tools > ' is not a breadcrumb: write 'Category > Subcategory', several joined by ';'."]
    }


@pytest.mark.parametrize("field", ["url", "image"])
def test_web_addresses_are_http(field):
    assert errors_for(**{field: "ftp://example.com/x"}) == {
        field: ["'ftp://example.com/x' is not a web address: it must start with http:// or https://."]
    }


def test_tax_code_eccn_and_country_are_required_without_a_sku_group():
    assert errors_for(tax_code="", eccn="", country_of_origin="") == {
        "tax_code": ["A tax code is required unless a SKU group supplies it."],
        "eccn": ["An ECCN is required unless a SKU group supplies it."],
        "country_of_origin": ["A country of origin is required unless a SKU group supplies it."],
    }


def test_a_sku_group_supplies_tax_code_eccn_and_country():
    assert errors_for(tax_code="", eccn="", country_of_origin="", sku_group_id="physical-goods") == {}


def test_orchestrated_needs_a_part_number_and_dr_decides_whether_the_tax_code_is_physical():
    errors = errors_for(fulfillment_model="orchestrated", tax_code="4512.2", part_number="")
    assert errors == {"part_number": ["A part number is required for DR-managed fulfillment."]}


def test_distributed_needs_a_part_number_for_its_inventory_item():
    assert errors_for(part_number="") == {"part_number": ["A part number is required for its inventory item."]}


@pytest.mark.parametrize("model", ["distributed", "orchestrated", "third_party"])
def test_drs_own_managed_physical_example_tax_code_is_accepted(model):
    # 4323.310_A is DR's physical example (product-management/creating-and-updating-skus.md): a
    # rule guessing "4323.* is digital" refused it. We leave physical vs digital to DR.
    assert errors_for(fulfillment_model=model, tax_code="4323.310_A") == {}
    validate_sku(_dr_body({**VALID, "fulfillment_model": model, "tax_code": "4323.310_A"}))


def test_digital_refuses_part_number_and_manufacturer_id():
    assert errors_for(fulfillment_model="digital") == {
        "part_number": ["A part number applies to physical products only: clear it for a digital SKU."],
        "manufacturer_id": ["A manufacturer id applies to physical products only: clear it for a digital SKU."],
    }


def test_unknown_fulfillment_model_is_refused():
    assert errors_for(fulfillment_model="dropship") == {
        "fulfillment_model": [
            "'dropship' is not a fulfillment model: use distributed, orchestrated, third_party, digital."
        ]
    }


def test_every_error_is_reported_at_once():
    errors = errors_for(sku_id="bad id", hs_code="1", country_of_origin="XX", weight_unit="st", name="")
    assert set(errors) == {"sku_id", "hs_code", "country_of_origin", "weight_unit", "name"}


@pytest.mark.parametrize(
    ("tax_code", "physical"), [("4512.1", True), ("4323.310_A", True), ("4512.2", False), ("4512.100", False)]
)
def test_the_sandbox_classifies_tax_codes_as_dr_documents(tax_code, physical):
    assert tax_code_is_physical(tax_code) is physical


def test_where_dr_decides_we_accept_and_dr_refuses_with_its_own_words():
    # A digital tax code on a SKU that ships goods: only DR knows the code is digital, and its
    # refusal (partNumber is for physical goods only) is what the merchandiser is shown.
    values = {**VALID, "tax_code": "4512.2"}
    assert sku_errors(values) == {}
    with pytest.raises(ApiError) as caught:
        validate_sku(_dr_body(values))
    assert "partNumber" in {parameter for _, parameter, _ in caught.value.errors}


@pytest.mark.parametrize(
    ("model", "physical", "warning"),
    [
        ("distributed", True, ""),
        ("digital", False, ""),
        ("distributed", False, "DR classifies tax code 4512.1 as digital, but this SKU is set up to ship goods."),
        ("digital", True, "DR classifies tax code 4512.1 as physical goods, but this SKU is set up as digital."),
        ("distributed", None, ""),
    ],
)
def test_drs_classification_is_shown_against_the_fulfillment_model(model, physical, warning):
    sku = Sku(**{**VALID, "fulfillment_model": model}, dr_sku=None if physical is None else {"physical": physical})
    assert sku.physical_at_dr is physical
    assert sku.classification_mismatch == warning


@pytest.mark.django_db
def test_model_clean_raises_the_same_messages_by_field():
    sku = Sku(**{**VALID, "hs_code": "84713", "country_of_origin": "XX"})
    with pytest.raises(ValidationError) as caught:
        sku.full_clean()
    assert "'84713' is not a valid HS code" in caught.value.message_dict["hs_code"][0]
    assert any("ISO 3166-1 alpha-2" in message for message in caught.value.message_dict["country_of_origin"])


# Each case: values our rules refuse, and the DR field the sandbox (validating like DR) refuses.
AGREEMENT_CASES = [
    ({"hs_code": "84713"}, "hsCode"),
    ({"country_of_origin": "XX"}, "countryOfOrigin"),
    ({"weight_unit": "stone"}, "weightUnit"),
    ({"name": ""}, "name"),
    ({"tax_code": ""}, "taxCode"),
    ({"eccn": ""}, "eccn"),
    ({"item_breadcrumb": "A > "}, "itemBreadcrumb"),
    ({"url": "ftp://x"}, "url"),
    ({"fulfillment_model": "orchestrated", "part_number": "", "manufacturer_id": ""}, "partNumber"),
]


@pytest.mark.parametrize(("overrides", "dr_field"), AGREEMENT_CASES)
def test_what_we_refuse_dr_refuses_too(overrides, dr_field):
    values = {**VALID, **overrides}
    assert sku_errors(values)
    body = _dr_body(values)
    with pytest.raises(ApiError) as caught:
        validate_sku(body)
    assert dr_field in {parameter for _, parameter, _ in caught.value.errors}


def test_what_we_accept_dr_accepts():
    for model in ("distributed", "orchestrated", "third_party"):
        validate_sku(_dr_body({**VALID, "fulfillment_model": model}))
    validate_sku(_dr_body({**VALID, "fulfillment_model": "digital", "tax_code": "4512.2"}))


def _dr_body(values: dict) -> dict:
    """The body we would send, built by the real mapping (digital drops part number, like ours)."""
    from catalog.dr_mapping import sku_body

    return sku_body(Sku(**values))


@pytest.mark.django_db
def test_the_sku_page_shows_drs_classification_and_a_contradiction(admin_client):
    sku = Sku.objects.create(**{**VALID, "fulfillment_model": "distributed"}, dr_sku={"physical": False})
    page = admin_client.get(f"/admin/catalog/sku/{sku.pk}/change/").content.decode()
    assert "DR classifies tax code 4512.1 as digital, but this SKU is set up to ship goods." in page

"""Refresh tests/contract/dr_openapi_extract.json from DR's own OpenAPI file: structure only.

DR publishes its documentation as the public repository DigitalRiver/GitBook; the branch
`Digital-River-API` holds the OpenAPI file `.gitbook/assets/2021-12-13.json`. This script keeps, for
every operation the app calls or whose answer it reads, the request schema and the response schemas,
and the schemas they reference, with only the keywords that describe structure (types, formats,
required, enums, properties, items, additionalProperties, nullable, readOnly/writeOnly, bounds and
$refs). DR's prose (descriptions, examples, titles) is left behind. It also keeps the names of the
error codes listed in the spec's error-code table (names only).

    python tests/contract/extract.py                          # from the local mirror (git)
    python tests/contract/extract.py --spec path/to/2021-12-13.json
    python tests/contract/extract.py --check                  # exit 1 if the committed extract is stale
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "dr_openapi_extract.json"
REPOSITORY = "DigitalRiver/GitBook"
BRANCH = "Digital-River-API"
SPEC_PATH = ".gitbook/assets/2021-12-13.json"
DEFAULT_GIT_DIR = "/work/.mirror/DigitalRiver+GitBook/repo"

#: (method, path) of every DR call in digitalriver/ catalog/ commerce/ fulfillment/, and the reads
#: whose answers the app uses; POST /skus is the create the sandbox serves beside the upsert.
OPERATIONS = (
    ("PUT", "/skus/{id}"),
    ("POST", "/skus"),
    ("POST", "/skus/{id}"),
    ("GET", "/skus/{id}"),
    ("DELETE", "/skus/{id}"),
    ("POST", "/inventory-items"),
    ("POST", "/inventory-items/{id}"),
    ("GET", "/inventory-items/{id}"),
    ("DELETE", "/inventory-items/{id}"),
    ("GET", "/inventory-levels"),
    ("GET", "/orders"),
    ("GET", "/orders/{id}"),
    ("POST", "/fulfillment-orders"),
    ("GET", "/fulfillment-orders"),
    ("GET", "/fulfillment-orders/{id}"),
    ("POST", "/fulfillment-cancellations"),
    ("GET", "/fulfillment-cancellations"),
    ("GET", "/fulfillment-cancellations/{id}"),
    ("POST", "/fulfillments"),
    ("GET", "/fulfillments"),
    ("GET", "/fulfillments/{id}"),
    ("GET", "/shipments/{id}"),
    ("GET", "/charges/{id}"),
    ("GET", "/events"),
    ("GET", "/events/{id}"),
    ("GET", "/files/{id}/content"),
    ("POST", "/file-links"),
)

#: Schemas read outside any operation: the `data.object` of the webhook events the app handles.
EVENT_OBJECT_SCHEMAS = (
    "Order",
    "Charge",
    "Shipment",
    "Fulfillment",
    "FulfillmentOrder",
    "GlobalFulfillmentOrder",
    "GlobalFulfillmentCancellationResponse",
    "Sku",
)

STRUCTURAL = frozenset(
    {
        "type",
        "format",
        "required",
        "enum",
        "items",
        "additionalProperties",
        "nullable",
        "readOnly",
        "writeOnly",
        "allOf",
        "oneOf",
        "anyOf",
        "not",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "pattern",
        "$ref",
    }
)


def structure(schema):
    """The schema with prose dropped; `properties` keeps every property name."""
    if isinstance(schema, list):
        return [structure(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kept = {}
    for key, value in schema.items():
        if key == "properties":
            kept[key] = {name: structure(sub) for name, sub in value.items()}
        elif key in STRUCTURAL:
            kept[key] = structure(value) if isinstance(value, dict | list) else value
    return kept


def _refs(value, found: set[str]) -> None:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for item in value.values():
            _refs(item, found)
    elif isinstance(value, list):
        for item in value:
            _refs(item, found)


def _json_schema_of(content: dict | None):
    if not content:
        return None
    media = content.get("application/json") or next(iter(content.values()), {})
    return media.get("schema")


def error_codes(description: str) -> list[str]:
    """The code names of the spec's "Error codes" table (names only, no prose)."""
    _, _, table = description.partition('name="error-codes"')
    return sorted(set(re.findall(r"<td>\s*([a-z][a-z0-9_\-]+)\s*</td>", table)))


def extract(spec: dict, *, commit: str = "") -> dict:
    operations = {}
    wanted: set[str] = set(EVENT_OBJECT_SCHEMAS)
    for method, path in OPERATIONS:
        operation = spec["paths"][path][method.lower()]
        request = _json_schema_of((operation.get("requestBody") or {}).get("content"))
        responses = {}
        for status, response in sorted(operation["responses"].items()):
            responses[status] = structure(_json_schema_of(response.get("content")))
        entry = {"operationId": operation.get("operationId", ""), "responses": responses}
        if request is not None:
            entry["request"] = structure(request)
        _refs(entry, wanted)
        operations[f"{method} {path}"] = entry
    all_schemas = spec["components"]["schemas"]
    schemas: dict[str, dict] = {}
    queue = sorted(wanted)
    while queue:
        name = queue.pop()
        if name in schemas:
            continue
        schemas[name] = structure(all_schemas[name])
        found: set[str] = set()
        _refs(schemas[name], found)
        queue.extend(sorted(found - set(schemas)))
    info = spec.get("info", {})
    return {
        "source": {
            "repository": REPOSITORY,
            "branch": BRANCH,
            "path": SPEC_PATH,
            "commit": commit,
            "openapi": spec.get("openapi", ""),
            "info.version": info.get("version", ""),
            "x-generate-timestamp": info.get("x-generate-timestamp", ""),
        },
        "note": (
            "Structure only (no descriptions or examples), made by tests/contract/extract.py from DR's "
            "OpenAPI file; refresh it with that script, never by hand."
        ),
        "operations": operations,
        "schemas": dict(sorted(schemas.items())),
        "errorCodes": error_codes(info.get("description", "")),
    }


def load_from_git(git_dir: str, branch: str = BRANCH) -> tuple[dict, str]:
    def git(*args: str) -> str:
        return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True, text=True).stdout

    commit = git("rev-parse", branch).strip()
    return json.loads(git("show", f"{commit}:{SPEC_PATH}")), commit


def render(extracted: dict) -> str:
    return json.dumps(extracted, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", help="DR's OpenAPI file (JSON); default: read it from --git-dir")
    parser.add_argument("--git-dir", default=DEFAULT_GIT_DIR, help="a clone of DigitalRiver/GitBook")
    parser.add_argument("--branch", default=BRANCH)
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = parser.parse_args(argv)
    if args.spec:
        spec, commit = json.loads(Path(args.spec).read_text()), ""
    else:
        spec, commit = load_from_git(args.git_dir, args.branch)
    text = render(extract(spec, commit=commit))
    out = Path(args.out)
    if args.check:
        if out.read_text() != text:
            print(f"{out} is stale: run python tests/contract/extract.py", file=sys.stderr)
            return 1
        print(f"{out} matches {REPOSITORY}@{commit or 'the given file'}")
        return 0
    out.write_text(text)
    print(f"wrote {out}: {len(json.loads(text)['operations'])} operations")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""DR's signature is the webhook endpoint's authentication (the README's webhook section).

The raw body is read here, before any parser touches it, and only once its Content-Length says it is
small enough. A delivery that fails is refused with 400 and ``{"error": reason}``, not 401/403: DR
retries on any non-2xx, and the reason is what an operator at DR's dashboard reads. Nothing else
authenticates the endpoint: no session, so no CSRF check; no token.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException
from rest_framework.request import Request

from .signature import SignatureError, verify

SIGNATURE_HEADER = "DigitalRiver-Signature"


class DeliveryRefused(APIException):
    """A webhook delivery refused, answered as ``{"error": reason}`` (the reason is safe to return)."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, reason: str):
        super().__init__({"error": reason})


class DeliveryTooLarge(DeliveryRefused):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class DigitalRiver:
    """Who a correctly signed delivery comes from: DR itself, not one of our users (no row, no
    permissions), so nothing that checks a person's rights lets it through by mistake."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = id = None
    username = "digitalriver"

    def __str__(self) -> str:
        return "Digital River"

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def has_perms(self, perm_list: Iterable[str], obj: object = None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False


DIGITAL_RIVER = DigitalRiver()


@dataclass(frozen=True)
class SignedDelivery:
    """``request.auth`` of a verified delivery: the raw body, exactly the bytes the signature covers."""

    body: bytes


class DigitalRiverSignatureAuthentication(BaseAuthentication):
    """Verifies the DigitalRiver-Signature header over the raw body against every configured secret."""

    def authenticate(self, request: Request) -> tuple[DigitalRiver, SignedDelivery] | None:
        if request.method != "POST":
            return None  # nothing to verify: the view answers 405
        body = read_raw_body(request._request)
        try:
            verify(
                request._request.headers.get(SIGNATURE_HEADER),
                body,
                secrets=settings.DR_WEBHOOK_SECRETS,
                tolerance_seconds=settings.DR_WEBHOOK_TOLERANCE_SECONDS,
            )
        except SignatureError as exc:
            raise DeliveryRefused(str(exc)) from exc
        return DIGITAL_RIVER, SignedDelivery(body)


def read_raw_body(request: HttpRequest) -> bytes:
    """The body of a Django request, refused before it is read when its Content-Length is too large
    or not a number, and read no further than one byte past the limit whatever the header said."""
    limit = settings.DR_WEBHOOK_MAX_BYTES
    length = (request.META.get("CONTENT_LENGTH") or "0").strip()
    if not (length.isascii() and length.isdigit()):  # "²".isdigit() is true too
        raise DeliveryRefused("bad Content-Length header")
    if len(length) > 12 or int(length) > limit:
        raise DeliveryTooLarge(f"body larger than {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise DeliveryTooLarge(f"body larger than {limit} bytes")
    return body


class DigitalRiverSignatureScheme(OpenApiAuthenticationExtension):
    """The signature as a security scheme of the OpenAPI schema."""

    target_class = DigitalRiverSignatureAuthentication
    name = "DigitalRiverSignature"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": SIGNATURE_HEADER,
            "description": (
                "HMAC-SHA256, keyed with one of DR_WEBHOOK_SECRETS, over `<timestamp>.<raw body>`, in base64 or "
                "hex: `<timestamp>, <signature>` or `t=<timestamp>,v0=<signature>[,v0=…]`. The timestamp must be "
                "within DR_WEBHOOK_TOLERANCE_SECONDS of now. A delivery that does not verify is answered 400."
            ),
        }

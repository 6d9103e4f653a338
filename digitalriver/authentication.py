"""DR's signature is the webhook endpoint's authentication (the README's webhook section).

The raw body is read here, before any parser touches it, and only once its Content-Length says it is
small enough. A delivery that fails is refused with 400 and ``{"error": reason}``, not 401/403: DR
retries on any non-2xx, and the reason is what an operator at DR's dashboard reads. Nothing else
authenticates the endpoint: no session, so no CSRF check; no token.
"""

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from .signature import SignatureError, verify

SIGNATURE_HEADER = "DigitalRiver-Signature"


class DeliveryRefused(Exception):
    """A webhook delivery refused, answered as ``{"error": reason}`` (the reason is safe to return)."""

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class DeliveryTooLarge(DeliveryRefused):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def verified_body(request: HttpRequest) -> bytes:
    """The raw body of a POST once DR's signature over it verifies; DeliveryRefused otherwise."""
    body = read_raw_body(request)
    try:
        verify(
            request.headers.get(SIGNATURE_HEADER),
            body,
            secrets=settings.DR_WEBHOOK_SECRETS,
            tolerance_seconds=settings.DR_WEBHOOK_TOLERANCE_SECONDS,
        )
    except SignatureError as exc:
        raise DeliveryRefused(str(exc)) from exc
    return body


class DigitalRiverSignatureAuthentication(BaseAuthentication):
    """The signature as the endpoint's only authentication, as DRF and the schema see it.

    A POST never reaches DRF: the view verifies it itself (verified_body) and answers it on the
    plain Django request (digitalriver/views.py says why). What DRF does see, the other methods, it
    answers 405 without anyone to authenticate; no session or token is ever looked at.
    """

    def authenticate(self, request: Request) -> None:
        return None


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

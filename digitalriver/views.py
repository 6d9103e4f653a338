from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from .authentication import DeliveryRefused, DigitalRiverSignatureAuthentication, verified_body
from .services.inbox import InvalidEvent, webhook_delivery_store


class WebhookJSONRenderer(JSONRenderer):
    """JSON in the bytes this endpoint has always answered with (Django's JsonResponse: ASCII, ", " and
    ": " separators), whatever the Accept header asks for."""

    compact = False
    ensure_ascii = True


class FirstRenderer(DefaultContentNegotiation):
    """DR does not negotiate: the one renderer answers every request, so an odd Accept header is never a 406."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class SignedOnlySchema(AutoSchema):
    """The signature is required: AllowAny would otherwise add "no authentication" as an alternative."""

    def get_auth(self) -> list[dict[str, list[str]]]:
        return [requirement for requirement in super().get_auth() if requirement]


_EVENT = inline_serializer(
    name="DigitalRiverEvent",
    fields={
        "id": serializers.CharField(max_length=100, help_text="DR's event id; a second delivery is a duplicate."),
        "type": serializers.CharField(max_length=100, help_text="The event type, e.g. order.accepted."),
        "data": serializers.DictField(required=False, help_text="`object`: the resource the event is about."),
        "liveMode": serializers.BooleanField(required=False),
        "createdTime": serializers.DateTimeField(required=False),
    },
)
_RECEIPT = inline_serializer(
    name="WebhookReceipt",
    fields={
        "id": serializers.CharField(help_text="The event id, as delivered."),
        "status": serializers.ChoiceField(choices=["accepted", "duplicate"]),
    },
)
_REFUSAL = inline_serializer(name="WebhookRefusal", fields={"error": serializers.CharField()})
_EVENT_ID = "9f2d8d83-5e4e-4a4c-8f7e-0f6b0e1c2a41"
_TOO_LARGE = f"body larger than {settings.DR_WEBHOOK_MAX_BYTES} bytes"


class WebhookView(APIView):
    """DR's deliveries: verify, store, answer. Processing happens after the answer.

    DRF describes the endpoint (the OpenAPI schema) and answers the other methods (405); ``post``
    answers on the plain Django request, in the bytes and headers DRF gave. DRF's request wrapping,
    content negotiation, permission and throttle checks and rendering, none of which a delivery needs,
    were a tenth of the CPU a delivery took (README, webhook ingest).
    """

    http_method_names = ["post"]
    authentication_classes = [DigitalRiverSignatureAuthentication]
    permission_classes = [AllowAny]  # the signature is the check: a POST is verified by the view itself
    # DR retries what we refuse, for up to 72 hours: a burst of deliveries is never throttled.
    throttle_classes: list = []
    renderer_classes = [WebhookJSONRenderer]  # no browsable API
    parser_classes = [JSONParser]  # describes the body in the schema; the view reads it raw, never parsed here
    content_negotiation_class = FirstRenderer
    schema = SignedOnlySchema()

    @extend_schema(
        operation_id="digitalriver_webhook_receive",
        tags=["webhooks"],
        summary="Receive a Digital River event",
        description=(
            "DR's webhook deliveries. Authenticated by the `DigitalRiver-Signature` header alone (no token, "
            "session or CSRF token). A new event is stored and answered 202 before any processing; a known "
            "event id is answered 200 and changes nothing. A delivery that does not verify or is not a JSON "
            "object with a string `id` and `type` is answered 400 with the reason, and nothing is stored. "
            f"Bodies over {settings.DR_WEBHOOK_MAX_BYTES} bytes are answered 413 without being read."
        ),
        request=_EVENT,
        examples=[
            OpenApiExample(
                "order.accepted",
                request_only=True,
                value={
                    "id": _EVENT_ID,
                    "type": "order.accepted",
                    "data": {"object": {"id": "240000000001", "state": "accepted"}},
                    "liveMode": False,
                    "createdTime": "2026-11-20T10:00:00Z",
                },
            )
        ],
        responses={
            status.HTTP_202_ACCEPTED: OpenApiResponse(
                _RECEIPT,
                description="Stored; processing is queued.",
                examples=[OpenApiExample("accepted", value={"id": _EVENT_ID, "status": "accepted"})],
            ),
            status.HTTP_200_OK: OpenApiResponse(
                _RECEIPT,
                description="Already stored (a redelivery): nothing changed.",
                examples=[OpenApiExample("duplicate", value={"id": _EVENT_ID, "status": "duplicate"})],
            ),
            status.HTTP_400_BAD_REQUEST: OpenApiResponse(
                _REFUSAL,
                description="The signature does not verify, or the body is not an event; nothing stored.",
                examples=[
                    OpenApiExample("bad signature", value={"error": "signature does not match"}),
                    OpenApiExample("stale signature", value={"error": "signature timestamp is too old"}),
                    OpenApiExample("not an event", value={"error": "event has no 'id'"}),
                ],
            ),
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: OpenApiResponse(
                _REFUSAL,
                description="The body is over the limit; it was not read.",
                examples=[OpenApiExample("too large", value={"error": _TOO_LARGE})],
            ),
        },
    )
    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            receipt = webhook_delivery_store(body=verified_body(request), headers=request.headers)
        except DeliveryRefused as exc:
            return self.answer({"error": exc.reason}, exc.status_code)
        except InvalidEvent as exc:
            return self.answer({"error": str(exc)}, status.HTTP_400_BAD_REQUEST)
        if receipt.created:
            return self.answer({"id": receipt.event.dr_event_id, "status": "accepted"}, status.HTTP_202_ACCEPTED)
        return self.answer({"id": receipt.event.dr_event_id, "status": "duplicate"}, status.HTTP_200_OK)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "POST":
            return self.post(request)
        return super().dispatch(request, *args, **kwargs)

    def answer(self, data: dict[str, str], status_code: int) -> HttpResponse:
        """What DRF's Response with this view's renderer and headers (Allow) would have been."""
        renderer = self.renderer_classes[0]()
        return HttpResponse(
            renderer.render(data),
            status=status_code,
            content_type=renderer.media_type,
            headers=self.default_response_headers,
        )

from django.conf import settings
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from .services.inbox import InvalidEvent, webhook_event_receive
from .signature import SignatureError


@method_decorator(csrf_exempt, name="dispatch")
class WebhookView(View):
    """DR's deliveries: verify, store, answer. Processing happens after the answer."""

    http_method_names = ["post"]

    def post(self, request):
        length = (request.META.get("CONTENT_LENGTH") or "0").strip()
        if not (length.isascii() and length.isdigit()):  # "²".isdigit() is true too
            return _reject(400, "bad Content-Length header")
        if len(length) > 12 or int(length) > settings.DR_WEBHOOK_MAX_BYTES:
            return _reject(413, f"body larger than {settings.DR_WEBHOOK_MAX_BYTES} bytes")
        body = request.read(settings.DR_WEBHOOK_MAX_BYTES + 1)
        if len(body) > settings.DR_WEBHOOK_MAX_BYTES:
            return _reject(413, f"body larger than {settings.DR_WEBHOOK_MAX_BYTES} bytes")
        try:
            receipt = webhook_event_receive(body=body, headers=request.headers)
        except (SignatureError, InvalidEvent) as exc:
            return _reject(400, str(exc))
        status = 202 if receipt.created else 200
        return JsonResponse(
            {"id": receipt.event.dr_event_id, "status": "accepted" if receipt.created else "duplicate"},
            status=status,
        )


def _reject(status: int, reason: str) -> JsonResponse:
    return JsonResponse({"error": reason}, status=status)

import hmac
import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ..services.control import ControlError, control_state, control_update


def allowed(request: HttpRequest) -> bool:
    """The sandbox's own pages: open in DEBUG, else for staff or a caller holding the API key."""
    if settings.DEBUG or (request.user.is_authenticated and request.user.is_staff):
        return True
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    expected = settings.DR_SECRET_KEY or ""
    return scheme.lower() == "bearer" and bool(expected) and hmac.compare_digest(key.strip(), expected)


@csrf_exempt
def control(request: HttpRequest) -> JsonResponse:
    """The bad network, as JSON. GET shows the settings; POST a JSON object with any of these keys:

    - `latency_ms`, `latency_jitter_ms`: every /sandbox/api call waits latency + uniform(0, jitter) ms.
    - `slow_rate`, `slow_ms`: that share of calls waits `slow_ms` more (default 1000).
    - `error_rate` (0-1): share of API calls answering one of `error_statuses` (default [500, 503])
      in DR's error shape; `error_after_processing` (0-1): share of those answered *after* the call
      took effect (an ambiguous failure).
    - `next_calls`: `{"path": "/fulfillments", "status": 503, "count": 2, "regex": false, "method": "POST"}`
      (or a list of them): the next `count` calls whose path starts with `path` (relative to
      /sandbox/api, or absolute) or matches it as a regex answer `status`. `clear_rules`: true drops them.
    - `rate_limit_per_second`: DR's per-key limit (25 in test mode; 0, the default, is off): calls over
      it in one second answer 429 with `Retry-After: 1`.
    - `fail_next_captures`: the next N captures fail (`order.charge.capture.failed`).
    - Deliveries: `drop_rate` (lost, never retried), `duplicate_rate` (sent twice),
      `reorder` (shuffle each batch), `delay_rate` + `delay_seconds` (held back, so they arrive
      after later events), `backoff_seconds` (first retry delay, doubling), `max_attempts`,
      `refund_delay_seconds` (how long the bank takes to answer a refund).
    - `reset`: true restores every default and drops the rules (applied before the other keys).
    """
    if not allowed(request):
        return JsonResponse({"error": "staff only"}, status=403)
    if request.method == "GET":
        return JsonResponse(control_state())
    if request.method != "POST":
        return JsonResponse({"error": "use GET or POST"}, status=405)
    try:
        values = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "the body must be a JSON object"}, status=400)
    if not isinstance(values, dict):
        return JsonResponse({"error": "the body must be a JSON object"}, status=400)
    try:
        return JsonResponse(control_update(values))
    except ControlError as exc:
        return JsonResponse({"error": str(exc)}, status=400)

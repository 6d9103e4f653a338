"""What every `/sandbox/api/` call goes through: the bad network, the bearer key, JSON in and out."""

import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any, NoReturn, TypeAlias

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ..errors import ApiError, error_response, invalid
from ..services import network
from ..timefmt import parse_dr_time
from ..types import JSONObject

API_PREFIX = "/sandbox/api"

#: What a handler returns: the status and the JSON body, or (204, None).
Answer: TypeAlias = tuple[int, JSONObject | None]
#: A handler takes the request and the URL's kwargs; a non-JSON answer (a file's bytes) is a response.
Handler: TypeAlias = Callable[..., Answer | HttpResponse]

logger = logging.getLogger(__name__)


def endpoint(**handlers: Handler) -> Callable[..., HttpResponse]:
    """A view answering like DR; `handlers` maps lower-case HTTP methods to functions.

    A handler takes the request and URL kwargs and returns `(status, body)`, or `(204, None)`.
    """

    @csrf_exempt
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        assert request.method is not None  # Django sets it on every request
        net = network.network_settings()
        delay_ms = net.latency_ms + random.uniform(0, net.latency_jitter_ms)
        if net.slow_rate and random.random() < net.slow_rate:
            delay_ms += net.slow_ms
        if delay_ms:
            time.sleep(delay_ms / 1000)
        api_path = request.path[len(API_PREFIX) :] if request.path.startswith(API_PREFIX) else request.path
        forced = network.rule_take(method=request.method, path=request.path, api_path=api_path)
        if forced is not None:
            return injected(forced)
        if network.rate_limited(net):
            return injected(429, "Too many requests; retry after the Retry-After delay.", code="too_many_requests")
        fail_after = False
        if net.error_rate and random.random() < net.error_rate:
            if not (net.error_after_processing and random.random() < net.error_after_processing):
                return injected(network.pick_error_status(net))
            fail_after = True
        response = answer(request, handlers, kwargs)
        if fail_after:
            return injected(network.pick_error_status(net))
        return response

    return view


def answer(request: HttpRequest, handlers: dict[str, Handler], kwargs: dict[str, Any]) -> HttpResponse:
    response: HttpResponse
    assert request.method is not None  # Django sets it on every request
    try:
        authenticate(request)
        handler = handlers.get(request.method.lower())
        if handler is None:
            raise ApiError(
                405, [("method_not_allowed", None, f"Method '{request.method}' is not allowed on {request.path}.")]
            )
        result = handler(request, **kwargs)
    except ApiError as exc:
        response = exc.response()
    except Exception:
        # DR answers even its own failures in its error shape; clients parse nothing else.
        logger.exception("sandbox API call %s %s failed", request.method, request.path)
        response = error_response(500, [("internal_server_error", None, "The sandbox failed; see its log.")])
    else:
        if isinstance(result, HttpResponse):
            response = result
        else:
            status, body = result
            response = HttpResponse(status=204) if body is None else JsonResponse(body, status=status)
    response["x-dr-requestid"] = str(uuid.uuid4())
    return response


def injected(
    status: int, message: str = "The sandbox's bad network answered this call.", code: str = ""
) -> HttpResponse:
    """An answer the bad network made up; its code (`sandbox_503`, ...) says so, unlike DR's own."""
    response = error_response(status, [(code or f"sandbox_{status}", None, message)])
    if status == 429:
        response["Retry-After"] = "1"
    response["x-dr-requestid"] = str(uuid.uuid4())
    return response


def authenticate(request: HttpRequest) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    expected = settings.DR_SECRET_KEY or ""
    if scheme.lower() != "bearer" or not expected or not hmac.compare_digest(key.strip(), expected):
        raise ApiError(401, [("unauthorized", "Authorization", "A valid secret key is required.")])


def json_body(request: HttpRequest) -> JSONObject:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, [("invalid_request", None, "The request body is not valid JSON.")]) from exc
    if not isinstance(body, dict):
        raise ApiError(400, [("invalid_request", None, "The request body must be a JSON object.")])
    return body


def query_list(request: HttpRequest, name: str) -> list[str]:
    """`?ids=a,b` and `?ids=a&ids=b` both mean [a, b]."""
    values: list[str] = []
    for raw in request.GET.getlist(name):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values


def query_bool(request: HttpRequest, name: str) -> bool | None:
    raw = request.GET.get(name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise invalid(name, f"'{name}' must be true or false.")
    return raw.lower() == "true"


TIME_OPERATORS = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}


def filter_times(request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
    """`createdTime[gte]=…` style filters (and a bare `createdTime=` meaning exactly)."""
    for param, field in (("createdTime", "created_time"), ("updatedTime", "updated_time")):
        if not hasattr(queryset.model, field):
            continue
        for key, raw in request.GET.items():
            if not key.startswith(param):
                continue
            operator = key[len(param) :].strip("[]")
            if operator and operator not in TIME_OPERATORS:
                raise invalid(key, f"'{key}' is not a known filter.")
            value = parse_dr_time(raw)
            if value is None:
                raise invalid(key, f"'{raw}' is not a date-time.")
            lookup = f"{field}__{TIME_OPERATORS[operator]}" if operator else field
            queryset = queryset.filter(**{lookup: value})
    return queryset


def paginate(
    request: HttpRequest, queryset: QuerySet[Any], serialize: Callable[[Any], JSONObject] = lambda obj: obj.as_dr()
) -> JSONObject:
    """DR's list: newest first, `limit` 1-100 (default 10), `startingAfter` / `endingBefore` by id."""
    raw_limit = request.GET.get("limit", "10")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
        raise invalid("limit", "'limit' must be an integer between 1 and 100.")
    limit = int(raw_limit)
    after, before = request.GET.get("startingAfter"), request.GET.get("endingBefore")
    if after and before:
        raise invalid("startingAfter", "Only one of 'startingAfter' and 'endingBefore' may be given.")
    ids = query_list(request, "ids")
    if ids:
        queryset = queryset.filter(dr_id__in=ids)
    queryset = filter_times(request, queryset)
    if before:
        cursor = _cursor(queryset, "endingBefore", before)
        page = list(queryset.filter(pk__gt=cursor).order_by("pk")[: limit + 1])
        has_more = len(page) > limit
        page = list(reversed(page[:limit]))
    else:
        if after:
            queryset = queryset.filter(pk__lt=_cursor(queryset, "startingAfter", after))
        page = list(queryset.order_by("-pk")[: limit + 1])
        has_more = len(page) > limit
        page = page[:limit]
    return {"hasMore": has_more, "data": [serialize(obj) for obj in page]}


def _cursor(queryset: QuerySet[Any], parameter: str, dr_id: str) -> int:
    pk = queryset.model.objects.filter(dr_id=dr_id).values_list("pk", flat=True).first()
    if pk is None:
        raise invalid(parameter, f"No such object: '{dr_id}'.")
    return pk


def _no_route(request: HttpRequest, **kwargs: Any) -> NoReturn:
    raise ApiError(404, [("not_found", None, f"No resource at {request.path}.")])


unknown_route = endpoint(**dict.fromkeys(("get", "post", "put", "patch", "delete"), _no_route))

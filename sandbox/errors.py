"""DR's error body: `{"type": ..., "errors": [{"code", "parameter", "message"}]}`."""

from django.http import JsonResponse

STATUS_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    429: "too_many_requests",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class ApiError(Exception):
    """An answer in DR's error shape. `errors` holds (code, parameter, message) triples."""

    def __init__(self, status: int, errors: list[tuple[str, str | None, str]]) -> None:
        super().__init__(errors[0][2] if errors else str(status))
        self.status = status
        self.errors = errors

    def response(self) -> JsonResponse:
        return error_response(self.status, self.errors)


def error_response(status: int, errors: list[tuple[str, str | None, str]]) -> JsonResponse:
    body = {
        "type": STATUS_TYPES.get(status, "bad_request" if status < 500 else "internal_server_error"),
        # The spec's Error.parameter is a string: an error about no parameter leaves it out.
        "errors": [
            {"code": code, **({"parameter": parameter} if parameter is not None else {}), "message": message}
            for code, parameter, message in errors
        ],
    }
    return JsonResponse(body, status=status)


def invalid(parameter: str, message: str) -> ApiError:
    return ApiError(400, [("invalid_parameter", parameter, message)])


def missing(parameter: str) -> ApiError:
    return ApiError(400, [("missing_parameter", parameter, f"'{parameter}' is required.")])


def not_found(parameter: str, resource_id: str) -> ApiError:
    return ApiError(404, [("not_found", parameter, f"Resource '{resource_id}' not found.")])


def conflict(code: str, parameter: str | None, message: str) -> ApiError:
    return ApiError(409, [(code, parameter, message)])


class Errors:
    """Collects field errors so one 400 names every bad field, as DR's list shape allows."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str | None, str]] = []

    def add(self, code: str, parameter: str | None, message: str) -> None:
        self.items.append((code, parameter, message))

    def missing(self, parameter: str) -> None:
        self.add("missing_parameter", parameter, f"'{parameter}' is required.")

    def invalid(self, parameter: str, message: str) -> None:
        self.add("invalid_parameter", parameter, message)

    def raise_if_any(self) -> None:
        if self.items:
            raise ApiError(400, self.items)

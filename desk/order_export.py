"""The order list as CSV: exactly the rows the list shows (its filters and search), every page of them.

`GET /admin/commerce/order/export/?<the list's own query>` — the "Export CSV" button on the order
list carries the list's filters and search along.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import URLPattern, path
from django.utils import timezone

from commerce.models import Order

COLUMNS = (
    "order id",
    "upstream id",
    "placed",
    "state",
    "customer",
    "email",
    "total",
    "currency",
    "captured",
    "refunded",
    "attention flags",
)
# A spreadsheet runs a cell that starts with one of these as a formula: a customer's name is not one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def order_rows(orders: QuerySet[Order]) -> Iterator[list[str]]:
    yield list(COLUMNS)
    for order in orders.iterator(chunk_size=2000):
        placed = timezone.localtime(order.dr_created_at).isoformat() if order.dr_created_at else ""
        yield [
            _cell(value)
            for value in (
                order.dr_order_id,
                order.upstream_id,
                placed,
                order.get_state_display(),
                order.customer_name,
                order.email,
                order.total_amount,
                order.currency,
                order.captured_amount,
                order.refunded_amount,
                "; ".join(flag.label for flag in order.raised_flags),
            )
        ]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[list[str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    return (writer.writerow(row) for row in rows)


def export_url(modeladmin: admin.ModelAdmin[Any]) -> URLPattern:
    def view(request: HttpRequest) -> StreamingHttpResponse:
        if not modeladmin.has_view_or_change_permission(request):
            raise PermissionDenied
        # The changelist itself works out the filters, the search and the order from the query.
        changelist = modeladmin.get_changelist_instance(request)
        orders = changelist.get_queryset(request)
        response = StreamingHttpResponse(csv_lines(order_rows(orders)), content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="orders-{stamp}.csv"'
        return response

    return path("export/", modeladmin.admin_site.admin_view(view), name="commerce_order_export")

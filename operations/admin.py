"""The operations dashboard (a page under /admin/operations/dashboard/) and the log of alerts sent."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from core.admin import ReadOnlyAdmin

from .models import Dashboard, OperationsAlert
from .selectors import dashboard_get

# Whoever may read the webhook inbox (the Operations role) may read the dashboard that summarises it.
DASHBOARD_PERMISSION = "digitalriver.view_webhookevent"


@admin.register(Dashboard)
class DashboardAdmin(ReadOnlyAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.has_perm(DASHBOARD_PERMISSION)

    def has_view_permission(self, request: HttpRequest, obj: Dashboard | None = None) -> bool:
        return self.has_module_permission(request)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Operations dashboard",
            "opts": self.model._meta,
            "dashboard": dashboard_get(now=timezone.now()),
        }
        return TemplateResponse(request, "admin/operations/dashboard.html", context)


@admin.register(OperationsAlert)
class OperationsAlertAdmin(ReadOnlyAdmin):
    list_display = ("number", "subject", "covered_from", "covered_until", "sent_at", "to", "short_error")
    list_filter = (("sent_at", admin.EmptyFieldListFilter),)
    search_fields = ("subject",)
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    fields = (
        ("number", "to"),
        ("covered_from", "covered_until"),
        ("created_at", "sent_at", "attempts"),
        "error",
        "counts",
        "subject",
        "body",
    )

    @admin.display(description="error")
    def short_error(self, obj: OperationsAlert) -> str:
        return obj.error.splitlines()[0][:120] if obj.error else ""

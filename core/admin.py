"""Admin pieces every app uses: read-only pages for mirrored and logged data, JSON a person can read
with secrets redacted, and the confirmation page in front of a bulk action."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from .redaction import redact_json, redact_text


def pretty_json(value: Any) -> str:
    """JSON for a person to read, with secrets and card numbers redacted: what DR sent is kept as it
    came (a webhook body, an order's raw copy), but a payment clientSecret is not for the admin."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return format_html('<pre class="dr-json">{}</pre>', redact_text(value))
    return format_html('<pre class="dr-json">{}</pre>', redact_json(value, indent=2, sort_keys=True))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Mirrored and logged data: visible, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def confirm_action(
    modeladmin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    action: str,
    title: str,
    question: str,
    form: Form | None = None,
) -> TemplateResponse | None:
    """Render the admin's standard confirmation page for a bulk action; None once confirmed.

    ``form`` asks for the action's parameters on the same page (bind it to request.POST once
    confirmed); the action is confirmed only when the form is valid.
    """
    if request.POST.get("confirmed") == "yes" and (form is None or form.is_valid()):
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "question": question,
        "objects": queryset[:50],
        "count": queryset.count(),
        "action": action,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "selected": queryset.values_list("pk", flat=True),
        "form": form,
    }
    return TemplateResponse(request, "admin/confirm_action.html", context)


def natural_key_url(modeladmin: admin.ModelAdmin[Any], field: str, url_name: str) -> URLPattern:
    """``by/<value>/``: the change page of the object whose ``field`` is ``value`` (a DR order id, a
    SKU id), for pages that know an object by its natural key only (an event, an instruction, a call)."""

    def view(request: HttpRequest, value: str) -> HttpResponseRedirect:
        if not modeladmin.has_view_or_change_permission(request):
            raise PermissionDenied
        found = modeladmin.get_queryset(request).filter(**{field: value}).first()
        if found is None:
            raise Http404(f"No {modeladmin.opts.verbose_name} {value} here.")
        info = (modeladmin.opts.app_label, modeladmin.opts.model_name)
        return HttpResponseRedirect(reverse("admin:{}_{}_change".format(*info), args=[found.pk]))

    return path("by/<path:value>/", modeladmin.admin_site.admin_view(view), name=url_name)

"""The merchandisers' catalog screens: list, edit, push, check and repair drift, import and export CSV.

Every write goes through catalog.services; this module asks, confirms and reports what happened
to each SKU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from django_countries.filters import CountryFilter
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV
from import_export.forms import ConfirmImportForm

from core.admin import confirm_action, natural_key_url, pretty_json
from digitalriver.subjects import subject_page_register

from . import selectors, services
from .models import SKU_ID_FIXED_MESSAGE, Sku
from .resources import SkuResource

if TYPE_CHECKING:
    from import_export.results import Result

# A drift check makes two calls to DR per SKU while the merchandiser waits for the page; the daily
# scan (sync_catalog --check-drift) covers the whole catalog.
DRIFT_CHECK_MAX = 100
# Refusals named on the push confirmation page; the result message names every one.
PLAN_REFUSALS_SHOWN = 10

SYNC_FIELDS = (
    "sync_state",
    "sync_error",
    "dr_classification",
    "pushed_at",
    "pushed_model",
    "fetched_at",
    "drift_checked_at",
    "stock_fetched_at",
    "created_at",
    "updated_at",
)
DR_COPY_FIELDS = ("dr_sku_pretty", "dr_inventory_item_pretty", "pushed_values_pretty")


class SkuConfirmImportForm(ConfirmImportForm):
    push_after_import = forms.BooleanField(
        required=False,
        label="Push the imported new SKUs to Digital River",
        help_text="Otherwise they stay drafts until someone pushes them.",
    )


class ChangeFulfillmentModelForm(forms.Form):
    fulfillment_model = forms.ChoiceField(label="Move them to", choices=Sku.FulfillmentModel.choices)


def sentences(*parts: str) -> str:
    """Join the non-empty parts of a result message with semicolons and end it with one full stop."""
    return "; ".join(part.rstrip(".") for part in parts if part) + "."


def refusals_text(refused: dict[str, list[str]]) -> str:
    """'1 refused: X-1: part_number: A part number is required…' (empty when nothing was refused)."""
    if not refused:
        return ""
    details = "; ".join(f"{sku_id}: {' '.join(reasons).rstrip('.')}" for sku_id, reasons in refused.items())
    return f"{len(refused)} refused: {details}"


def validation_messages(exc: ValidationError) -> list[str]:
    """Each message, prefixed with the field it is about when it is about one."""
    if not hasattr(exc, "error_dict"):
        return exc.messages
    return [f"{field}: {message}" for field, field_messages in exc.message_dict.items() for message in field_messages]


@admin.register(Sku)
class SkuAdmin(ImportExportModelAdmin):
    resource_classes = [SkuResource]
    formats = [CSV]
    # Django 6 makes https the default for typed-in addresses; product pages and images are https anyway.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    # Where each pair stands with DR next to its name; the rest after (every column fits at 1280 px).
    list_display = (
        "sku_id",
        "name",
        "sync_state",
        "drift_summary",
        "fulfillment_model",
        "pushed_at",
        "country_of_origin",
    )
    list_display_links = ("sku_id", "name")
    list_filter = ("sync_state", "fulfillment_model", ("country_of_origin", CountryFilter), "allow_oversell")
    search_fields = ("sku_id", "name", "part_number")
    list_per_page = 100
    show_full_result_count = False
    actions = ["push_to_dr", "check_drift", "change_fulfillment_model"]
    change_form_template = "admin/catalog/sku/change_form.html"
    import_template_name = "admin/catalog/sku/import.html"
    confirm_form_class = SkuConfirmImportForm
    editable_fieldsets = (
        ("Identity", {"fields": ("sku_id", "name", "description", "fulfillment_model")}),
        (
            "Classification and customs",
            {"fields": ("tax_code", "eccn", "hs_code", "country_of_origin", "part_number", "manufacturer_id")},
        ),
        ("Physical", {"fields": ("weight", "weight_unit", "allow_oversell")}),
        ("Presentation", {"fields": ("image", "url", "item_breadcrumb", "sku_group_id")}),
    )
    sync_fieldsets = (
        ("Digital River sync", {"fields": SYNC_FIELDS}),
        ("Digital River's copy, as last fetched", {"fields": DR_COPY_FIELDS, "classes": ("collapse",)}),
    )

    def get_fieldsets(self, request: HttpRequest, obj: Sku | None = None) -> tuple[tuple[str, dict[str, Any]], ...]:
        return self.editable_fieldsets if obj is None else self.editable_fieldsets + self.sync_fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Sku | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        # The model's id rule decides: a draft may still be renamed, a pushed SKU may not.
        fixed = ("sku_id",) if obj.sku_id_is_fixed else ()
        return (*fixed, *SYNC_FIELDS, *DR_COPY_FIELDS)

    def get_form(
        self, request: HttpRequest, obj: Sku | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[Sku]]:
        if obj is not None and obj.sku_id_is_fixed:
            # Shown under the read-only id: the same words the API and the CSV import answer with.
            kwargs["help_texts"] = {**kwargs.get("help_texts", {}), "sku_id": SKU_ID_FIXED_MESSAGE}
        return super().get_form(request, obj, change=change, **kwargs)

    @admin.display(description="drift")
    def drift_summary(self, obj: Sku) -> str:
        return ", ".join(row["field"] for row in obj.drift) if obj.drift else "-"

    @admin.display(description="DR classifies it as")
    def dr_classification(self, obj: Sku) -> str:
        # DR decides physical vs digital from the tax code; we show its answer rather than guess.
        if obj.physical_at_dr is None:
            return "not known yet: DR says once the SKU is pushed or fetched"
        said = "physical goods" if obj.physical_at_dr else "digital"
        if obj.classification_mismatch:
            return format_html('{} <strong class="errornote">{}</strong>', said, obj.classification_mismatch)
        return said

    @admin.display(description="DR's SKU")
    def dr_sku_pretty(self, obj: Sku) -> str:
        return pretty_json(obj.dr_sku) if obj.dr_sku is not None else "-"

    @admin.display(description="DR's inventory item")
    def dr_inventory_item_pretty(self, obj: Sku) -> str:
        return pretty_json(obj.dr_inventory_item) if obj.dr_inventory_item is not None else "-"

    @admin.display(description="the SKU body we last pushed")
    def pushed_values_pretty(self, obj: Sku) -> str:
        return pretty_json(obj.pushed_values) if obj.pushed_values is not None else "-"

    # --- saving and deleting go through the services ---

    def save_model(self, request: HttpRequest, obj: Sku, form: forms.ModelForm[Sku], change: bool) -> None:
        if change:
            # Only what the form changed: a push that finishes between loading ``obj`` and saving it
            # moves the sync fields, and writing back the values loaded with ``obj`` would undo that.
            obj.save(update_fields=[*form.changed_data, "updated_at"])
            services.sku_after_admin_save(sku=obj, changed_fields=form.changed_data, by=request.user)
            return
        values = {name: form.cleaned_data[name] for name in form.fields if name in form.cleaned_data}
        created = services.sku_create(values=values, by=request.user)
        # The admin goes on with ``obj`` (log entry, redirect): give it the stored row's identity.
        obj.pk = created.pk
        obj._state.adding = False

    def render_delete_form(self, request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
        sku = context.get("object")
        context["deletes_at_dr"] = isinstance(sku, Sku) and services.sku_delete_reaches_dr(sku=sku)
        return super().render_delete_form(request, context)

    def delete_model(self, request: HttpRequest, obj: Sku) -> None:
        services.sku_delete(sku=obj, by=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Sku]) -> None:
        for sku in queryset:
            services.sku_delete(sku=sku, by=request.user)

    # --- permissions ---

    def has_push_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("catalog.push_sku")

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perms(["catalog.add_sku", "catalog.change_sku"])

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("catalog.view_sku")

    # --- bulk actions ---

    @admin.action(description="Push the selected SKUs to Digital River", permissions=["push"])
    def push_to_dr(self, request: HttpRequest, queryset: QuerySet[Sku]) -> TemplateResponse | None:
        question = (
            "Digital River will get our current values for these SKUs (and their inventory items). "
            "A SKU that breaks one of DR's rules is not sent."
        )
        if request.POST.get("confirmed") != "yes":
            refused = services.skus_push_plan(skus=queryset).refused
            if refused:
                named = "; ".join(str(refusal) for refusal in refused[:PLAN_REFUSALS_SHOWN])
                more = f"; and {len(refused) - PLAN_REFUSALS_SHOWN} more" if len(refused) > PLAN_REFUSALS_SHOWN else ""
                question += f" {len(refused)} of them break DR's rules now: {named}{more}"
        response = confirm_action(
            self,
            request,
            queryset,
            action="push_to_dr",
            title="Push SKUs to Digital River",
            question=f"{question} Push them?",
        )
        if response is not None:
            return response
        outcome = services.skus_push(skus=queryset, by=request.user)
        reasons = {refusal.sku_id: refusal.messages for refusal in outcome.refused}
        summary = sentences(f"{len(outcome.queued)} queued for a push", refusals_text(reasons))
        self.message_user(request, summary, messages.WARNING if reasons else messages.SUCCESS)
        return None

    @admin.action(description="Check the selected SKUs for drift from Digital River", permissions=["push"])
    def check_drift(self, request: HttpRequest, queryset: QuerySet[Sku]) -> TemplateResponse | None:
        if queryset.count() > DRIFT_CHECK_MAX:
            self.message_user(
                request,
                f"Select at most {DRIFT_CHECK_MAX} SKUs to check while you wait; the daily scan checks them all.",
                messages.ERROR,
            )
            return None
        response = confirm_action(
            self,
            request,
            queryset,
            action="check_drift",
            title="Check drift from Digital River",
            question="Each SKU and its inventory item are fetched from Digital River and compared with our values. "
            "A synced SKU that differs becomes out of sync. Check them?",
        )
        if response is not None:
            return response
        reports = [services.sku_drift_fetch(sku=sku) for sku in queryset]
        matching = sum(1 for report in reports if not report.error and not report.drifted)
        drifted = [report for report in reports if report.drifted]
        failed = [report for report in reports if report.error]
        parts = [f"{matching} match Digital River"]
        if drifted:
            details = "; ".join(
                f"{report.sku.sku_id} ({', '.join(row['field'] for row in report.rows)})" for report in drifted
            )
            parts.append(f"{len(drifted)} differ: {details}")
        if failed:
            details = "; ".join(f"{report.sku.sku_id}: {report.error}" for report in failed)
            parts.append(f"{len(failed)} could not be checked: {details}")
        level = messages.ERROR if failed else messages.WARNING if drifted else messages.SUCCESS
        self.message_user(request, sentences(*parts), level)
        return None

    @admin.action(description="Change the fulfillment model of the selected SKUs", permissions=["change"])
    def change_fulfillment_model(self, request: HttpRequest, queryset: QuerySet[Sku]) -> TemplateResponse | None:
        confirmed = request.POST.get("confirmed") == "yes"
        form = ChangeFulfillmentModelForm(request.POST if confirmed else None)
        response = confirm_action(
            self,
            request,
            queryset,
            action="change_fulfillment_model",
            title="Change the fulfillment model",
            question="Each SKU is checked against the new model's rules; one that breaks them keeps its model. "
            "SKUs Digital River already has are pushed again so DR moves them too.",
            form=form,
        )
        if response is not None:
            return response
        model = form.cleaned_data["fulfillment_model"]
        changed, refused = services.skus_change_model(skus=queryset, model=model, by=request.user)
        queued = sum(1 for sku in changed if sku.sync_state == Sku.SyncState.QUEUED)
        moved = f"{len(changed)} now {Sku.FulfillmentModel(model).label}"
        if queued:
            moved += f" ({queued} queued for a push)"
        self.message_user(
            request, sentences(moved, refusals_text(refused)), messages.WARNING if refused else messages.SUCCESS
        )
        return None

    # --- the change page's Digital River panel and its buttons ---

    def get_urls(self) -> list[URLPattern]:
        def view(method: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
            return self.admin_site.admin_view(method)

        return [
            path("<path:object_id>/check-drift/", view(self.check_drift_view), name="catalog_sku_check_drift"),
            path("<path:object_id>/push/", view(self.push_view), name="catalog_sku_push"),
            path("<path:object_id>/fetch-stock/", view(self.fetch_stock_view), name="catalog_sku_fetch_stock"),
            path(
                "<path:object_id>/take-dr-values/",
                view(self.take_dr_values_view),
                name="catalog_sku_take_dr_values",
            ),
            natural_key_url(self, "sku_id", "catalog_sku_by_sku_id"),
            *super().get_urls(),
        ]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Sku | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(self.dr_panel_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def dr_panel_context(self, request: HttpRequest, sku: Sku) -> dict[str, Any]:
        # Only what is stored: rendering the page never waits for DR; its buttons ask DR on purpose.
        has_stock = selectors.sku_has_stock_at_dr(sku)
        return {
            "can_push": self.has_push_permission(request),
            "can_fetch_stock": has_stock and self.has_fetch_stock_permission(request, sku),
            "no_stock_at_dr": selectors.NO_STOCK_AT_DR,
            "drift_rows": selectors.sku_drift_table(sku=sku),
            "stock": selectors.sku_stock_levels(sku=sku) if has_stock else None,
            "history": selectors.sku_sync_history(sku=sku),
        }

    def has_fetch_stock_permission(self, request: HttpRequest, sku: Sku) -> bool:
        # Whoever may view the SKU (merchandisers, customer service, operations in core/roles.py):
        # customer service answers "is it in stock?" from this page. Fetching reads DR and changes
        # nothing there, and here only our stored copy of DR's figures, so it needs no push right;
        # and it costs fewer calls than before, when every page view asked DR.
        return self.has_view_permission(request, sku)

    def sku_for_dr_button(self, request: HttpRequest, object_id: str) -> Sku:
        if not self.has_push_permission(request):
            raise PermissionDenied
        sku = self.get_object(request, unquote(object_id))
        if sku is None:
            raise Http404("No such SKU")
        return sku

    def back_to_change_page(self, sku: Sku) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:catalog_sku_change", args=[sku.pk]))

    @method_decorator(require_POST)
    def check_drift_view(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        sku = self.sku_for_dr_button(request, object_id)
        report = services.sku_drift_fetch(sku=sku)
        if report.error:
            self.message_user(request, f"{sku.sku_id} could not be checked: {report.error}", messages.ERROR)
        elif report.drifted:
            fields = ", ".join(row["field"] for row in report.rows)
            self.message_user(request, f"{sku.sku_id} differs from Digital River in: {fields}.", messages.WARNING)
        else:
            self.message_user(request, f"{sku.sku_id} matches Digital River.", messages.SUCCESS)
        return self.back_to_change_page(sku)

    @method_decorator(require_POST)
    def push_view(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        sku = self.sku_for_dr_button(request, object_id)
        outcome = services.skus_push(skus=[sku], by=request.user)
        for refusal in outcome.refused:
            self.message_user(request, str(refusal), messages.ERROR)
        if outcome.queued:
            self.message_user(request, f"{sku.sku_id}: our values are queued for a push.", messages.SUCCESS)
        return self.back_to_change_page(sku)

    @method_decorator(require_POST)
    def fetch_stock_view(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        sku = self.get_object(request, unquote(object_id))
        if sku is None:
            raise Http404("No such SKU")
        if not self.has_fetch_stock_permission(request, sku):
            raise PermissionDenied
        fetched = services.sku_stock_fetch(sku=sku)
        if fetched.error:
            self.message_user(request, f"{sku.sku_id}: {fetched.error}", messages.ERROR)
        else:
            warehouses = len(fetched.rows)
            self.message_user(
                request,
                f"{sku.sku_id}: stock fetched from Digital River ({warehouses} warehouse"
                f"{'' if warehouses == 1 else 's'}).",
                messages.SUCCESS,
            )
        return self.back_to_change_page(sku)

    def take_dr_values_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        sku = self.sku_for_dr_button(request, object_id)
        if request.method != "POST":
            # A reload or a bookmarked link: nothing is taken without the button and its confirmation.
            self.message_user(
                request,
                "Nothing was changed: use “Take DR's values” on this page to review Digital River's values first.",
                messages.INFO,
            )
            return self.back_to_change_page(sku)
        if not self.has_change_permission(request, sku):
            raise PermissionDenied  # it rewrites our values, so pushing alone is not enough
        if not sku.dr_sku:
            self.message_user(
                request, "There are no Digital River values to take: check drift first (or push ours).", messages.ERROR
            )
            return self.back_to_change_page(sku)
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": f"Take Digital River's values for {sku.sku_id}",
                "opts": self.opts,
                "original": sku,
                "drift_rows": selectors.sku_drift_table(sku=sku),
            }
            return TemplateResponse(request, "admin/catalog/sku/take_dr_values.html", context)
        try:
            services.sku_take_dr_values(sku=sku, by=request.user)
        except ValidationError as exc:
            self.message_user(
                request, f"{sku.sku_id} kept our values: {' '.join(validation_messages(exc))}", messages.ERROR
            )
        else:
            self.message_user(
                request,
                f"{sku.sku_id} now has Digital River's values; a push is queued so its inventory item agrees too.",
                messages.SUCCESS,
            )
        return self.back_to_change_page(sku)

    # --- import ---

    def get_import_data_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        # Rows that break the rules are reported and skipped (SkuResource.import_row); a row that
        # fails otherwise still undoes the whole file.
        form = kwargs.get("form")
        push = bool(isinstance(form, SkuConfirmImportForm) and form.cleaned_data.get("push_after_import"))
        return {
            **super().get_import_data_kwargs(**kwargs),
            "rollback_on_validation_errors": True,
            "push_after_import": push,
        }

    def process_result(self, result: Result, request: HttpRequest) -> HttpResponse:
        if result.has_errors() or result.has_validation_errors():
            rows = ", ".join(str(row.number) for row in result.invalid_rows) or "see the error log"
            self.message_user(
                request,
                f"Nothing was imported: rows no longer pass DR's rules ({rows}). Import the file again.",
                messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:catalog_sku_changelist"))
        self.generate_log_entries(result, request)
        rejected_rows = getattr(result, "rejected_rows", [])
        new, updated = result.totals["new"], result.totals["update"]
        parts = [
            f"Imported {new + updated} of {result.total_rows} rows ({new} new, {updated} updated)",
            f"{len(rejected_rows)} rejected (rows {', '.join(map(str, rejected_rows))})" if rejected_rows else "",
        ]
        outcome = getattr(result, "push_outcome", None)
        if outcome is not None:
            reasons = {refusal.sku_id: refusal.messages for refusal in outcome.refused}
            parts += [f"{len(outcome.queued)} new SKUs queued for a push to Digital River", refusals_text(reasons)]
        self.message_user(request, sentences(*parts), messages.WARNING if rejected_rows else messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:catalog_sku_changelist"))


subject_page_register("sku", lambda sku_id: reverse("admin:catalog_sku_by_sku_id", args=[sku_id]))

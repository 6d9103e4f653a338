import json

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import ngettext

from .models import ApiCall, Attempt, Instruction, WebhookEvent
from .redaction import redact_json, redact_text
from .services.inbox import webhook_events_replay
from .services.outbox import instructions_cancel, instructions_retry_now


def pretty_json(value) -> str:
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def confirm_action(modeladmin, request, queryset, *, action: str, title: str, question: str, form=None):
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
    return TemplateResponse(request, "admin/digitalriver/confirm_action.html", context)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("type", "state", "order_id", "source", "received_at", "attempts", "short_error")
    list_filter = ("state", "type", "source", "live_mode", ("received_at", admin.DateFieldListFilter))
    search_fields = ("=dr_event_id", "=order_id", "type")
    date_hierarchy = "received_at"
    list_per_page = 50
    show_full_result_count = False
    actions = ["replay"]

    def get_fieldsets(self, request, obj=None):
        failure = ("Failure", {"fields": ("error", "traceback_pretty")})
        rest = [
            (None, {"fields": ("dr_event_id", "type", "state", "source", "order_id", "live_mode")}),
            ("Times", {"fields": ("dr_created_at", "received_at", "processed_at", "attempts")}),
            ("Payload", {"fields": ("payload_pretty", "headers_pretty")}),
        ]
        # What went wrong is what an operator opened a failed event for: show it first.
        return [failure, *rest] if obj is not None and obj.error else rest

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.error.splitlines()[0][:120] if obj.error else ""

    @admin.display(description="payload")
    def payload_pretty(self, obj):
        return pretty_json(obj.body)

    @admin.display(description="traceback")
    def traceback_pretty(self, obj):
        return format_html('<pre class="dr-json">{}</pre>', obj.traceback) if obj.traceback else "-"

    @admin.display(description="headers")
    def headers_pretty(self, obj):
        return pretty_json(obj.headers)

    def get_readonly_fields(self, request, obj=None):
        return [*[f.name for f in self.model._meta.fields], "payload_pretty", "headers_pretty", "traceback_pretty"]

    def has_replay_permission(self, request):
        return request.user.has_perm("digitalriver.replay_webhookevent")

    @admin.action(description="Replay the selected events", permissions=["replay"])
    def replay(self, request, queryset):
        count = webhook_events_replay(events=queryset, by=request.user)
        skipped = queryset.count() - count
        self.message_user(
            request,
            ngettext("%d event queued for processing.", "%d events queued for processing.", count) % count
            + (f" {skipped} already waiting were left alone." if skipped else ""),
            messages.SUCCESS,
        )


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = (
        "number",
        "started_at",
        "duration_ms",
        "outcome",
        "http_status",
        "error_codes",
        "request_id",
        "message",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Instruction)
class InstructionAdmin(ReadOnlyAdmin):
    list_display = (
        "kind",
        "subject",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error_code",
        "created_at",
    )
    list_filter = ("state", "kind", "effect_uncertain")
    search_fields = ("=subject", "kind", "last_error_code")
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    inlines = [AttemptInline]
    actions = ["retry_now", "cancel_instructions"]
    fieldsets = (
        (None, {"fields": ("kind", "subject", "state", "attempts", "next_attempt_at", "effect_uncertain")}),
        ("Outcome", {"fields": ("last_error_code", "last_error", "result_pretty", "finished_at")}),
        ("Payload", {"fields": ("payload_pretty", "created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [*[f.name for f in self.model._meta.fields], "payload_pretty", "result_pretty"]

    @admin.display(description="payload")
    def payload_pretty(self, obj):
        return pretty_json(obj.payload)

    @admin.display(description="DR's answer")
    def result_pretty(self, obj):
        return pretty_json(obj.result) if obj.result is not None else "-"

    def has_operate_permission(self, request):
        return request.user.has_perm("digitalriver.operate_instruction")

    @admin.action(description="Retry the selected instructions now", permissions=["operate"])
    def retry_now(self, request, queryset):
        count = instructions_retry_now(instructions=queryset, by=request.user)
        self.message_user(request, f"{count} instruction(s) queued to send now.", messages.SUCCESS)

    @admin.action(description="Cancel the selected instructions (they will not be sent)", permissions=["operate"])
    def cancel_instructions(self, request, queryset):
        response = confirm_action(
            self,
            request,
            queryset,
            action="cancel_instructions",
            title="Cancel instructions",
            question="These instructions will never be sent to Digital River. Instructions already done are "
            "left alone. Cancel them?",
        )
        if response is not None:
            return response
        count = instructions_cancel(instructions=queryset, by=request.user)
        self.message_user(request, f"{count} instruction(s) cancelled.", messages.WARNING)


@admin.register(ApiCall)
class ApiCallAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "method",
        "path",
        "status",
        "duration_ms",
        "error_code",
        "request_id",
        "subject",
    )
    list_filter = ("method", "status", "error_code")
    search_fields = ("path", "=request_id", "=subject")
    date_hierarchy = "started_at"
    list_per_page = 100
    show_full_result_count = False
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "started_at",
                    "method",
                    "path",
                    "query",
                    "status",
                    "duration_ms",
                    "request_id",
                    "subject",
                )
            },
        ),
        ("Error", {"fields": ("error_code", "error_message")}),
        ("Bodies", {"fields": ("request_pretty", "response_pretty")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [*[f.name for f in self.model._meta.fields], "request_pretty", "response_pretty"]

    @admin.display(description="request body")
    def request_pretty(self, obj):
        return pretty_json(obj.request_body) if obj.request_body else "-"

    @admin.display(description="response body")
    def response_pretty(self, obj):
        return pretty_json(obj.response_body) if obj.response_body else "-"

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal
from django.utils.timezone import localtime
from django.utils.translation import ngettext

from core.admin import ReadOnlyAdmin, confirm_action, pretty_json
from core.admin_scale import BigTableAdmin, DistinctValuesFilter, distinct_values

from .models import ApiCall, Attempt, Instruction, WebhookEvent
from .services.inbox import webhook_events_replay
from .services.outbox import instructions_cancel, instructions_retry_now
from .subjects import subject_link, subjects_about

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldOpts, _FieldsetSpec


def short_time(when: datetime) -> str:
    """'27 Nov 13:36': a list's times kept to one short line."""
    return date_format(localtime(when), "j M H:i")


SUBJECT_SEARCH_HELP = "An order id or SKU (e.g. 231388420336, or order:231388420336)"


def search_words(search_term: str) -> list[str]:
    """The words of a search, as Django's admin splits them (a quoted phrase is one word)."""
    return [
        unescape_string_literal(word) if word.startswith(("'", '"')) and word[0] == word[-1] else word
        for word in smart_split(search_term)
    ]


def values_containing(model: type[Model], field_name: str, word: str) -> list[str]:
    """The field's values (an indexed field of few values: a type, a kind) that contain ``word``."""
    return [value for value in distinct_values(model, field_name) if word.lower() in value.lower()]


class _BigLog(BigTableAdmin, ReadOnlyAdmin):
    """The integration's logs, millions of rows each: searched word by word, each word matched only in
    ways an index answers (``matching``), since one ``icontains`` in the search would scan the table.
    ``search_fields`` only shows the search box; each log says how a word matches (``matching``)."""

    matching: Callable[[str], Q]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        for word in search_words(search_term):
            queryset = queryset.filter(self.matching(word))
        return queryset, False


class _AboutSubject(_BigLog):
    """Records about an order or a SKU (``subject``): linked to its page, found by its bare id."""

    @admin.display(description="about", ordering="subject")
    def subject_page(self, obj: Instruction | ApiCall) -> str:
        return subject_link(obj.subject)

    def matching(self, word: str) -> Q:
        return Q(subject__in=subjects_about(word))


@admin.register(WebhookEvent)
class WebhookEventAdmin(_BigLog):
    list_display = ("received_at", "type", "order_page", "state", "short_error", "attempts", "source")
    list_display_links = ("received_at", "type")
    # Sorted only where an index gives the order: by time, or by order (each order's events by time).
    sortable_by = ("received_at", "order_page")
    list_filter = (
        "state",
        ("type", DistinctValuesFilter),
        "source",
        "live_mode",
        ("received_at", admin.DateFieldListFilter),
    )
    search_fields = ("dr_event_id",)
    search_help_text = "A DR order id, an event id or part of an event type."
    list_per_page = 50
    actions = ["replay"]

    def get_fieldsets(self, request: HttpRequest, obj: WebhookEvent | None = None) -> _FieldsetSpec:
        failure: tuple[str | None, _FieldOpts] = ("Failure", {"fields": ("error", "traceback_pretty")})
        rest: _FieldsetSpec = [
            (None, {"fields": ("dr_event_id", "type", "state", "source", "order_page", "live_mode")}),
            ("Times", {"fields": ("dr_created_at", "received_at", "processed_at", "attempts")}),
            ("Payload", {"fields": ("payload_pretty", "headers_pretty")}),
        ]
        # What went wrong is what an operator opened a failed event for: show it first.
        return [failure, *rest] if obj is not None and obj.error else rest

    @admin.display(description="order", ordering="order_id")
    def order_page(self, obj: WebhookEvent) -> str:
        return subject_link(f"order:{obj.order_id}", obj.order_id) if obj.order_id else "-"

    def matching(self, word: str) -> Q:
        # "order:231388420336", as instructions and calls name it, finds the order's events too.
        word = word.removeprefix("order:")
        types = values_containing(WebhookEvent, "type", word)
        return Q(dr_event_id=word) | Q(order_id=word) | Q(type__in=types)

    @admin.display(description="error")
    def short_error(self, obj: WebhookEvent) -> str:
        return obj.error.splitlines()[0][:120] if obj.error else ""

    @admin.display(description="payload")
    def payload_pretty(self, obj: WebhookEvent) -> str:
        return pretty_json(obj.body)

    @admin.display(description="traceback")
    def traceback_pretty(self, obj: WebhookEvent) -> str:
        return format_html('<pre class="dr-json">{}</pre>', obj.traceback) if obj.traceback else "-"

    @admin.display(description="headers")
    def headers_pretty(self, obj: WebhookEvent) -> str:
        return pretty_json(obj.headers)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [
            *[f.name for f in self.model._meta.fields],
            "order_page",
            "payload_pretty",
            "headers_pretty",
            "traceback_pretty",
        ]

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("digitalriver.replay_webhookevent")

    @admin.action(description="Replay the selected events", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
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

    def has_add_permission(self, request: HttpRequest, obj: Attempt | None = None) -> bool:
        return False


@admin.register(Instruction)
class InstructionAdmin(_AboutSubject):
    list_display = ("created", "kind", "subject_page", "state", "last_error_code", "attempts", "next_try")
    sortable_by = ("created", "next_try")
    list_filter = (
        "state",
        ("kind", DistinctValuesFilter),
        "effect_uncertain",
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("subject",)
    search_help_text = f"{SUBJECT_SEARCH_HELP}, part of a kind, or an error code."
    list_per_page = 50
    inlines = [AttemptInline]
    actions = ["retry_now", "cancel_instructions"]
    fieldsets = (
        (None, {"fields": ("kind", "subject_page", "state", "attempts", "next_attempt_at", "effect_uncertain")}),
        ("Outcome", {"fields": ("last_error_code", "last_error", "result_pretty", "finished_at")}),
        ("Payload", {"fields": ("payload_pretty", "created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [*[f.name for f in self.model._meta.fields], "subject_page", "payload_pretty", "result_pretty"]

    def matching(self, word: str) -> Q:
        kinds = values_containing(Instruction, "kind", word)
        return super().matching(word) | Q(kind__in=kinds) | Q(last_error_code=word)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: Instruction) -> str:
        return short_time(obj.created_at)

    @admin.display(description="next attempt", ordering="next_attempt_at")
    def next_try(self, obj: Instruction) -> str:
        waiting = obj.state in (Instruction.State.PENDING, Instruction.State.RETRY_WAIT)
        return short_time(obj.next_attempt_at) if waiting else "-"

    @admin.display(description="payload")
    def payload_pretty(self, obj: Instruction) -> str:
        return pretty_json(obj.payload)

    @admin.display(description="DR's answer")
    def result_pretty(self, obj: Instruction) -> str:
        return pretty_json(obj.result) if obj.result is not None else "-"

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("digitalriver.operate_instruction")

    @admin.action(description="Retry the selected instructions now", permissions=["operate"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Instruction]) -> None:
        count = instructions_retry_now(instructions=queryset, by=request.user)
        self.message_user(request, f"{count} instruction(s) queued to send now.", messages.SUCCESS)

    @admin.action(description="Cancel the selected instructions (they will not be sent)", permissions=["operate"])
    def cancel_instructions(self, request: HttpRequest, queryset: QuerySet[Instruction]) -> TemplateResponse | None:
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
        return None


@admin.register(ApiCall)
class ApiCallAdmin(_AboutSubject):
    list_display = (
        "started_at",
        "method",
        "path",
        "subject_page",
        "status",
        "error_code",
        "duration_ms",
        "request_id",
    )
    sortable_by = ("started_at",)
    list_filter = (
        "method",
        ("status", DistinctValuesFilter),
        ("error_code", DistinctValuesFilter),
        ("started_at", admin.DateFieldListFilter),
    )
    search_fields = ("subject",)
    search_help_text = f"{SUBJECT_SEARCH_HELP}, the start of a path (/fulfillments), or a DR request id."
    list_per_page = 100
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
                    "subject_page",
                )
            },
        ),
        ("Error", {"fields": ("error_code", "error_message")}),
        ("Bodies", {"fields": ("request_pretty", "response_pretty")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [*[f.name for f in self.model._meta.fields], "subject_page", "request_pretty", "response_pretty"]

    def matching(self, word: str) -> Q:
        # Every path starts with "/": "fulfillments" means "/fulfillments".
        path = word if word.startswith("/") else f"/{word}"
        return super().matching(word) | Q(path__startswith=path) | Q(request_id=word)

    @admin.display(description="request body")
    def request_pretty(self, obj: ApiCall) -> str:
        return pretty_json(obj.request_body) if obj.request_body else "-"

    @admin.display(description="response body")
    def response_pretty(self, obj: ApiCall) -> str:
        return pretty_json(obj.response_body) if obj.response_body else "-"

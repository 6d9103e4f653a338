from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from digitalriver.models import WebhookEvent
from digitalriver.selectors import webhook_events_matching
from digitalriver.services.inbox import webhook_event_process, webhook_events_replay


class Command(BaseCommand):
    help = "Process stored webhook events again (all matching, or only failed ones) and report the outcome."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--failed", action="store_true", help="only events whose processing failed")
        parser.add_argument("--type", dest="event_type", help="only events of this type, e.g. order.accepted")
        parser.add_argument("--ids", nargs="+", default=[], help="DR event ids (or local numeric ids)")

    def handle(self, *args: Any, failed: bool, event_type: str | None, ids: list[str], **options: Any) -> None:
        if not (failed or event_type or ids):
            raise CommandError("say which events: --failed, --type T and/or --ids …")
        events = list(webhook_events_matching(failed_only=failed, event_type=event_type, ids=ids))
        if not events:
            self.stdout.write("no stored event matches")
            return
        queued = webhook_events_replay(events=events, enqueue=False)
        states: dict[str, int] = {}

        for event in events:
            outcome = webhook_event_process(event_id=event.pk) or WebhookEvent.objects.get(pk=event.pk)
            states[outcome.state] = states.get(outcome.state, 0) + 1
            if outcome.state == WebhookEvent.State.FAILED:
                first_line = outcome.error.splitlines()[0] if outcome.error else "no error recorded"
                self.stderr.write(f"  {outcome.dr_event_id} ({outcome.type}) failed: {first_line}")
        summary = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
        style = self.style.WARNING if states.get(WebhookEvent.State.FAILED) else self.style.SUCCESS
        self.stdout.write(style(f"replayed {queued} of {len(events)} events: {summary}"))

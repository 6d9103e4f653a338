from django.core.management.base import BaseCommand, CommandError

from digitalriver.models import WebhookEvent
from digitalriver.selectors import webhook_events_matching
from digitalriver.services.inbox import webhook_event_process, webhook_events_replay


class Command(BaseCommand):
    help = "Process stored webhook events again (all matching, or only failed ones) and report the outcome."

    def add_arguments(self, parser):
        parser.add_argument("--failed", action="store_true", help="only events whose processing failed")
        parser.add_argument("--type", dest="event_type", help="only events of this type, e.g. order.accepted")
        parser.add_argument("--ids", nargs="+", default=[], help="DR event ids (or local numeric ids)")

    def handle(self, *args, failed, event_type, ids, **options):
        if not (failed or event_type or ids):
            raise CommandError("say which events: --failed, --type T and/or --ids …")
        events = list(webhook_events_matching(failed_only=failed, event_type=event_type, ids=ids))
        if not events:
            self.stdout.write("no stored event matches")
            return
        queued = webhook_events_replay(events=events, enqueue=False)
        states = {}
        for event in events:
            processed = webhook_event_process(event_id=event.pk)
            state = processed.state if processed else WebhookEvent.objects.get(pk=event.pk).state
            states[state] = states.get(state, 0) + 1
        summary = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
        self.stdout.write(self.style.SUCCESS(f"replayed {queued} of {len(events)} events: {summary}"))

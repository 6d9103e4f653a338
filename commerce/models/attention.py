"""What needs a person on an order, each raised by an event and cleared by the event that resolves
it or by an agent's note: the history the order's boolean flags summarise."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .orders import ATTENTION_FLAGS, FLAGS_BY_FIELD, AttentionFlag, Order


class AttentionItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="attention_items")
    kind = models.CharField(max_length=30, choices=[(flag.field, flag.label) for flag in ATTENTION_FLAGS])
    reason = models.TextField(blank=True, help_text="What happened, in the words of the event that raised it.")
    source = models.CharField(max_length=None, blank=True, help_text="The event or call that raised it.")
    raised_at = models.DateTimeField(default=timezone.now)
    cleared_at = models.DateTimeField(null=True, blank=True, db_index=True)
    cleared_because = models.TextField(blank=True, help_text="The event that resolved it, or the agent's note.")
    cleared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["order", "-raised_at", "-id"]
        constraints = [
            # One open item of a kind per order: raising it again only adds to its reason.
            models.UniqueConstraint(
                fields=["order", "kind"], condition=Q(cleared_at__isnull=True), name="attention_one_open_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.flag.label} on {self.order.dr_order_id}"

    @property
    def flag(self) -> AttentionFlag:
        return FLAGS_BY_FIELD[self.kind]

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None

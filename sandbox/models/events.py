from django.db import models
from django.utils import timezone

from ..timefmt import dr_time


class Event(models.Model):
    """An event as DR keeps it for `GET /events`; `envelope` is the exact body delivered."""

    dr_id = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    order_id = models.CharField(max_length=32, blank=True, db_index=True)
    envelope = models.JSONField()
    created_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.dr_id}"

    def as_dr(self) -> dict:
        return self.envelope


class Webhook(models.Model):
    dr_id = models.CharField(max_length=64, unique=True)
    address = models.URLField(max_length=500)
    types = models.JSONField(default=list)
    api_version = models.CharField(max_length=20, blank=True)
    enabled = models.BooleanField(default=True)
    created_time = models.DateTimeField(default=timezone.now)
    updated_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.address

    def wants(self, event_type: str) -> bool:
        for wanted in self.types:
            if wanted in ("*", event_type):
                return True
            if wanted.endswith(".*") and event_type.startswith(wanted[:-1]):
                return True
        return False

    def as_dr(self) -> dict:
        return {
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            "updatedTime": dr_time(self.updated_time),
            "types": self.types,
            "address": self.address,
            "apiVersion": self.api_version,
            "enabled": self.enabled,
            "liveMode": False,
        }


class Delivery(models.Model):
    """One event to send to one address, retried with backoff until it is acknowledged."""

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"
        DROPPED = "dropped"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    webhook = models.ForeignKey(Webhook, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    address = models.CharField(max_length=500)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_status = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.address}"


class DeliveryAttempt(models.Model):
    """The delivery log: one row per try (or per dropped or duplicated send)."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="log")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=500)
    status_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=30, blank=True, help_text="dropped, duplicate or delayed by the sandbox")
    created_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.status_code or self.error}"

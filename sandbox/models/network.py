from django.db import models


class NetworkSettings(models.Model):
    """The bad network on demand: one row (pk=1), read on every API call and delivery pass.

    It lives in the database so every process (web workers, the delivery loop, tests) sees the
    same settings.
    """

    latency_ms = models.PositiveIntegerField(default=0)
    latency_jitter_ms = models.PositiveIntegerField(default=0)
    slow_rate = models.FloatField(default=0.0, help_text="Share of calls that take slow_ms longer.")
    slow_ms = models.PositiveIntegerField(default=1000)
    error_rate = models.FloatField(default=0.0)
    error_statuses = models.JSONField(default=list)
    error_after_processing = models.FloatField(
        default=0.0, help_text="Share of injected errors returned after the call took effect (ambiguous failures)."
    )
    rate_limit_per_second = models.PositiveIntegerField(
        default=0, help_text="DR's per-key limit (25 in test mode); 0 turns it off."
    )
    fail_next_captures = models.PositiveIntegerField(default=0)
    drop_rate = models.FloatField(default=0.0)
    duplicate_rate = models.FloatField(default=0.0)
    reorder = models.BooleanField(default=False, help_text="Shuffle each batch of due deliveries.")
    delay_rate = models.FloatField(default=0.0)
    delay_seconds = models.PositiveIntegerField(default=5)
    backoff_seconds = models.FloatField(default=5.0)
    max_attempts = models.PositiveIntegerField(default=6)
    refund_delay_seconds = models.FloatField(
        default=3.0, help_text="How long the bank takes to answer a refund (the delivery loop settles it)."
    )

    def __str__(self) -> str:
        return "network settings"


class NetworkRule(models.Model):
    """ "The next `remaining` calls to `path` answer `status`"."""

    path = models.CharField(max_length=300)
    regex = models.BooleanField(default=False)
    method = models.CharField(max_length=10, blank=True)
    status = models.PositiveIntegerField()
    remaining = models.PositiveIntegerField()
    created_time = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.method or '*'} {self.path} -> {self.status} x{self.remaining}"


class RateWindow(models.Model):
    """API calls counted per Unix second, shared by every process, for the rate limit."""

    second = models.BigIntegerField(unique=True)
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.second}: {self.count}"

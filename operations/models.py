"""What the operations team reads: the dashboard (a page, not a table) and the alerts sent to them."""

from django.db import models

from core.models import StoredEmail


class Dashboard(models.Model):
    """No table: the model gives the dashboard its place and link in the admin's app list."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"

    def __str__(self) -> str:
        return "Operations dashboard"


class OperationsAlert(StoredEmail):
    """One digest email to operations covering every failure in a window of time."""

    number = models.PositiveIntegerField(
        unique=True, help_text="Alerts are numbered in order; two runs racing for the same number write one alert."
    )
    covered_from = models.DateTimeField(help_text="Failures after this moment are in this alert…")
    covered_until = models.DateTimeField(help_text="…up to and including this one.")
    counts = models.JSONField(default=dict, help_text="Failures in the window by kind.")

    class Meta:
        ordering = ["-number"]
        verbose_name = "operations alert"

    def __str__(self) -> str:
        return f"Alert #{self.number}: {self.subject}"

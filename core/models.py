"""No tables: the abstract base of every email the app stores before it sends it."""

from django.db import models
from django.utils import timezone


class StoredEmail(models.Model):
    """An email written in the same transaction as the change it reports, then sent after commit;
    a failed try is kept on the row (``attempts``, ``error``) for the periodic sweep."""

    to = models.EmailField()
    subject = models.CharField(max_length=None)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        abstract = True

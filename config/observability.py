"""Error reporting to Sentry, switched on by ``SENTRY_DSN`` (settings call ``sentry_init``)."""

from __future__ import annotations


def sentry_init(dsn: str, *, environment: str = "", traces_sample_rate: float = 0.0) -> bool:
    """Report unhandled errors of requests and Celery tasks to Sentry when ``dsn`` is set; True if so.

    ``send_default_pii=False``: no users, addresses, cookies or request bodies leave with a report.
    """
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        traces_sample_rate=traces_sample_rate,
    )
    return True

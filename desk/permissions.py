"""Who may act on an order, said once for the admin's buttons and the API's actions alike."""

from django.contrib.auth.models import AbstractUser, AnonymousUser

#: "Refresh from DR" re-reads DR's copy and rewrites the order mirror: it takes the right to change
#: orders, and to read them (the refreshed order is shown). Customer service and Operations have both.
REFRESH_ORDER_PERMISSIONS = ("commerce.view_order", "commerce.change_order")


def can_refresh_order(user: AbstractUser | AnonymousUser | None) -> bool:
    return bool(user and user.is_authenticated and user.has_perms(REFRESH_ORDER_PERMISSIONS))

"""An agent marks an attention item as dealt with, saying what was done (the order page's form)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from commerce.attention import AttentionError, attention_acknowledge
from commerce.models import FLAGS_BY_FIELD

if TYPE_CHECKING:
    from .admin import OrderAdmin

ACKNOWLEDGE_PERMISSION = "commerce.acknowledge_attention"


@require_POST
def acknowledge_view(request: HttpRequest, object_id: str, *, admin: OrderAdmin) -> HttpResponseRedirect:
    order = admin.order_or_404(request, object_id)
    if not (admin.has_view_permission(request, order) and request.user.has_perm(ACKNOWLEDGE_PERMISSION)):
        raise PermissionDenied
    kind = request.POST.get("kind", "")
    if kind not in FLAGS_BY_FIELD:
        admin.message_user(request, "Say which attention item was dealt with.", messages.ERROR)
    else:
        try:
            attention_acknowledge(order=order, kind=kind, note=request.POST.get("note", ""), by=request.user)
        except AttentionError as exc:
            admin.message_user(request, str(exc), messages.ERROR)
        else:
            label = FLAGS_BY_FIELD[kind].label
            admin.message_user(
                request, f"“{label}” marked as dealt with; your note is on the timeline.", messages.SUCCESS
            )
    return HttpResponseRedirect(reverse("admin:commerce_order_change", args=[order.pk]))

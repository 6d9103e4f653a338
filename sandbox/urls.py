"""Mounted at /sandbox/ by config.urls only when DR_SANDBOX is on."""

from django.urls import path, re_path

from .views import catalog, control, events, files, fulfillment, orders, page, reversals
from .views.base import unknown_route

app_name = "sandbox"

api = [
    ("skus", catalog.skus),
    ("skus/<str:sku_id>", catalog.sku),
    ("inventory-items", catalog.inventory_items),
    ("inventory-items/<str:item_id>", catalog.inventory_item),
    ("inventory-levels", catalog.inventory_levels),
    ("orders", orders.orders),
    ("orders/<str:order_id>", orders.order),
    ("charges/<str:charge_id>", orders.charge),
    ("sources/<str:source_id>", orders.source),
    ("shipments/<str:shipment_id>", orders.shipment),
    ("fulfillments", orders.fulfillments),
    ("fulfillments/<str:fulfillment_id>", orders.fulfillment),
    ("fulfillment-orders", fulfillment.fulfillment_orders),
    ("fulfillment-orders/<str:fulfillment_order_id>", fulfillment.fulfillment_order),
    ("fulfillment-cancellations", fulfillment.cancellations),
    ("fulfillment-cancellations/<str:cancellation_id>", fulfillment.cancellation),
    ("fulfillment-returns", reversals.fulfillment_returns),
    ("fulfillment-returns/<str:return_id>", reversals.fulfillment_return),
    ("returns", reversals.returns_list),
    ("returns/<str:return_id>", reversals.return_detail),
    ("refunds", reversals.refunds_list),
    ("refunds/<str:refund_id>", reversals.refund_detail),
    ("files/<str:file_id>", files.file),
    ("files/<str:file_id>/content", files.file_content),
    ("file-links", files.file_links),
    ("file-links/<str:link_id>", files.file_link),
    ("events", events.events),
    ("events/<str:event_id>", events.event),
    ("webhooks", events.webhooks),
    ("webhooks/<str:webhook_id>", events.webhook),
]

urlpatterns = [
    *(path(f"api/{route}", view) for route, view in api),
    # Anything else under the API answers DR's 404 body (after the bearer check and the bad network).
    re_path(r"^api/.*$", unknown_route),
    path("control/", control.control, name="control"),
    # A file link's public URL: no key, outside the API (and its bad network).
    path("links/<str:link_id>", files.public_link, name="file_link"),
    path("", page.index, name="index"),
    path("actions/<str:action>/", page.action, name="action"),
]

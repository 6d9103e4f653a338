"""Finding an order by part of a tracking number (desk.selectors.orders_matching)."""

from django.db import migrations

from core.trigram import trigram_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("commerce", "0003_search_indexes"),
        ("fulfillment", "0002_returns"),
    ]

    operations = [
        trigram_indexes("fulfillment", "shipment", ("tracking_number",)),
        trigram_indexes("fulfillment", "drfulfillment", ("tracking_number",)),
    ]

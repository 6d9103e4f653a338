"""Finding an order by part of its ids, email or name, or by a SKU (desk.selectors.orders_matching)."""

from django.db import migrations, models

from core.trigram import TrigramExtension, trigram_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("commerce", "0002_reversals_and_attention"),
    ]

    operations = [
        TrigramExtension(),
        trigram_indexes("commerce", "order", ("dr_order_id",), any_case=False),
        trigram_indexes("commerce", "order", ("upstream_id", "email", "customer_name")),
        migrations.AddIndex(
            model_name="orderline",
            index=models.Index(fields=["dr_sku_id"], name="orderline_dr_sku_id"),
        ),
    ]

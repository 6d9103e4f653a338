from django.db import models
from django.utils import timezone

from ..timefmt import dr_time


class Sku(models.Model):
    """A SKU as DR stores it. `data` holds the validated fields in DR's camelCase."""

    dr_id = models.CharField(max_length=100, unique=True)
    data = models.JSONField(default=dict)
    created_time = models.DateTimeField(default=timezone.now)
    updated_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.dr_id

    @property
    def name(self) -> str:
        return self.data.get("name", "")

    @property
    def managed(self) -> bool:
        return self.data.get("managedFulfillment") == "DRGlobalFulfillment"

    @property
    def physical(self) -> bool:
        return bool(self.data.get("physical"))

    def as_dr(self) -> dict:
        # An unmanaged SKU has no managedFulfillment at all (the spec allows only "DRGlobalFulfillment").
        return {
            "id": self.dr_id,
            **{key: value for key, value in self.data.items() if value is not None},
            "createdTime": dr_time(self.created_time),
            "updatedTime": dr_time(self.updated_time),
            "liveMode": False,
        }


class InventoryItem(models.Model):
    dr_id = models.CharField(max_length=100, unique=True)
    data = models.JSONField(default=dict)
    managed = models.BooleanField(
        default=False, help_text="Created by DR for a SKU with managedFulfillment; clients may not edit it."
    )
    created_time = models.DateTimeField(default=timezone.now)
    updated_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.dr_id

    def as_dr(self) -> dict:
        return {
            "id": self.dr_id,
            **self.data,
            "createdTime": dr_time(self.created_time),
            "updatedTime": dr_time(self.updated_time),
            "liveMode": False,
        }


class InventoryLevel(models.Model):
    """Stock of one inventory item in one warehouse (the sandbox page edits it)."""

    inventory_item = models.ForeignKey(InventoryItem, on_delete=models.CASCADE, related_name="levels")
    location_id = models.CharField(max_length=64)
    available_quantity = models.IntegerField(default=0)
    available_time = models.DateTimeField(null=True, blank=True)
    updated_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["inventory_item_id", "location_id"]
        constraints = [
            models.UniqueConstraint(fields=["inventory_item", "location_id"], name="sandbox_level_unique_location")
        ]

    def __str__(self) -> str:
        return f"{self.inventory_item.dr_id}@{self.location_id}"

    def as_dr(self) -> dict:
        return {
            "locationId": self.location_id,
            "inventoryItemId": self.inventory_item.dr_id,
            "available": self.available_quantity > 0 or bool(self.inventory_item.data.get("allowOversell")),
            "availableQuantity": self.available_quantity,
            # Left out when unknown: the spec's availableTime is a date-time string, never null.
            **({"availableTime": dr_time(self.available_time)} if self.available_time else {}),
            "updatedTime": dr_time(self.updated_time),
        }

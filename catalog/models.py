"""SKU-inventory item pairs: our values, what we last pushed, what DR last showed us."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Self

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django_countries.fields import CountryField
from django_fsm import FSMField, FSMModelMixin, transition
from django_fsm_log.decorators import fsm_log_by, fsm_log_description

from core.types import Actor

from . import rules

# The one wording of the id rule: the admin shows it beside a pushed SKU's id, and the API, the CSV
# import and the services all get it from Sku.clean().
SKU_ID_FIXED_MESSAGE = "The SKU id cannot change once the SKU was pushed: create a new SKU."


class Sku(FSMModelMixin, models.Model):
    class FulfillmentModel(models.TextChoices):
        DISTRIBUTED = "distributed", "Distributed (our warehouse, DR coordinates)"
        ORCHESTRATED = "orchestrated", "Orchestrated (DR Global Fulfillment)"
        THIRD_PARTY = "third_party", "Third party (our logistics partner)"
        DIGITAL = "digital", "Digital (no shipping)"

    class SyncState(models.TextChoices):
        DRAFT = "draft", "Draft (never pushed)"
        QUEUED = "queued", "Queued for push"
        SYNCED = "synced", "Synced"
        OUT_OF_SYNC = "out_of_sync", "Out of sync"
        FAILED = "failed", "Push failed"

    class WeightUnit(models.TextChoices):
        OZ = "oz", "oz"
        LB = "lb", "lb"
        G = "g", "g"
        KG = "kg", "kg"

    sku_id = models.CharField(
        "SKU id", max_length=100, unique=True, help_text="Also the inventory item's id. Only 0-9 A-Z a-z . _ -"
    )
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, max_length=rules.DESCRIPTION_MAX)
    fulfillment_model = models.CharField(
        max_length=20, choices=FulfillmentModel.choices, default=FulfillmentModel.DISTRIBUTED, db_index=True
    )
    tax_code = models.CharField(max_length=50, blank=True, help_text="DR's tax code; it decides physical vs digital.")
    eccn = models.CharField("ECCN", max_length=20, blank=True, help_text="Export control classification, e.g. EAR99.")
    hs_code = models.CharField("HS code", max_length=12, blank=True, help_text="####.##.####")
    country_of_origin = CountryField(blank=True)
    part_number = models.CharField(max_length=100, blank=True, db_index=True)
    manufacturer_id = models.CharField("manufacturer id", max_length=100, blank=True)
    weight = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    weight_unit = models.CharField(max_length=2, choices=WeightUnit.choices, default=WeightUnit.OZ)
    image = models.URLField(blank=True, max_length=500)
    url = models.URLField("product page", blank=True, max_length=500)
    item_breadcrumb = models.CharField(max_length=500, blank=True, help_text="'A > B', several joined by ';'")
    sku_group_id = models.CharField("SKU group", max_length=100, blank=True)
    allow_oversell = models.BooleanField(default=False)

    sync_state = FSMField(default=SyncState.DRAFT, choices=SyncState.choices, protected=True, db_index=True)
    sync_error = models.TextField(blank=True, help_text="DR's message when the last push failed.")
    pushed_at = models.DateTimeField("last pushed", null=True, blank=True)
    pushed_values = models.JSONField(null=True, blank=True, help_text="The SKU body we last pushed.")
    pushed_model = models.CharField(max_length=20, choices=FulfillmentModel.choices, blank=True)
    dr_sku = models.JSONField("DR's SKU", null=True, blank=True)
    dr_inventory_item = models.JSONField("DR's inventory item", null=True, blank=True)
    fetched_at = models.DateTimeField("last fetched from DR", null=True, blank=True)
    drift = models.JSONField(default=list, blank=True, help_text="Fields where DR differs from us, last checked.")
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    stock_levels = models.JSONField(
        null=True, blank=True, help_text="DR's stock rows per warehouse, as last fetched; null until fetched."
    )
    stock_fetched_at = models.DateTimeField("stock last fetched from DR", null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku_id"]
        verbose_name = "SKU"
        indexes = [models.Index(fields=["sync_state", "pushed_at"])]
        permissions = [("push_sku", "Can push SKUs to Digital River and repair drift")]

    # Set by save(), from_db() and refresh_from_db(); None when the id was deferred.
    _stored_sku_id: str | None

    def __str__(self) -> str:
        return f"{self.sku_id} · {self.name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "sku_id" in update_fields:
            self._stored_sku_id = self.sku_id

    @classmethod
    def from_db(  # type: ignore[override]  # django-stubs 6 adds Django 6.0's fetch_mode; 5.2's from_db has none
        cls, db: str | None, field_names: Collection[str], values: Collection[Any]
    ) -> Self:
        instance = super().from_db(db, field_names, values)
        # The id as stored, so the id rule compares against it without a query per clean() (the CSV
        # import cleans every row of a file).
        stored = dict(zip(field_names, values, strict=True)).get("sku_id", models.DEFERRED)
        instance._stored_sku_id = None if stored is models.DEFERRED else stored
        return instance

    def refresh_from_db(
        self,
        using: str | None = None,
        fields: Iterable[str] | None = None,
        from_queryset: models.QuerySet[Self] | None = None,
    ) -> None:
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        if fields is None or "sku_id" in fields:
            self._stored_sku_id = self.sku_id

    @property
    def sku_id_is_fixed(self) -> bool:
        """DR keeps the SKU and its inventory item under this id once pushed (or queued to be): a new
        id would orphan both, and a queued push would look for a SKU that no longer exists."""
        return self.pk is not None and self.sync_state != self.SyncState.DRAFT

    @property
    def is_physical(self) -> bool:
        return self.fulfillment_model != self.FulfillmentModel.DIGITAL

    @property
    def physical_at_dr(self) -> bool | None:
        """DR's classification of the tax code (its read-only `physical`), None until DR answered."""
        physical = (self.dr_sku or {}).get("physical")
        return physical if isinstance(physical, bool) else None

    @property
    def classification_mismatch(self) -> str:
        """What is wrong when DR's classification contradicts the fulfillment model, else ""."""
        if self.physical_at_dr is None or self.physical_at_dr == self.is_physical:
            return ""
        if self.physical_at_dr:
            return f"DR classifies tax code {self.tax_code} as physical goods, but this SKU is set up as digital."
        return f"DR classifies tax code {self.tax_code} as digital, but this SKU is set up to ship goods."

    @property
    def has_inventory_item_of_ours(self) -> bool:
        """Distributed SKUs have an inventory item that we create and keep in step."""
        return self.fulfillment_model == self.FulfillmentModel.DISTRIBUTED

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        # The sync state moves only through its transitions; a protected FSMField refuses the
        # re-assignment that field cleaning would make.
        super().clean_fields(exclude={*(exclude or ()), "sync_state"})

    def clean(self) -> None:
        values = {field.attname: getattr(self, field.attname) for field in self._meta.concrete_fields}
        values["country_of_origin"] = str(self.country_of_origin or "")
        errors = rules.sku_errors(values)
        stored_id = getattr(self, "_stored_sku_id", None)
        if self.sku_id_is_fixed and stored_id is not None and self.sku_id != stored_id:
            errors.setdefault("sku_id", []).append(SKU_ID_FIXED_MESSAGE)
        if errors:
            raise ValidationError(errors)

    @fsm_log_by
    @fsm_log_description
    @transition(
        field=sync_state,
        source=[SyncState.DRAFT, SyncState.SYNCED, SyncState.OUT_OF_SYNC, SyncState.FAILED, SyncState.QUEUED],
        target=SyncState.QUEUED,
    )
    def queue_push(self, by: Actor = None, description: str | None = None) -> None:
        self.sync_error = ""

    @fsm_log_description
    @transition(
        field=sync_state,
        # A second push of the same values (one requested while the first was on its way) may
        # land on an already synced SKU; drift found meanwhile is repaired by it too.
        source=[SyncState.QUEUED, SyncState.FAILED, SyncState.SYNCED, SyncState.OUT_OF_SYNC],
        target=SyncState.SYNCED,
    )
    def mark_synced(
        self,
        *,
        pushed: dict,
        model: str,
        dr_sku: dict | None,
        dr_inventory_item: dict | None,
        description: str | None = None,
    ) -> None:
        now = timezone.now()
        self.pushed_at = now
        self.pushed_values = pushed
        self.pushed_model = model
        self.dr_sku = dr_sku
        self.dr_inventory_item = dr_inventory_item
        self.fetched_at = now
        self.drift = []
        self.drift_checked_at = now
        self.sync_error = ""

    @fsm_log_description
    @transition(
        field=sync_state,
        source=[SyncState.QUEUED, SyncState.SYNCED, SyncState.OUT_OF_SYNC, SyncState.FAILED],
        target=SyncState.FAILED,
    )
    def mark_push_failed(self, *, error: str, description: str | None = None) -> None:
        self.sync_error = error

    @fsm_log_by
    @fsm_log_description
    @transition(field=sync_state, source=[SyncState.SYNCED, SyncState.OUT_OF_SYNC], target=SyncState.OUT_OF_SYNC)
    def mark_out_of_sync(self, by: Actor = None, description: str | None = None) -> None:
        return None


# What a merchandiser edits (admin, API, CSV); the rest is sync state and DR's copies.
MERCHANDISER_FIELDS = (
    "sku_id",
    "name",
    "description",
    "fulfillment_model",
    "tax_code",
    "eccn",
    "hs_code",
    "country_of_origin",
    "part_number",
    "manufacturer_id",
    "weight",
    "weight_unit",
    "image",
    "url",
    "item_breadcrumb",
    "sku_group_id",
    "allow_oversell",
)

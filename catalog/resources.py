"""CSV import and export of SKUs, keyed by SKU id, checked row by row against DR's rules.

An import only ever writes what a merchandiser edits: sync state and DR's copies are not columns
that can be imported. New rows become drafts; a row that edits a SKU DR already has is treated like
an admin edit (pushed again, or marked out of sync), once the import is confirmed.

An exported value that a spreadsheet would read as a formula (OWASP's CSV injection: it starts with
= + - @, a tab or a carriage return) gets a leading single quote, so it is shown as text; an import
takes that quote off again, so an exported file imports back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import InvalidOperation
from typing import TYPE_CHECKING, Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone
from import_export import fields, resources
from import_export.instance_loaders import CachedInstanceLoader
from import_export.results import RowResult

from . import services
from .models import MERCHANDISER_FIELDS, Sku

if TYPE_CHECKING:
    from import_export.results import Result

IMPORTABLE_FIELDS = MERCHANDISER_FIELDS


UPDATE_BATCH_SIZE = 100

#: Above this many rows the confirm page says roughly how long the import takes.
LARGE_FILE_ROWS = 500
#: A conservative pace for the estimate: a 2,000-row file imports in about a second on a developer
#: machine (SQLite); half that leaves room for a busy server and a PostgreSQL round trip.
ROWS_PER_SECOND = 1000

#: What starts a formula in Excel, LibreOffice or Google Sheets (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: Any) -> Any:
    """The value as text a spreadsheet will not evaluate. django-import-export's own
    IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT only drops one leading '=' (so '==1+1' stays a formula)."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) else value


def unescape_formula(value: Any) -> Any:
    """The inverse of escape_formula, for a file that was exported here."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_TRIGGERS):
        return value[1:]
    return value


@dataclass(frozen=True)
class RejectedValue:
    """One thing wrong with one row of a file, as the import report lists it."""

    row: int
    field: str
    value: str
    message: str


@dataclass(frozen=True)
class ImportCounts:
    """What confirming the previewed file will do, as the confirm page says it before the click."""

    rows: int
    importing: int
    rejected: int
    unchanged: int

    @property
    def seconds_estimate(self) -> int | None:
        """Roughly how long confirming takes, for a file large enough to make someone wait."""
        if self.rows <= LARGE_FILE_ROWS:
            return None
        return max(1, -(-self.rows // ROWS_PER_SECOND))


class SkuResource(resources.ModelResource):
    # Exported so a spreadsheet shows where each SKU stands; ignored when the file comes back.
    sync_state = fields.Field(attribute="sync_state", column_name="sync_state", readonly=True)

    class Meta:
        model = Sku
        fields = (*IMPORTABLE_FIELDS, "sync_state")
        import_id_fields = ("sku_id",)
        # One query loads every SKU the file names, instead of one per row.
        instance_loader_class = CachedInstanceLoader
        use_bulk = True
        batch_size = 1000
        skip_unchanged = True
        report_skipped = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._first_row_of: dict[str, int | None] = {}
        self._changes_of: dict[str, list[str]] = {}
        self._edited_after_push: list[tuple[Sku, list[str]]] = []
        self.rejected: list[RejectedValue] = []
        self.rejected_rows: list[int] = []
        self.imported: list[Sku] = []

    def export_field(self, field: fields.Field, instance: Sku, **kwargs: Any) -> Any:
        return escape_formula(super().export_field(field, instance, **kwargs))

    def before_import_row(self, row: dict[str, Any], **kwargs: Any) -> None:
        super().before_import_row(row, **kwargs)
        for column, value in row.items():
            row[column] = unescape_formula(value)

    def get_import_fields(self) -> list[fields.Field]:
        # Export-only columns are neither offered on the import page nor shown in its preview.
        return [field for field in super().get_import_fields() if not field.readonly]

    def import_field(
        self, field: fields.Field, instance: Sku, row: dict[str, Any], is_m2m: bool = False, **kwargs: Any
    ) -> None:
        try:
            super().import_field(field, instance, row, is_m2m, **kwargs)
        except (InvalidOperation, TypeError) as exc:  # the decimal widget's answer to "heavy"
            raise ValueError(f"'{row.get(field.column_name)}' is not a number") from exc

    def import_row(self, row: dict[str, Any], instance_loader: Any, **kwargs: Any) -> RowResult:
        """A row that breaks the rules is reported (each of its errors) and skipped; the others import."""
        row_result = super().import_row(row, instance_loader, **kwargs)
        if row_result.validation_error is not None:
            number = int(kwargs.get("row_number") or 0)
            self.rejected_rows.append(number)
            for field, messages in row_result.validation_error.message_dict.items():
                value = "" if field == NON_FIELD_ERRORS else str(row.get(field) or "")
                for message in messages:
                    self.rejected.append(
                        RejectedValue(number, "" if field == NON_FIELD_ERRORS else field, value, message)
                    )
            row_result.validation_error = None
            row_result.import_type = RowResult.IMPORT_TYPE_SKIP
            row_result.rejected_row = number  # the preview marks it
        return row_result

    def import_instance(self, instance: Sku, row: dict[str, Any], **kwargs: Any) -> None:
        """Set the row's values, noting which changed and refusing a SKU id the file already used."""
        before = {name: getattr(instance, name) for name in IMPORTABLE_FIELDS}
        errors: dict[str, list[Any]] = {}  # Django's ValidationErrors, and messages of ours
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        row_number = kwargs.get("row_number")
        first_row = self._first_row_of.setdefault(instance.sku_id, row_number)
        if first_row != row_number:
            errors.setdefault("sku_id", []).append(
                f"'{instance.sku_id}' is also on row {first_row}: a file may name each SKU once."
            )
        changed = [name for name in IMPORTABLE_FIELDS if getattr(instance, name) != before[name]]
        self._changes_of[instance.sku_id] = changed
        if errors:
            raise ValidationError(errors)

    def validate_instance(
        self,
        instance: Sku,
        import_validation_errors: dict[str, list[ValidationError]] | None = None,
        validate_unique: bool = True,
    ) -> None:
        errors = dict(import_validation_errors or {})
        try:
            # Uniqueness of sku_id is settled without a query per row: the instance loader turns
            # known ids into updates and import_instance refuses an id repeated within the file.
            # The country is left to DR's rules in clean(): the field's own check walks all ~250
            # countries for every row and would say the same thing less clearly.
            instance.full_clean(exclude={*errors, "country_of_origin"}, validate_unique=False)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def bulk_update(
        self,
        using_transactions: bool,
        dry_run: bool,
        raise_errors: bool,
        batch_size: int | None = None,
        result: Result | None = None,
    ) -> None:
        # bulk_update writes one CASE per column with a branch per row, which databases evaluate
        # row by row: small statements are much faster than one per thousand rows.
        super().bulk_update(using_transactions, dry_run, raise_errors, batch_size=UPDATE_BATCH_SIZE, result=result)

    def get_bulk_update_fields(self) -> list[str]:
        # Only the columns some row of the batch changes: bulk_update's cost grows with rows times
        # columns, and writing back sync_state would undo a push that finished meanwhile.
        changed = {name for sku in self.update_instances for name in self._changes_of.get(sku.sku_id, ())}
        return [name for name in IMPORTABLE_FIELDS if name in changed] + ["updated_at"]

    def before_save_instance(self, instance: Sku, row: dict[str, Any], **kwargs: Any) -> None:
        instance.updated_at = timezone.now()  # bulk_update leaves auto_now fields alone

    def after_save_instance(self, instance: Sku, row: dict[str, Any], **kwargs: Any) -> None:
        self.imported.append(instance)
        if instance.pk and instance.sync_state != Sku.SyncState.DRAFT:
            self._edited_after_push.append((instance, self._changes_of.get(instance.sku_id, [])))

    def after_import(self, dataset: Any, result: Result, **kwargs: Any) -> None:
        super().after_import(dataset, result, **kwargs)
        result.rejected = self.rejected  # read by the import report
        result.rejected_rows = self.rejected_rows
        importing = result.totals["new"] + result.totals["update"]
        rejected = len(self.rejected_rows)
        result.counts = ImportCounts(
            rows=result.total_rows, importing=importing, rejected=rejected, unchanged=result.totals["skip"] - rejected
        )
        if kwargs.get("dry_run") or result.has_errors() or result.has_validation_errors():
            return  # nothing is kept, so nothing is edited as far as DR is concerned
        for sku, changed_fields in self._edited_after_push:
            services.sku_after_admin_save(sku=sku, changed_fields=changed_fields, by=kwargs.get("user"))
        if kwargs.get("push_after_import"):
            drafts = [sku for sku in self.imported if sku.sync_state == Sku.SyncState.DRAFT]
            result.push_outcome = services.skus_push(skus=drafts, by=kwargs.get("user"))

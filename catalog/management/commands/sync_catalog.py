"""Push the catalog to DR, or check it against DR, from the command line."""

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog import services
from catalog.models import Sku
from digitalriver.client import get_client


class Command(BaseCommand):
    help = (
        "Push SKUs that are out of sync or failed (--all: every SKU) and report how each push ended; "
        "or, with --check-drift, compare every pushed SKU with DR's copy and report the differences."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="push every SKU, drafts and synced ones included")
        parser.add_argument(
            "--check-drift", action="store_true", help="push nothing; compare every pushed SKU with DR's copy"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["all"] and options["check_drift"]:
            raise CommandError("--all pushes and --check-drift only checks: run them one at a time.")
        try:
            get_client()  # before anything is queued: a push that cannot be sent would only wait
        except ImproperlyConfigured as exc:
            raise CommandError(f"Digital River is not configured: {exc}") from exc
        if options["check_drift"]:
            self._check_drift()
        else:
            self._push(include_synced=options["all"])

    def _push(self, *, include_synced: bool) -> None:
        report = services.skus_sync(include_synced=include_synced)
        for refusal in report.refused:
            self.stdout.write(self.style.ERROR(str(refusal)))
        if not report.pushed:
            what = "SKUs" if include_synced else "SKUs out of sync or failed"
            if report.refused:
                self.stdout.write(self.style.ERROR(f"No {what} pushed: {len(report.refused)} break DR's rules."))
            else:
                self.stdout.write(f"No {what} to push.")
            return
        for sku_id, message in report.errors.items():
            self.stdout.write(f"{sku_id}: failed: {message}")
        for sku_id in report.by_state.get(Sku.SyncState.QUEUED, []):
            self.stdout.write(f"{sku_id}: still queued (a retry after a temporary failure at DR, or another sender)")
        summary = (
            f"Pushed {report.pushed} SKUs: {report.count(Sku.SyncState.SYNCED)} synced, "
            f"{report.count(Sku.SyncState.FAILED)} failed, {report.count(Sku.SyncState.QUEUED)} still queued."
        )
        if report.refused:
            summary += f" {len(report.refused)} not pushed: they break DR's rules."
        failed = report.errors or report.refused
        self.stdout.write(self.style.ERROR(summary) if failed else self.style.SUCCESS(summary))

    def _check_drift(self) -> None:
        scan = services.skus_drift_fetch()
        for report in scan.reports:
            if report.error:
                line = f"{report.sku.sku_id}: could not check: {report.error}"
            elif report.drifted:
                line = f"{report.sku.sku_id}: drift in " + "; ".join(_describe(row) for row in report.rows)
            else:
                line = f"{report.sku.sku_id}: in step"
            self.stdout.write(line)
        counts = scan.counts()
        self.stdout.write(
            f"Checked {counts['checked']} SKUs: {counts['in_step']} in step, {counts['drifted']} drifted, "
            f"{counts['errors']} could not be checked."
        )


def _describe(row: dict) -> str:
    sides = [f"ours {row['ours']!r}", f"DR's SKU {row['sku']!r}"]
    if row["inventory_item"] is not None:
        sides.append(f"inventory item {row['inventory_item']!r}")
    return f"{row['field']} ({', '.join(sides)})"

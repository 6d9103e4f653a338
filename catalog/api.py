"""`/api/skus/…` (the README's REST API table): SKUs as JSON in snake_case, validated by DR's rules.

Views are thin: every write goes through the catalog services, so an edit over the API queues a
push exactly as one in the admin does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from . import rules, services
from .models import MERCHANDISER_FIELDS as EDITABLE_FIELDS
from .models import Sku

if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission

SYNC_FIELDS = ("sync_state", "sync_error", "pushed_at", "fetched_at", "drift_checked_at")

SKU_EXAMPLE = {
    "sku_id": "WIDGET-1",
    "name": "Widget",
    "description": "A physical widget",
    "fulfillment_model": "distributed",
    "tax_code": "4512.1",
    "eccn": "EAR99",
    "hs_code": "8471.30.0100",
    "country_of_origin": "US",
    "part_number": "PN-1",
    "manufacturer_id": "MFR-1",
    "weight": "12.500",
    "weight_unit": "oz",
    "image": "https://example.com/widget.png",
    "url": "https://example.com/widget",
    "item_breadcrumb": "Tools > Widgets",
    "sku_group_id": "",
    "allow_oversell": False,
}
SKU_OUTPUT_EXAMPLE = {
    **SKU_EXAMPLE,
    "sync_state": "synced",
    "sync_error": "",
    "pushed_at": "2026-11-20T10:00:02Z",
    "fetched_at": "2026-11-20T10:00:02Z",
    "drift_checked_at": "2026-11-20T10:00:02Z",
    "created_at": "2026-11-20T10:00:00Z",
    "updated_at": "2026-11-20T10:00:02Z",
}
ERROR_EXAMPLE = {"hs_code": ["'84713' is not a valid HS code: write ####.##.#### (the first six digits are required)."]}


class SkuSerializer(serializers.ModelSerializer):
    # Plain text here so that DR's rules (catalog.rules), not generic choice errors, word each refusal.
    fulfillment_model = serializers.CharField(
        required=False,
        default=Sku.FulfillmentModel.DISTRIBUTED,
        help_text=f"One of {', '.join(Sku.FulfillmentModel.values)}.",
    )
    country_of_origin = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="ISO 3166-1 alpha-2, e.g. US."
    )
    weight_unit = serializers.CharField(
        required=False, default=Sku.WeightUnit.OZ, help_text=f"One of {', '.join(Sku.WeightUnit.values)}."
    )
    hs_code = serializers.CharField(required=False, allow_blank=True, default="", help_text="####.##.####")

    class Meta:
        model = Sku
        fields = (*EDITABLE_FIELDS, *SYNC_FIELDS, "created_at", "updated_at")
        read_only_fields = (*SYNC_FIELDS, "created_at", "updated_at")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Whether the id may change is the model's rule (Sku.clean, through the service): 400 from there.
        base = self.instance or Sku()
        values = {name: getattr(base, name) for name in EDITABLE_FIELDS} | attrs
        errors = rules.sku_errors(values)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class DriftRowSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="DR's key, e.g. hsCode, or sku/inventoryItem when one is missing.")
    ours = serializers.JSONField(help_text="Our value, as we would send it.")
    sku = serializers.JSONField(help_text="DR's SKU's value.")
    inventory_item = serializers.JSONField(help_text="DR's inventory item's value (shared attributes only).")


class SkuDriftSerializer(serializers.Serializer):
    sku_id = serializers.CharField()
    drifted = serializers.BooleanField()
    sync_state = serializers.CharField()
    checked_at = serializers.DateTimeField(allow_null=True, help_text="When DR was last asked; null if never.")
    rows = DriftRowSerializer(many=True)


DRIFT_EXAMPLE = {
    "sku_id": "WIDGET-1",
    "drifted": True,
    "sync_state": "out_of_sync",
    "checked_at": "2026-11-21T03:00:00Z",
    "rows": [{"field": "hsCode", "ours": "8471.30.0100", "sku": "9999.99.9999", "inventory_item": "8471.30.0100"}],
}
PUSH_REFUSED_EXAMPLE = {
    "detail": "WIDGET-1 was not pushed: part_number: A part number is required for its inventory item.",
    "fields": {"part_number": ["A part number is required for its inventory item."]},
}


SYNC_STATE_RESPONSE = inline_serializer(
    "SkuSyncState",
    {
        "sku_id": serializers.CharField(),
        "sync_state": serializers.ChoiceField(choices=Sku.SyncState.choices),
        "sync_error": serializers.CharField(),
        "pushed_at": serializers.DateTimeField(allow_null=True),
    },
)


class SkuModelPermissions(permissions.DjangoModelPermissions):
    """Reading needs the view permission too: the catalog is not for every signed-in user."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


class CanPushSkus(permissions.BasePermission):
    message = "Pushing SKUs and checking them against Digital River needs the catalog.push_sku permission."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perm("catalog.push_sku"))


FILTERS = [
    OpenApiParameter("sync_state", OpenApiTypes.STR, enum=Sku.SyncState.values, description="Only this sync state."),
    OpenApiParameter(
        "fulfillment_model", OpenApiTypes.STR, enum=Sku.FulfillmentModel.values, description="Only this model."
    ),
]


@extend_schema_view(
    list=extend_schema(
        summary="List SKUs",
        description="Filter by sync state and fulfillment model; `search` matches id, name and part number.",
        parameters=FILTERS,
    ),
    retrieve=extend_schema(
        summary="One SKU",
        examples=[OpenApiExample("A synced SKU", value=SKU_OUTPUT_EXAMPLE, response_only=True)],
    ),
    create=extend_schema(
        summary="Create a SKU (a draft: nothing goes to DR until it is pushed)",
        examples=[
            OpenApiExample("A distributed SKU", value=SKU_EXAMPLE, request_only=True),
            OpenApiExample("Refused by DR's rules", value=ERROR_EXAMPLE, response_only=True, status_codes=["400"]),
        ],
    ),
    update=extend_schema(
        summary="Replace a SKU's values (a pushed SKU is pushed again, or marked out of sync)",
        examples=[OpenApiExample("New values", value=SKU_EXAMPLE, request_only=True)],
    ),
    partial_update=extend_schema(
        summary="Change some of a SKU's values",
        examples=[OpenApiExample("A new HS code", value={"hs_code": "8471.41.0000"}, request_only=True)],
    ),
    destroy=extend_schema(summary="Delete a SKU here and, if it was pushed, at DR (with its inventory item)"),
)
class SkuViewSet(viewsets.ModelViewSet):
    serializer_class = SkuSerializer
    permission_classes = [SkuModelPermissions]
    lookup_field = "sku_id"
    lookup_value_regex = r"[0-9A-Za-z._-]+"
    filter_backends = [SearchFilter, OrderingFilter]
    search_fields = ["sku_id", "name", "part_number"]
    ordering_fields = ["sku_id", "name", "pushed_at", "updated_at"]
    ordering = ["sku_id"]

    def get_queryset(self) -> QuerySet[Sku]:
        queryset = Sku.objects.all()
        if self.action != "list":
            return queryset
        for parameter, choices in (
            ("sync_state", Sku.SyncState.values),
            ("fulfillment_model", Sku.FulfillmentModel.values),
        ):
            value = self.request.query_params.get(parameter)
            if value is None:
                continue
            if value not in choices:
                raise serializers.ValidationError({parameter: [f"'{value}' is not one of {', '.join(choices)}."]})
            queryset = queryset.filter(**{parameter: value})
        return queryset

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        # Reading the last known drift is a read like any other (the view permission); asking DR
        # now and pushing need catalog.push_sku.
        if self.action in ("sync", "drift_fetch"):
            return [permissions.IsAuthenticated(), CanPushSkus()]
        return super().get_permissions()

    def perform_create(self, serializer: BaseSerializer[Sku]) -> None:
        with _as_api_errors():
            serializer.instance = services.sku_create(values=serializer.validated_data, by=self.request.user)

    def perform_update(self, serializer: BaseSerializer[Sku]) -> None:
        assert serializer.instance is not None  # an update is always of the object the view fetched
        with _as_api_errors():
            serializer.instance = services.sku_update(
                sku=serializer.instance, values=serializer.validated_data, by=self.request.user
            )

    def perform_destroy(self, instance: Sku) -> None:
        services.sku_delete(sku=instance, by=self.request.user)

    @extend_schema(
        summary="Queue a push of the SKU's current values to DR",
        description="Refused (409) when the SKU's values break DR's rules: `detail` says so in the admin's "
        "words and `fields` maps each breached field to its rules.",
        request=None,
        responses={
            202: SYNC_STATE_RESPONSE,
            409: OpenApiResponse(
                inline_serializer(
                    "SkuPushRefused",
                    {"detail": serializers.CharField(), "fields": serializers.DictField(child=serializers.ListField())},
                ),
                description="The SKU breaks DR's rules; nothing was queued.",
            ),
        },
        examples=[
            OpenApiExample(
                "Queued",
                value={"sku_id": "WIDGET-1", "sync_state": "queued", "sync_error": "", "pushed_at": None},
                response_only=True,
                status_codes=["202"],
            ),
            OpenApiExample("Refused", value=PUSH_REFUSED_EXAMPLE, response_only=True, status_codes=["409"]),
        ],
    )
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, sku_id: str | None = None) -> Response:
        sku = self.get_object()
        outcome = services.skus_push(skus=[sku], by=request.user)
        if outcome.refused:
            [refusal] = outcome.refused
            # The admin's words in `detail`; `fields` names each breached field for a program to act on.
            return Response({"detail": str(refusal), "fields": refusal.breaches}, status=status.HTTP_409_CONFLICT)
        sku = Sku.objects.get(pk=sku.pk)
        body = {"sku_id": sku.sku_id, "sync_state": sku.sync_state, "sync_error": sku.sync_error}
        return Response({**body, "pushed_at": sku.pushed_at}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="The SKU's drift as last checked at DR (no call to DR)",
        description="What the last check (POST on this path, the admin or the daily scan) found; "
        "`checked_at` is null and `rows` empty when DR was never asked.",
        responses={200: SkuDriftSerializer},
        examples=[OpenApiExample("Last check found another HS code", value=DRIFT_EXAMPLE, response_only=True)],
    )
    @action(detail=True, methods=["get"])
    def drift(self, request: Request, sku_id: str | None = None) -> Response:
        sku = self.get_object()
        return Response(SkuDriftSerializer(_drift_body(sku, sku.drift or [])).data)

    @extend_schema(
        summary="Check the SKU against DR now and return where DR's SKU or inventory item differs from ours",
        description="Fetches DR's SKU and inventory item and stores them; a synced SKU that differs becomes "
        "out of sync.",
        request=None,
        responses={
            200: SkuDriftSerializer,
            502: OpenApiResponse(description="DR could not be asked; the body's detail says why."),
        },
        examples=[
            OpenApiExample(
                "DR's SKU has another HS code", value=DRIFT_EXAMPLE, response_only=True, status_codes=["200"]
            )
        ],
    )
    @drift.mapping.post
    def drift_fetch(self, request: Request, sku_id: str | None = None) -> Response:
        report = services.sku_drift_fetch(sku=self.get_object())
        if report.error:
            return Response(
                {"detail": f"Digital River could not be asked: {report.error}"}, status=status.HTTP_502_BAD_GATEWAY
            )
        return Response(SkuDriftSerializer(_drift_body(report.sku, report.rows)).data)


def _drift_body(sku: Sku, rows: list[dict]) -> dict:
    return {
        "sku_id": sku.sku_id,
        "drifted": bool(rows),
        "sync_state": sku.sync_state,
        "checked_at": sku.drift_checked_at,
        "rows": rows,
    }


@contextmanager
def _as_api_errors() -> Iterator[None]:
    """A refusal from the model's own validation becomes a 400 naming the field, like the rules' own."""
    try:
        yield
    except DjangoValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        raise serializers.ValidationError(detail) from exc

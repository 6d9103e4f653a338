"""The REST API under /api/: every app's viewsets on one router."""

from rest_framework.routers import DefaultRouter

from catalog.api import SkuViewSet
from desk.api import OrderViewSet

router = DefaultRouter(trailing_slash=True)
router.register("skus", SkuViewSet, basename="sku")
router.register("orders", OrderViewSet, basename="order")

urlpatterns = router.urls

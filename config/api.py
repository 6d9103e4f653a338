"""The REST API under /api/: each app's viewsets on one router."""

from rest_framework.routers import DefaultRouter

from catalog.api import SkuViewSet

router = DefaultRouter(trailing_slash=True)
router.register("skus", SkuViewSet, basename="sku")

urlpatterns = router.urls

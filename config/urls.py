from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.views import HealthView
from digitalriver.views import WebhookView
from operations.metrics import MetricsView

admin.site.site_header = "Digital River back office"
admin.site.site_title = "Digital River back office"
admin.site.index_title = "Catalog, orders and operations"
# "View site" leads somewhere real: the API's documentation (the admin is the site otherwise).
admin.site.site_url = "/api/docs/"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("config.api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("webhooks/digitalriver/", WebhookView.as_view(), name="dr-webhook"),
    path("healthz", HealthView.as_view(), name="healthz"),
    path("metrics", MetricsView.as_view(), name="metrics"),
]

if settings.DR_SANDBOX:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))

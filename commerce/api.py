"""REST endpoints for orders under /api/ (design.md section 6)."""

urlpatterns = []

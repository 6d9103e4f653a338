"""REST endpoints for customer service actions on an order under /api/ (design.md section 6)."""

urlpatterns = []

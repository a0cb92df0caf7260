"""Operational endpoints and the API's schema and docs (names under "site:")."""

from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from registry_site import views

app_name = "site"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    # OPTIONS describes an endpoint's input; these two have none, and the docs' HTML renderer
    # cannot render the description (it answered 500): 405 in the error shape instead.
    path("api/schema/", SpectacularAPIView.as_view(metadata_class=None), name="schema"),
    # Swagger UI runs from files (no inline script), but its page and bundle apply inline
    # styles: only this page may.
    path("api/docs/", csp_update({"style-src": ["'unsafe-inline'"]})(
        SpectacularSwaggerSplitView.as_view(url_name="site:schema", metadata_class=None)),
        name="api-docs"),
]

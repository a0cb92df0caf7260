from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from registry_site import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # OPTIONS describes an endpoint's input; these two have none, and the docs' HTML renderer
    # cannot render the description (it answered 500): 405 in the error shape instead.
    path("api/schema/", SpectacularAPIView.as_view(metadata_class=None), name="schema"),
    # Swagger UI runs from files (no inline script), but its page and bundle apply inline
    # styles: only this page may.
    path("api/docs/", csp_update({"style-src": ["'unsafe-inline'"]})(
        SpectacularSwaggerSplitView.as_view(url_name="schema", metadata_class=None)),
        name="api-docs"),
    path("api/v1/", include("registry_site.api.urls")),
    re_path(r"^api/", views.api_not_found),
    path("", include("governance_app.urls")),
    path("", include("models_app.urls")),
]

# Errors raised outside DRF's views (middleware, URL resolving): JSON under /api/.
handler400 = "registry_site.views.bad_request"
handler403 = "registry_site.views.permission_denied"
handler404 = "registry_site.views.page_not_found"
handler500 = "registry_site.views.server_error"

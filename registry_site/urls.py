"""The root URLconf: the one place that names every app's URLs.

Every included module sets ``app_name``, so names are reversed as "models:model-page",
"governance-api:proposal-detail" and so on; the root itself names no pattern.
"""

from django.contrib import admin
from django.urls import include, path, re_path

from registry_site import views

urlpatterns = [
    path("", include("registry_site.site_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("registry_site.api.urls")),
    path("api/v1/", include("fees_app.api.urls")),
    path("api/v1/", include("models_app.api.urls")),
    path("api/v1/", include("governance_app.api.urls")),
    path("api/v1/", include("accounts_app.api.urls")),
    re_path(r"^api/", views.api_not_found),
    path("", include("accounts_app.urls")),
    path("", include("governance_app.urls")),
    path("", include("models_app.urls")),
]

# Errors raised outside DRF's views (middleware, URL resolving): JSON under /api/.
handler400 = "registry_site.views.bad_request"
handler403 = "registry_site.views.permission_denied"
handler404 = "registry_site.views.page_not_found"
handler500 = "registry_site.views.server_error"

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from registry_site.api import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("auth/tokens", views.TokenViewSet, basename="token")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")

urlpatterns = [
    path("parameters/", views.ParameterListView.as_view(), name="parameters"),
    path("", include("fees_app.api.urls")),
    path("", include("models_app.api.urls")),
    path("", include("governance_app.api.urls")),
    *router.urls,
]

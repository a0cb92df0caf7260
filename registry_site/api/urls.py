from django.urls import path
from rest_framework.routers import DefaultRouter

from registry_site.api import views

app_name = "site-api"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("auth/tokens", views.TokenViewSet, basename="token")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")

urlpatterns = [
    path("parameters/", views.ParameterListView.as_view(), name="parameters"),
    *router.urls,
]

from django.urls import path
from rest_framework.routers import SimpleRouter

from models_app.api import views
from models_app.api.artifact_views import ArtifactView
from models_app.api.version_views import VersionChangesView, VersionView

app_name = "models-api"

# SimpleRouter: no format-suffix routes, which would read "name.json" as a format.
router = SimpleRouter(trailing_slash=True)
router.register("models", views.ModelViewSet, basename="model")

urlpatterns = [
    path("stats/", views.RegistryStatsView.as_view(), name="registry-stats"),
    path("models/<str:name>/versions/<str:version>/", VersionView.as_view(),
         name="model-version"),
    path("models/<str:name>/versions/<str:version>/changes/", VersionChangesView.as_view(),
         name="model-version-changes"),
    path("models/<str:name>/versions/<str:version>/artifact/", ArtifactView.as_view(),
         name="model-artifact"),
    *router.urls,
]

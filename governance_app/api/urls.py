from django.urls import path
from rest_framework.routers import DefaultRouter

from governance_app.api import views

app_name = "governance-api"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("proposals", views.ProposalViewSet, basename="proposal")

urlpatterns = [
    path("proposals/<int:pk>/votes/", views.ProposalVoteListView.as_view(),
         name="proposal-votes"),
    *router.urls,
]

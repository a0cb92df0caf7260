from django.urls import path

from governance_app import views

app_name = "governance"

urlpatterns = [
    path("proposals/", views.proposal_list, name="proposal-list"),
    path("proposals/new/", views.proposal_new, name="proposal-new"),
    path("proposals/<int:pk>/", views.proposal_detail, name="proposal-detail"),
    path("proposals/<int:pk>/execute/", views.proposal_execute_view, name="proposal-execute"),
    path("proposals/<int:pk>/cancel/", views.proposal_cancel_view, name="proposal-cancel"),
]

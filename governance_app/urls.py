from django.urls import path

from governance_app import views

urlpatterns = [
    path("account/", views.account, name="account"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke_view, name="token-revoke"),
    path("account/tokens/revoke-all/", views.token_revoke_all_view, name="token-revoke-all"),
    path("proposals/", views.proposal_list, name="proposal-list"),
    path("proposals/new/", views.proposal_new, name="proposal-new"),
    path("proposals/<int:pk>/", views.proposal_detail, name="proposal-detail"),
    path("proposals/<int:pk>/execute/", views.proposal_execute_view, name="proposal-execute"),
    path("proposals/<int:pk>/cancel/", views.proposal_cancel_view, name="proposal-cancel"),
]

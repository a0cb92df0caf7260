from django.urls import path

from governance_app import views

urlpatterns = [
    path("account/", views.account, name="account"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke_view, name="token-revoke"),
    path("account/tokens/revoke-all/", views.token_revoke_all_view, name="token-revoke-all"),
]

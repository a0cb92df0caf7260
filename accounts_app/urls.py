from django.contrib.auth import views as auth_views
from django.urls import path

from accounts_app import views

app_name = "accounts"

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", views.account, name="account"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke_view, name="token-revoke"),
    path("account/tokens/revoke-all/", views.token_revoke_all_view, name="token-revoke-all"),
]

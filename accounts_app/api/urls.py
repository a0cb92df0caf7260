from django.urls import path

from accounts_app.api import views

app_name = "accounts-api"

urlpatterns = [
    path("account/", views.AccountView.as_view(), name="account"),
]

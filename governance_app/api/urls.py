from django.urls import path

from governance_app.api import views

urlpatterns = [
    path("account/", views.AccountView.as_view(), name="account"),
]

from django.urls import path

from fees_app.api import views

app_name = "fees-api"

urlpatterns = [
    path("fees/calculate/", views.FeeCalculateView.as_view(), name="fee-calculate"),
    path("fees/schedules/", views.FeeScheduleListView.as_view(), name="fee-schedules"),
    path("fees/stats/", views.FeeStatsView.as_view(), name="fee-stats"),
    path("account/ledger/", views.LedgerListView.as_view(), name="account-ledger"),
]

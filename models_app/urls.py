from django.urls import path

from models_app import views

app_name = "models"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("models/new/", views.register, name="model-register"),
    path("models/<str:name>/", views.model_page, name="model-page"),
    path("models/<str:name>/deprecate/", views.deprecate, name="model-deprecate"),
    path("models/<str:name>/edit/", views.edit, name="model-edit"),
    path("stats/", views.stats_page, name="stats"),
]

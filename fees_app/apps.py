from django.apps import AppConfig


class FeesAppConfig(AppConfig):
    name = "fees_app"
    verbose_name = "Fees and accounts"

from django.apps import AppConfig


class FeesAppConfig(AppConfig):
    name = "fees_app"
    verbose_name = "Fees and accounts"

    def ready(self):
        from fees_app import metrics  # noqa: F401  (registers the fees collector)

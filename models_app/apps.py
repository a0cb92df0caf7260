from django.apps import AppConfig


class ModelsAppConfig(AppConfig):
    name = "models_app"
    verbose_name = "Model registry"

    def ready(self):
        from models_app import metrics  # noqa: F401  (registers the registrations collector)

from django.apps import AppConfig


class GovernanceAppConfig(AppConfig):
    name = "governance_app"
    verbose_name = "Governance"

    def ready(self):
        from governance_app import metrics  # noqa: F401  (registers the proposals collector)
        from governance_app.selectors import open_subject_visibility
        from models_app.models import register_visibility_provider

        # Voters may open the version they vote on (models_app cannot import this app).
        register_visibility_provider(open_subject_visibility)

from django.apps import AppConfig


class GovernanceAppConfig(AppConfig):
    name = "governance_app"
    verbose_name = "Governance"

    def ready(self):
        from governance_app import metrics  # noqa: F401  (registers the proposals collector)

from django.apps import AppConfig
from django.db.backends.signals import connection_created


class RegistrySiteConfig(AppConfig):
    name = "registry_site"
    verbose_name = "Registry site"

    def ready(self):
        from registry_site import metrics, signals  # noqa: F401  (audit gauge; auth events audited)
        from registry_site.compiled import plan_once

        connection_created.connect(plan_once, dispatch_uid="registry_site.compiled.plan_once")

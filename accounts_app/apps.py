from django.apps import AppConfig


class AccountsAppConfig(AppConfig):
    """The top of the dependency chain: pages that span apps, sign-in, and the demo data."""

    name = "accounts_app"
    verbose_name = "Accounts"

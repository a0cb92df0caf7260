"""Login, logout and failed logins (browser, admin and token creation) into the audit trail."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from registry_site.audit import audit_record


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    audit_record(action="auth.login", actor=user, target=user, target_type="auth.user")


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs):
    audit_record(action="auth.login_failed",
                 details={"username": str(credentials.get("username", ""))[:150]})

from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from registry_site.errors import DomainError
from registry_site.inputs import refusal_message
from registry_site.models import ApiToken, AuditEvent, Parameter, ParameterChange
from registry_site.roles import is_moderator


class ServiceAdminMixin:
    """For a ModelAdmin whose forms and actions write through a service.

    A refusal the service raises (a DomainError) is shown instead of a 500. The add and change
    forms save inside one transaction, so the refusal also rolls back anything written before
    it: nothing is saved. The form is then shown again with what was posted, the refusal's
    field errors on their fields and its message above them, so nothing typed is lost.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            if request.method != "POST":
                raise
            # The second round validates the same POST, adds the refusal and so never
            # reaches save_model: it only renders.
            request.service_refusal = exc
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        refusal = getattr(request, "service_refusal", None)
        if refusal is None:
            return form_class

        class RefusedForm(form_class):
            def full_clean(self):
                super().full_clean()
                show_refusal(self, refusal)

        return RefusedForm

    def response_action(self, request, queryset):
        try:
            return super().response_action(request, queryset)
        except DomainError as exc:
            self.message_user(request, refusal_message(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


def show_refusal(form, refusal: DomainError) -> None:
    """A service's refusal on a bound form: each named field's errors on that field (or above
    the form when the form has no such field), and the refusal's message above the form."""
    form.add_error(None, refusal.detail)
    for field, errors in refusal.extra.get("fields", {}).items():
        if field in form.fields:
            form.add_error(field, errors)
        else:
            form.add_error(None, [f"{field}: {error}" for error in errors])


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only services write: visible to moderators, never edited here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return is_moderator(request.user) or super().has_view_permission(request, obj)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "actor", "action", "target_type", "target_id", "ip"]
    list_filter = ["action", "target_type"]
    # The trail only grows: never count all of it to draw a page.
    show_full_result_count = False
    search_fields = ["action", "target_id", "actor__username"]
    list_select_related = ["actor"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "actor", "action", "target_type", "target_id", "ip",
                       "details", "seq", "prev_hash", "hash"]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "user", "name", "created_at", "expires_at", "revoked_at"]
    list_select_related = ["user"]
    search_fields = ["user__username", "prefix", "name"]
    exclude = ["digest"]


class ParameterChangeInline(admin.TabularInline):
    model = ParameterChange
    fields = ["created_at", "old_value", "new_value", "actor", "proposal_id", "reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Parameter)
class ParameterAdmin(ReadOnlyAdmin):
    list_display = ["name", "value", "updated_at"]
    inlines = [ParameterChangeInline]

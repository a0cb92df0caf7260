from django.contrib import admin

from registry_site.models import ApiToken, AuditEvent, Parameter, ParameterChange
from registry_site.roles import is_moderator


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
                       "details", "prev_hash", "hash"]


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

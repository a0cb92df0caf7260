"""The moderators' console: read everything, change status only through reasoned actions."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse

from models_app.artifact_admin import ArtifactInline
from models_app.inputs import TransitionInput
from models_app.models import (
    Artifact,
    ModelName,
    Registration,
    Source,
    StatusChange,
    StorageCharge,
    UsageStats,
)
from models_app.selectors import add_pending_usage
from models_app.services import registration_transition
from registry_site.admin import ReadOnlyAdmin
from registry_site.errors import DomainError
from registry_site.inputs import InputForm, refusal_message

Status = Registration.Status


class ReasonForm(InputForm):
    """The moderator's reason for a move, checked by the move's input before any row moves."""

    input_class = TransitionInput

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded in each version's status history and the audit trail.",
    )

    def __init__(self, *args, to_status: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.to_status = to_status

    def to_input(self, text: dict) -> dict:
        return {**super().to_input(text), "status": self.to_status}


class StatusChangeInline(admin.TabularInline):
    model = StatusChange
    fields = ["created_at", "from_status", "to_status", "actor", "source", "reason",
              "proposal_id"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    extra = 0
    can_delete = False
    verbose_name_plural = "Status history"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


def _transition_action(to_status: str, verb: str):
    def action(modeladmin, request, queryset):
        return modeladmin.transition_view(request, queryset, to_status=to_status, verb=verb)

    action.__name__ = f"move_to_{to_status}" if verb != "Reopen" else "reopen"
    return admin.action(description=f"{verb} selected versions…",
                        permissions=["change"])(action)


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "owner", "category", "status", "size", "registered_at",
                    "executions"]
    list_filter = ["status", "category", "registered_at"]
    search_fields = ["name", "version", "=owner__username"]
    list_select_related = ["owner", "usage"]
    # Counting the whole table on every page would grow with it; the filtered count stays.
    show_full_result_count = False
    list_per_page = 50
    ordering = ["-registered_at", "-id"]
    inlines = [StatusChangeInline, ArtifactInline]
    actions = [
        _transition_action(Status.APPROVED, "Approve"),
        _transition_action(Status.REJECTED, "Reject"),
        _transition_action(Status.SUSPENDED, "Suspend"),
        _transition_action(Status.DEPRECATED, "Deprecate"),
        _transition_action(Status.PENDING, "Reopen"),
    ]
    fieldsets = [
        (None, {"fields": ["name", "version", "owner", "status", "registration_fee",
                           "registered_at", "updated_at"]}),
        ("Model", {"fields": ["category", "description", "license", "source_url", "tags",
                              "architecture", "input_shape", "output_shape", "size_bytes",
                              "parameter_count", "hash"]}),
        ("Usage", {"fields": ["usage_summary"]}),
    ]
    readonly_fields = [f for _, opts in fieldsets for f in opts["fields"]]

    def has_add_permission(self, request):
        # Registering charges a fee to the registrant: the API and /models/new/ do that.
        return False

    def has_change_permission(self, request, obj=None):
        # The change form is view-only (status moves through the actions); the actions
        # themselves need the change permission.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner", "usage")

    @admin.display(description="size", ordering="size_bytes")
    def size(self, obj):
        return filesizeformat(obj.size_bytes)

    @admin.display(description="executions", ordering="usage__total_executions")
    def executions(self, obj):
        return obj.usage.total_executions if hasattr(obj, "usage") else 0

    @admin.display(description="usage")
    def usage_summary(self, obj):
        usage = getattr(obj, "usage", None)
        if usage is not None:
            add_pending_usage([obj])
        if usage is None or not usage.total_executions:
            return "Never used."
        return (f"{usage.total_executions} executions ({usage.successful_executions} "
                f"succeeded, {usage.failed_executions} failed), {usage.unique_users} users, "
                f"{usage.total_fees_collected} in fees, average {usage.avg_execution_time_us} "
                f"µs, last {usage.last_execution:%Y-%m-%d %H:%M} UTC")

    def transition_view(self, request, queryset, *, to_status: str, verb: str):
        """Ask for the reason, then move each selected version and report each outcome."""
        form = ReasonForm(request.POST if "apply" in request.POST else None, to_status=to_status)
        results = None
        if form.is_bound and form.is_valid():
            results = []
            for registration in queryset.select_related("owner").order_by("name", "version"):
                try:
                    registration_transition(
                        registration=registration, to_status=to_status, actor=request.user,
                        source=Source.ADMIN, reason=form.cleaned_data["reason"],
                    )
                except DomainError as exc:
                    results.append((registration, False, refusal_message(exc)))
                else:
                    results.append((registration, True, f"Now {to_status}."))
            done = sum(1 for _, ok, _ in results if ok)
            level = messages.SUCCESS if done == len(results) else messages.WARNING
            self.message_user(request, f"{verb}: {done} of {len(results)} version(s) changed.",
                              level)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{verb} model versions",
            "opts": self.model._meta,
            "verb": verb,
            "to_status": to_status,
            "form": form,
            "queryset": queryset.select_related("owner"),
            "results": results,
            "action": request.POST.get("action", ""),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/models_app/registration/transition.html",
                                context)


@admin.register(StatusChange)
class StatusChangeAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "registration", "from_status", "to_status", "actor",
                    "source", "reason"]
    list_filter = ["to_status", "source"]
    search_fields = ["registration__name", "=actor__username"]
    list_select_related = ["registration", "actor"]
    show_full_result_count = False


@admin.register(UsageStats)
class UsageStatsAdmin(ReadOnlyAdmin):
    list_display = ["registration", "total_executions", "successful_executions",
                    "failed_executions", "unique_users", "total_fees_collected",
                    "last_execution"]
    list_select_related = ["registration"]
    search_fields = ["registration__name"]
    ordering = ["-total_executions"]
    show_full_result_count = False


@admin.register(StorageCharge)
class StorageChargeAdmin(ReadOnlyAdmin):
    list_display = ["date", "registration", "amount", "status", "created_at"]
    list_filter = ["status", "date"]
    list_select_related = ["registration"]
    search_fields = ["registration__name"]
    show_full_result_count = False


@admin.register(ModelName)
class ModelNameAdmin(ReadOnlyAdmin):
    list_display = ["name", "owner", "created_at"]
    list_select_related = ["owner"]
    search_fields = ["name", "=owner__username"]
    show_full_result_count = False


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdmin):
    list_display = ["registration", "file_format", "size_bytes", "uploaded_by", "uploaded_at"]
    list_select_related = ["registration", "uploaded_by"]
    show_full_result_count = False

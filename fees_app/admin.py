from django.contrib import admin, messages
from django.template.response import TemplateResponse

from fees_app.forms import CreditForm, FeeScheduleForm
from fees_app.models import Account, FeeSchedule, LedgerEntry
from fees_app.services import account_credit, schedule_install
from registry_site.admin import ReadOnlyAdmin, ServiceAdminMixin
from registry_site.errors import DomainError
from registry_site.inputs import refusal_message


@admin.register(FeeSchedule)
class FeeScheduleAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Schedules are versioned: "adding" one installs a new active version for its type."""

    list_display = ["fee_type", "version", "method", "base_fee", "unit_fee", "min_fee",
                    "max_fee", "step_size", "is_active", "created_at", "created_by"]
    list_filter = ["fee_type", "is_active", "method"]
    list_select_related = ["created_by"]
    form = FeeScheduleForm

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        fee_type = request.GET.get("fee_type")
        current = FeeSchedule.objects.active().filter(fee_type=fee_type).first()
        if current:
            initial.update({f: getattr(current, f) for f in
                            ["method", "base_fee", "unit_fee", "min_fee", "max_fee", "step_size"]})
        return initial

    def save_model(self, request, obj, form, change):
        installed = schedule_install(**form.cleaned_data, actor=request.user)
        # The admin logs and reports ``obj``: make it the installed row.
        for field in FeeSchedule._meta.concrete_fields:
            setattr(obj, field.attname, getattr(installed, field.attname))


class LedgerInline(admin.TabularInline):
    model = LedgerEntry
    fields = ["created_at", "kind", "amount", "balance_after", "fee_type", "units",
              "model_name", "model_version", "reason"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("schedule")


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["user", "balance", "updated_at"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    readonly_fields = ["user", "balance", "updated_at"]
    actions = ["credit"]
    inlines = [LedgerInline]

    def has_change_permission(self, request, obj=None):
        # The changelist needs it for the credit action; a single account is never saved from
        # the admin (a save would write back a stale balance over concurrent debits).
        return obj is None and request.user.has_perm("fees_app.change_account")

    @admin.action(description="Credit selected accounts…", permissions=["change"])
    def credit(self, request, queryset):
        form = CreditForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            for account in queryset.select_related("user"):
                try:
                    account_credit(user=account.user, amount=form.cleaned_data["amount"],
                                   actor=request.user, reason=form.cleaned_data["reason"])
                except DomainError as exc:
                    self.message_user(request, f"{account.user}: {refusal_message(exc)}",
                                      messages.ERROR)
                else:
                    self.message_user(
                        request, f"Credited {form.cleaned_data['amount']} to {account.user}.",
                        messages.SUCCESS,
                    )
            return None
        return TemplateResponse(request, "admin/fees_app/credit.html", {
            **self.admin_site.each_context(request),
            "title": "Credit accounts", "form": form, "accounts": queryset,
            "action": "credit", "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        })


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "kind", "amount", "balance_after", "fee_type",
                    "model_name", "model_version"]
    list_filter = ["kind", "fee_type"]
    show_full_result_count = False
    search_fields = ["account__user__username", "model_name"]
    list_select_related = ["account__user", "schedule"]

import re

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from governance_app.inputs import GrantInput
from governance_app.models import Proposal, ProposalState, Vote, VotingPowerCheckpoint
from governance_app.services import (
    proposal_cancel,
    voting_power_grant,
    voting_power_grant_check,
)
from registry_site.admin import ReadOnlyAdmin, ServiceAdminMixin
from registry_site.errors import DomainError
from registry_site.inputs import InputForm, refusal_message


class CancelProposalsForm(forms.Form):
    """The console asks for a reason; its rules are CancelInput's, applied by the service."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class GrantPowerForm(InputForm):
    """Collects a grant as text; every rule is GrantInput's (the service's input), so an
    invalid grant is shown on its fields, all at once, before anything is written."""

    input_class = GrantInput

    power = forms.CharField(required=False,
                            help_text="The new voting power, from now on (0 removes it).")
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def to_input(self, text: dict) -> dict:
        data = super().to_input(text)
        power = data.get("power")
        if isinstance(power, str) and re.fullmatch(r"-?[0-9]+", power.strip()):
            data["power"] = int(power)  # anything else stays text, which GrantInput refuses
        return data


class VotingPowerCheckpointAddForm(GrantPowerForm, forms.ModelForm):
    """The admin's "add" form: the service writes the checkpoint, effective now."""

    actor = None  # the signed-in moderator, set by the admin's get_form

    class Meta:
        model = VotingPowerCheckpoint
        fields = ["user", "power", "reason"]

    def to_input(self, text: dict) -> dict:
        return super().to_input({field: text.get(field) for field in ("power", "reason")})

    def clean(self):
        user = self.cleaned_data.get("user")
        data = super().clean()
        return {**data, "user": user} if data and user is not None else data

    def _post_clean(self):
        # The instance is never saved or validated here: the service checks the input and
        # writes the row.
        pass

    def clean_user(self):
        user = self.cleaned_data["user"]
        try:
            # Refused here, as a form error, so that nothing is written (and it is audited).
            voting_power_grant_check(user=user, actor=self.actor,
                                     power=self.data.get("power"))
        except DomainError as exc:
            raise forms.ValidationError(exc.detail, code=exc.code) from None
        return user


def _intermediate_page(modeladmin, request, *, title, form, objects, action, submit):
    return TemplateResponse(request, "admin/governance_app/confirm_action.html", {
        **modeladmin.admin_site.each_context(request),
        "title": title, "form": form, "objects": objects, "action": action, "submit": submit,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    })


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return ProposalState.choices

    def queryset(self, request, queryset):
        return queryset.filter(state=self.value()) if self.value() else queryset


class VoteInline(admin.TabularInline):
    model = Vote
    fields = ["voter", "choice", "weight", "counted", "reason", "created_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("voter")


@admin.register(Proposal)
class ProposalAdmin(ServiceAdminMixin, ReadOnlyAdmin):
    """Proposals are created, voted on and executed through the services; here they are read
    and, with a reason, canceled."""

    list_display = ["id", "title", "type", "state", "proposer", "created_at", "voting_ends_at",
                    "votes_for", "votes_against", "votes_abstain", "quorum"]
    list_filter = [StateFilter, "type"]
    search_fields = ["title", "proposer__username"]
    list_select_related = ["proposer"]
    date_hierarchy = "created_at"
    readonly_fields = ["type", "title", "description", "payload", "proposer", "state",
                       "created_at", "voting_ends_at", "execution_deadline",
                       "total_power_at_snapshot", "quorum", "votes_for", "votes_against",
                       "votes_abstain", "executed_at", "executed_by", "execution_result",
                       "canceled_at", "canceled_by", "cancel_reason"]
    inlines = [VoteInline]
    actions = ["cancel"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_state(timezone.now())

    @admin.display(description="state", ordering="state")
    def state(self, obj):
        return obj.state

    def has_change_permission(self, request, obj=None):
        # The changelist needs it for the cancel action; a single proposal is never saved from
        # the admin (a save would write back stale tallies or undo an execution).
        return obj is None and request.user.has_perm("governance_app.change_proposal")

    @admin.action(description="Cancel selected proposals…", permissions=["change"])
    def cancel(self, request, queryset):
        form = CancelProposalsForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return _intermediate_page(self, request, title="Cancel proposals", form=form,
                                      objects=queryset, action="cancel",
                                      submit="Cancel these proposals")
        for proposal in queryset:
            try:
                proposal_cancel(proposal=proposal, actor=request.user,
                                reason=form.cleaned_data["reason"])
            except DomainError as exc:
                self.message_user(request, f"#{proposal.pk}: {refusal_message(exc)}",
                                  messages.ERROR)
            else:
                self.message_user(request, f"#{proposal.pk} canceled.", messages.SUCCESS)
        return None


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    list_display = ["proposal", "voter", "choice", "weight", "counted", "created_at"]
    list_filter = ["choice", "counted"]
    search_fields = ["voter__username", "proposal__title"]
    list_select_related = ["proposal", "voter"]
    readonly_fields = ["proposal", "voter", "choice", "weight", "counted", "reason",
                       "created_at"]


@admin.register(VotingPowerCheckpoint)
class VotingPowerCheckpointAdmin(ServiceAdminMixin, ReadOnlyAdmin):
    """Checkpoints are history: "add" and the grant action write a new one through the
    service; none is ever edited or deleted."""

    list_display = ["user", "power", "effective_from", "granted_by", "reason"]
    search_fields = ["user__username", "reason"]
    list_select_related = ["user", "granted_by"]
    readonly_fields = ["user", "power", "effective_from", "granted_by", "reason"]
    actions = ["grant"]

    def has_add_permission(self, request):
        return request.user.has_perm("governance_app.add_votingpowercheckpoint")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = VotingPowerCheckpointAddForm
        form = super().get_form(request, obj, **kwargs)
        form.actor = request.user  # a class made for this request by modelform_factory
        return form

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def save_model(self, request, obj, form, change):
        created = voting_power_grant(user=form.cleaned_data["user"],
                                     power=form.cleaned_data["power"], actor=request.user,
                                     reason=form.cleaned_data["reason"])
        # The admin logs and reports ``obj``: make it the checkpoint the service wrote.
        for field in VotingPowerCheckpoint._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))

    @admin.action(description="Grant voting power to these users…", permissions=["add"])
    def grant(self, request, queryset):
        users = {cp.user_id: cp.user for cp in queryset.select_related("user")}.values()
        form = GrantPowerForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return _intermediate_page(self, request, title="Grant voting power", form=form,
                                      objects=queryset, action="grant", submit="Grant")
        for user in users:
            try:
                voting_power_grant(user=user, power=form.cleaned_data["power"],
                                   actor=request.user, reason=form.cleaned_data["reason"])
            # Django's admin capitalises a message's first letter: never start with a name.
            except DomainError as exc:
                self.message_user(request, f"Not granted to {user}: {refusal_message(exc)}",
                                  messages.ERROR)
            else:
                self.message_user(request, f"Granted {form.cleaned_data['power']} voting "
                                           f"power to {user}.", messages.SUCCESS)
        return None

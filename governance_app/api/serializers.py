from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance_app.models import Proposal, ProposalState, ProposalType, Vote
from governance_app.payloads import MAX_REASON_LENGTH
from governance_app.services import MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH


class AccountSerializer(serializers.Serializer):
    username = serializers.CharField()
    balance = serializers.IntegerField()
    voting_power = serializers.IntegerField()
    groups = serializers.ListField(child=serializers.CharField())
    is_moderator = serializers.BooleanField()


class TallySerializer(serializers.Serializer):
    """Voting power cast per choice; ``for`` is a Python keyword, hence ``get_fields``."""

    def get_fields(self):
        return {
            "for": serializers.IntegerField(source="votes_for", read_only=True),
            "against": serializers.IntegerField(source="votes_against", read_only=True),
            "abstain": serializers.IntegerField(source="votes_abstain", read_only=True),
        }


class MyVoteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Vote
        fields = ["choice", "weight", "reason", "created_at"]
        read_only_fields = fields


class ProposalSerializer(serializers.ModelSerializer):
    proposer = serializers.CharField(source="proposer.username", read_only=True)
    state = serializers.ChoiceField(choices=ProposalState.choices, read_only=True)
    tally = TallySerializer(source="*", read_only=True)
    quorum_reached = serializers.BooleanField(read_only=True)
    my_vote = serializers.SerializerMethodField()

    class Meta:
        model = Proposal
        fields = ["id", "type", "title", "description", "payload", "proposer", "state",
                  "created_at", "voting_ends_at", "execution_deadline", "quorum", "tally",
                  "quorum_reached", "my_vote"]
        read_only_fields = fields

    @extend_schema_field(MyVoteSerializer(allow_null=True))
    def get_my_vote(self, proposal):
        """The caller's vote, from the ``my_votes`` prefetch the views set up."""
        votes = getattr(proposal, "my_votes", None)
        return MyVoteSerializer(votes[0]).data if votes else None


class ProposalCreateInputSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ProposalType.choices)
    title = serializers.CharField(max_length=MAX_TITLE_LENGTH)
    description = serializers.CharField(max_length=MAX_DESCRIPTION_LENGTH, required=False,
                                        allow_blank=True, default="")
    payload = serializers.DictField(
        help_text="Typed by `type`: model_approval {name, version, reason}; fee_change "
                  "{fee_type, method, base_fee, unit_fee, min_fee, max_fee, step_size?, reason}; "
                  "parameter_change {parameter, value, reason}; emergency {action: "
                  "suspend_model | pause_registrations | resume_registrations, name?, version?, "
                  "reason}.",
    )


class VoteInputSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=Vote.Choice.choices)
    reason = serializers.CharField(max_length=MAX_REASON_LENGTH, required=False,
                                   allow_blank=True, default="")


class VoteSerializer(serializers.ModelSerializer):
    voter = serializers.CharField(source="voter.username", read_only=True)
    proposal = serializers.IntegerField(source="proposal_id", read_only=True)

    class Meta:
        model = Vote
        fields = ["id", "proposal", "voter", "choice", "weight", "reason", "created_at"]
        read_only_fields = fields


class CancelInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=MAX_REASON_LENGTH, required=False, default="",
                                   allow_blank=True)

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from governance_app.inputs import PAYLOADS, ProposalCreateInput
from governance_app.models import Proposal, ProposalState, Vote
from governance_app.selectors import proposal_subject, proposal_warnings


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
        fields = ["choice", "weight", "counted", "reason", "created_at"]
        read_only_fields = fields


class SubjectSerializer(serializers.Serializer):
    """The model version a proposal is about, as it is now."""

    name = serializers.CharField()
    version = serializers.CharField()
    visible = serializers.BooleanField(help_text=(
        "Whether you may see this version; when false, owner, status and url are null."))
    owner = serializers.CharField(allow_null=True, help_text="Their vote does not count.")
    status = serializers.CharField(allow_null=True, help_text=(
        "null: no longer registered (when visible) or not yours to see."))
    expected_status = serializers.CharField(help_text="The status executing needs.")
    url = serializers.CharField(allow_null=True, help_text="The page of this exact version.")


class WarningSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["owner_vote_excluded", "target_changed"])
    detail = serializers.CharField()


class ProposalSerializer(serializers.ModelSerializer):
    proposer = serializers.CharField(source="proposer.username", read_only=True)
    state = serializers.ChoiceField(choices=ProposalState.choices, read_only=True)
    tally = TallySerializer(source="*", read_only=True)
    quorum_reached = serializers.BooleanField(read_only=True)
    my_vote = serializers.SerializerMethodField()
    subject = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()

    class Meta:
        model = Proposal
        fields = ["id", "type", "title", "description", "payload", "proposer", "state",
                  "created_at", "voting_ends_at", "execution_deadline", "quorum", "tally",
                  "quorum_reached", "my_vote", "subject", "warnings"]
        read_only_fields = fields

    @extend_schema_field(SubjectSerializer(allow_null=True))
    def get_subject(self, proposal):
        subject = proposal_subject(proposal)
        return SubjectSerializer(subject).data if subject else None

    @extend_schema_field(WarningSerializer(many=True))
    def get_warnings(self, proposal):
        """The owner's vote does not count; the target changed since the proposal was made."""
        return WarningSerializer(proposal_warnings(proposal), many=True).data

    @extend_schema_field(MyVoteSerializer(allow_null=True))
    def get_my_vote(self, proposal):
        """The caller's vote, from the ``my_votes`` prefetch the views set up."""
        votes = getattr(proposal, "my_votes", None)
        return MyVoteSerializer(votes[0]).data if votes else None


class VoteSerializer(serializers.ModelSerializer):
    voter = serializers.CharField(source="voter.username", read_only=True)
    proposal = serializers.IntegerField(source="proposal_id", read_only=True)

    class Meta:
        model = Vote
        fields = ["id", "proposal", "voter", "choice", "weight", "counted", "reason",
                  "created_at"]
        read_only_fields = fields


def _typed_proposal(kind: str, payload_class) -> type:
    """The request body of one proposal type, for the schema: ``type`` fixed to ``kind`` and
    the payload's own fields, none other allowed. The service still checks the request with
    ProposalCreateInput, the one definition of the rules; this only describes it."""

    @extend_schema_field({"type": "string", "enum": [kind]})
    class KindField(serializers.CharField):
        pass

    name = "".join(part.title() for part in kind.split("_"))
    return type(f"{name}ProposalSerializer", (ProposalCreateInput,), {
        "type": KindField(),
        "payload": payload_class(),
        "__doc__": f"A {kind} proposal.",
        "__module__": __name__,
    })


PROPOSAL_REQUEST = PolymorphicProxySerializer(
    component_name="ProposalCreate",
    serializers={str(kind): _typed_proposal(str(kind), payload)
                 for kind, payload in PAYLOADS.items()},
    resource_type_field_name="type",
)

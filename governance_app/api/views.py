from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, permissions, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response

from governance_app.api.serializers import (
    PROPOSAL_REQUEST,
    ProposalSerializer,
    VoteSerializer,
)
from governance_app.filtersets import ProposalFilterSet
from governance_app.inputs import CancelInput, ProposalCreateInput, VoteInput
from governance_app.models import Proposal, Vote
from governance_app.selectors import proposals_for
from governance_app.services import proposal_cancel, proposal_create, proposal_execute, vote_cast
from registry_site.api.created import created
from registry_site.idempotency import idempotent
from registry_site.inputs import request_fields
from registry_site.pagination import NEWEST_FIRST
from registry_site.permissions import TokenHasScope
from registry_site.reuse import represented


class ProposalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                      viewsets.GenericViewSet):
    """Governance proposals: create, list, read, vote, execute, cancel."""

    serializer_class = ProposalSerializer
    filterset_class = ProposalFilterSet
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    ordering_fields = ["created_at", "voting_ends_at", "id"]
    ordering = list(NEWEST_FIRST)
    # The default order and id order page by cursor; ?ordering=created_at or voting_ends_at
    # (not unique) keep page links.
    keyset_orderings = (NEWEST_FIRST, ("-id",), ("id",))
    lookup_value_regex = r"\d+"
    required_scopes = {"create": "propose", "vote": "vote", "execute": "vote",
                       "cancel": "propose"}
    throttle_scopes = {"vote": "vote"}

    def get_queryset(self):
        return proposals_for(self.request.user)

    def _fresh(self, proposal):
        return self.get_queryset().get(pk=proposal.pk)

    # The services validate their input (governance_app.inputs) after checking who may act;
    # the views pass the request's fields through unchanged.
    @idempotent
    @extend_schema(request=PROPOSAL_REQUEST, responses={
        201: ProposalSerializer,
        402: OpenApiResponse(description="The balance cannot pay the proposal fee."),
        409: OpenApiResponse(description="An open proposal is already about this subject.")})
    def create(self, request):
        proposal = proposal_create(proposer=request.user,
                                   **request_fields(ProposalCreateInput, request.data))
        return created(request, self.get_serializer(self._fresh(proposal)).data,
                       "governance-api:proposal-detail", pk=proposal.pk)

    @idempotent
    @extend_schema(request=VoteInput, responses={201: VoteSerializer})
    @action(detail=True, methods=["post"])
    def vote(self, request, pk=None):
        """Cast your one vote; its weight is your voting power at the proposal's snapshot.
        The owner of the model a proposal is about may vote, but that vote does not count."""
        # The service locks and reads the proposal itself (404 when there is none): the
        # list's annotated query (subject, the caller's votes) would be read only to be
        # thrown away.
        vote = vote_cast(proposal=Proposal(pk=int(pk)), voter=request.user,
                         **request_fields(VoteInput, request.data))
        # A vote is read in its proposal's list of votes.
        return created(request, represented(VoteSerializer, vote),
                       "governance-api:proposal-votes", pk=vote.proposal_id)

    @idempotent
    @extend_schema(request=None, responses=ProposalSerializer)
    @action(detail=True, methods=["post"])
    def execute(self, request, pk=None):
        """Execute a passed proposal before its deadline; any signed-in user may."""
        proposal = proposal_execute(proposal=self.get_object(), actor=request.user)
        return Response(self.get_serializer(self._fresh(proposal)).data)

    @idempotent
    @extend_schema(request=CancelInput, responses=ProposalSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel: the proposer while no one else has voted, a moderator before execution."""
        proposal = proposal_cancel(proposal=self.get_object(), actor=request.user,
                                   **request_fields(CancelInput, request.data))
        return Response(self.get_serializer(self._fresh(proposal)).data)


class ProposalVoteListView(generics.ListAPIView):
    """The votes cast on one proposal, newest first."""

    serializer_class = VoteSerializer
    permission_classes = [permissions.IsAuthenticatedOrReadOnly, TokenHasScope]
    keyset_orderings = (NEWEST_FIRST,)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Vote.objects.none()
        proposal = get_object_or_404(Proposal.objects.only("pk"), pk=self.kwargs["pk"])
        return (Vote.objects.filter(proposal=proposal).select_related("voter")
                .order_by(*NEWEST_FIRST))

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from fees_app.api.serializers import (
    FeeQuoteSerializer,
    FeeScheduleSerializer,
    FeeStatsSerializer,
    LedgerEntrySerializer,
)
from fees_app.inputs import FeeCalculateInput
from fees_app.models import FeeSchedule, FeeType, LedgerEntry
from fees_app.selectors import fee_stats
from fees_app.services import fee_quote
from registry_site.inputs import validated
from registry_site.pagination import NEWEST_FIRST, query_flag, refuse_unknown_parameters
from registry_site.permissions import TokenHasScope, request_has_scope
from registry_site.roles import is_moderator

# Fee types whose units are a number of bytes; the others are charged per operation.
SIZE_FEE_TYPES = {FeeType.REGISTRATION, FeeType.STORAGE, FeeType.UPDATE}


class FeeCalculateView(APIView):
    """Quote a fee: the amount, the formula inputs and the schedule version used."""

    permission_classes = [permissions.AllowAny, TokenHasScope]
    required_scopes = {"post": "read"}

    @extend_schema(request=FeeCalculateInput, responses=FeeQuoteSerializer)
    def post(self, request):
        data = validated(FeeCalculateInput, request.data)
        fee_type = data["fee_type"]
        units = data.get("units")
        if units is None:
            units = data["size_bytes"] if fee_type in SIZE_FEE_TYPES else 1
        schedule, quote = fee_quote(fee_type=fee_type, units=units)
        return Response(FeeQuoteSerializer({
            "fee_type": fee_type, "method": schedule.method, "units": quote.units,
            "base_fee": schedule.base_fee, "unit_fee": schedule.unit_fee,
            "min_fee": schedule.min_fee, "max_fee": schedule.max_fee,
            "step_size": schedule.step_size, "amount": quote.amount,
            "schedule_version": schedule.version,
        }).data)


@extend_schema(parameters=[OpenApiParameter("history", bool, description="All versions.")])
class FeeScheduleListView(generics.ListAPIView):
    """Active fee schedules, or every version with ``?history=1``."""

    serializer_class = FeeScheduleSerializer
    permission_classes = [permissions.AllowAny, TokenHasScope]
    pagination_class = None

    query_parameters = ("history",)

    def get_queryset(self):
        refuse_unknown_parameters(self.request, self)
        schedules = FeeSchedule.objects.order_by("fee_type", "-version")
        if query_flag(self.request, "history"):
            return schedules
        return schedules.active()


class FeeStatsView(APIView):
    """Fees collected: everyone's for moderators, the caller's own otherwise."""

    permission_classes = [permissions.IsAuthenticated, TokenHasScope]

    @extend_schema(responses=FeeStatsSerializer)
    def get(self, request):
        # Everyone's figures (and who paid what) are a moderator's view: a moderator's token
        # needs the moderate scope for them, like the audit trail.
        sees_all = is_moderator(request.user) and request_has_scope(request, "moderate")
        user = None if sees_all else request.user
        return Response(FeeStatsSerializer(fee_stats(user=user)).data)


class LedgerListView(generics.ListAPIView):
    """The caller's ledger, newest first."""

    serializer_class = LedgerEntrySerializer
    permission_classes = [permissions.IsAuthenticated, TokenHasScope]
    queryset = LedgerEntry.objects.none()  # names the model for the schema; see get_queryset
    keyset_orderings = (NEWEST_FIRST,)

    def get_queryset(self):
        return (
            LedgerEntry.objects.filter(account__user=self.request.user)
            .select_related("schedule").order_by(*NEWEST_FIRST)
        )

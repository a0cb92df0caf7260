from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts_app.api.serializers import AccountSerializer
from fees_app.services import account_for
from governance_app.selectors import voting_power_at
from registry_site.permissions import TokenHasScope
from registry_site.roles import is_moderator


class AccountView(APIView):
    """The caller's balance, current voting power and groups (fees_app and governance_app)."""

    permission_classes = [permissions.IsAuthenticated, TokenHasScope]

    @extend_schema(responses=AccountSerializer)
    def get(self, request):
        user = request.user
        return Response(AccountSerializer({
            "username": user.get_username(),
            "balance": account_for(user).balance,
            "voting_power": voting_power_at(user),
            "groups": sorted(user.groups.values_list("name", flat=True)),
            "is_moderator": is_moderator(user),
        }).data)

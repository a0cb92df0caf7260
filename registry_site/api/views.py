from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.response import Response
from rest_framework.views import APIView

from registry_site.api.created import created
from registry_site.api.serializers import (
    AuditEventSerializer,
    ParameterSerializer,
    RevokedCountSerializer,
    TokenCreatedSerializer,
    TokenCreateInputSerializer,
    TokenSerializer,
)
from registry_site.errors import NotFound
from registry_site.idempotency import SCHEMA_PARAMETERS as IDEMPOTENCY_PARAMETERS
from registry_site.idempotency import idempotent, respond_once
from registry_site.models import ApiToken, AuditEvent, Parameter
from registry_site.pagination import NEWEST_FIRST, refuse_unknown_parameters
from registry_site.parameters import PARAMETER_SPECS
from registry_site.permissions import CanRevokeTokens, IsModerator, TokenHasScope, parse_id
from registry_site.services import token_create, token_revoke, token_revoke_all


class TokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Personal access tokens: create with a password, list, revoke one or all."""

    serializer_class = TokenSerializer
    queryset = ApiToken.objects.none()  # names the model for the schema; see get_queryset
    keyset_orderings = (NEWEST_FIRST,)

    def get_permissions(self):
        if self.action == "create":
            return [permissions.AllowAny()]
        if self.action in ("destroy", "revoke_all"):
            return [permissions.IsAuthenticated(), CanRevokeTokens()]
        return [permissions.IsAuthenticated()]

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.action == "create":
            from registry_site.throttling import TokenCreateThrottle

            throttles.append(TokenCreateThrottle())
        return throttles

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user).order_by(*NEWEST_FIRST)

    @extend_schema(request=TokenCreateInputSerializer, responses={201: TokenCreatedSerializer},
                   auth=[], parameters=IDEMPOTENCY_PARAMETERS)
    def create(self, request):
        data = TokenCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, username=data.validated_data["username"],
                            password=data.validated_data["password"])
        if user is None:
            raise AuthenticationFailed("Wrong username or password.", code="invalid_credentials")

        def create_token():
            token, secret = token_create(
                user=user, scopes=data.validated_data.get("scopes"),
                expires_in=data.validated_data.get("expires_in"),
                name=data.validated_data["name"],
            )
            token.token = secret
            # The token's own URL (where it is revoked); its secret is never shown again.
            return created(request, TokenCreatedSerializer(token).data,
                           "site-api:token-detail", pk=token.pk)

        # The key belongs to the user the credentials prove, checked before it is looked at.
        return respond_once(self, request, user=user, run=create_token)

    def destroy(self, request, pk=None):
        # Token ids are integers: any other id names no token (a 404, not a lookup error).
        token_id = parse_id(pk)
        if token_id is None:
            raise NotFound(f"Token {pk} not found.")
        token_revoke(user=request.user, token_id=token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @idempotent
    @extend_schema(request=None, responses=RevokedCountSerializer)
    @action(detail=False, methods=["post"])
    def revoke_all(self, request):
        return Response({"revoked": token_revoke_all(user=request.user)})


class ParameterListView(APIView):
    """Governable parameters: current value, default and bounds."""

    permission_classes = [permissions.AllowAny, TokenHasScope]

    @extend_schema(responses=ParameterSerializer(many=True))
    def get(self, request):
        refuse_unknown_parameters(request, self)
        stored = {p.name: p for p in Parameter.objects.all()}
        rows = [
            {
                "name": spec.name,
                "value": stored[spec.name].value if spec.name in stored else spec.default,
                "default": spec.default, "minimum": spec.minimum, "maximum": spec.maximum,
                "description": spec.description,
                "updated_at": stored[spec.name].updated_at if spec.name in stored else None,
            }
            for spec in PARAMETER_SPECS.values()
        ]
        return Response(ParameterSerializer(rows, many=True).data)


@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("action", str, description="Only events of this action, e.g. token.created."),
]))
class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail, newest first (moderators only)."""

    serializer_class = AuditEventSerializer
    permission_classes = [permissions.IsAuthenticated, IsModerator, TokenHasScope]
    required_scopes = {"*": "moderate"}
    query_parameters = {"list": ("action",)}
    keyset_orderings = (("-id",),)

    def get_queryset(self):
        events = AuditEvent.objects.select_related("actor").order_by("-id")
        action_name = self.request.query_params.get("action")
        if action_name:
            events = events.filter(action=action_name)
        return events

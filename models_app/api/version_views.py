"""One version as a resource: read it (ETag, 304), edit its metadata (PATCH, If-Match, 412),
and its metadata history."""

from django.utils.http import http_date
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, permissions
from rest_framework.response import Response

from models_app.api.serializers import MetadataChangeSerializer, VersionSerializer
from models_app.api.views import require_scope
from models_app.inputs import RegistrationEditInput
from models_app.models import MetadataChange, Registration, Source
from models_app.selectors import model_versions, pick_version
from models_app.services import registration_update
from registry_site.pagination import NEWEST_FIRST
from registry_site.permissions import TokenHasScope

IF_MATCH = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER,
    description="The ETag you read: the edit is refused with 412 if the version changed since.")
ETAG = OpenApiParameter("ETag", str, OpenApiParameter.HEADER, response=[200],
                        description="The version's entity tag, after the edit.")


def _visible_version(request, name: str, version: str) -> Registration:
    """The version as the caller may see it; 404 for one they may not (as a read)."""
    return pick_version(model_versions(name=name, user=request.user, exact_usage=False),
                        version)


def _with_validators(response, registration: Registration):
    response["ETag"] = registration.etag
    response["Last-Modified"] = http_date(registration.updated_at.timestamp())
    return response


class VersionView(generics.GenericAPIView):
    """``GET`` and ``PATCH /api/v1/models/{name}/versions/{version}/``."""

    serializer_class = VersionSerializer
    permission_classes = [permissions.IsAuthenticatedOrReadOnly, TokenHasScope]
    # PATCH: `register` for the owner, `moderate` for a moderator editing another's version.
    required_scopes = {"patch": None}

    # If-None-Match and 304 come from ApiConditionalGetMiddleware, which keeps the ETag set
    # here (and the schema hook documents them on every read).
    @extend_schema(summary="One version", responses=VersionSerializer)
    def get(self, request, name, version):
        registration = Registration.objects.select_related("owner").get(
            pk=_visible_version(request, name, version).pk)
        return _with_validators(Response(VersionSerializer(registration).data), registration)

    @extend_schema(
        summary="Edit a version's description, tags, license or source URL (free)",
        description="The owner (token scope `register`) may; a moderator (scope `moderate`) "
                    "may with a `reason`. Only the fields sent change; each edit is kept in "
                    "`changes/`. Send `If-Match` with the ETag you read to refuse the edit "
                    "(412) if someone changed the version since.",
        request=RegistrationEditInput, parameters=[IF_MATCH, ETAG],
        responses={200: VersionSerializer,
                   412: OpenApiResponse(description="The version changed since that ETag.")},
    )
    def patch(self, request, name, version):
        registration = _visible_version(request, name, version)
        require_scope(request, "register" if registration.owner_id == request.user.pk
                      else "moderate")
        updated = registration_update(registration=registration, actor=request.user,
                                      source=Source.API, fields=request.data,
                                      if_match=request.headers.get("If-Match"))
        return _with_validators(Response(VersionSerializer(updated).data), updated)


class VersionChangesView(generics.ListAPIView):
    """``GET /api/v1/models/{name}/versions/{version}/changes/``: metadata edits, newest first."""

    serializer_class = MetadataChangeSerializer
    permission_classes = [permissions.AllowAny, TokenHasScope]
    queryset = MetadataChange.objects.none()  # names the model for the schema
    keyset_orderings = (NEWEST_FIRST,)

    def get_queryset(self):
        registration = _visible_version(self.request, self.kwargs["name"],
                                        self.kwargs["version"])
        return (MetadataChange.objects.filter(registration=registration)
                .select_related("actor").order_by(*NEWEST_FIRST))

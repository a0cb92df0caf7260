"""The registry API: register, list and search, read, moderate, record usage, statistics."""

import datetime

from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from models_app.api.serializers import (
    REGISTRATION_COLUMNS,
    VERSION_COLUMNS,
    ApprovedAtSerializer,
    ModelDetailSerializer,
    RegistrationSerializer,
    RegistryStatsSerializer,
    StatusChangeSerializer,
    UsageRecordSerializer,
    UsageStatsSerializer,
    VersionSummarySerializer,
    registration_data,
    version_summary_data,
)
from models_app.filtersets import ORDERINGS, RegistrationFilterSet
from models_app.inputs import RegistrationInput, StatusChangeInput, UsageRequestInput
from models_app.models import Registration, Source, StatusChange, version_validator
from models_app.read_cache import (
    CATALOG,
    LIST_ANSWER_SECONDS,
    cached_answer,
    cached_member_answer,
    store_answer,
)
from models_app.selectors import (
    VisibleCompiled,
    approved_versions_at,
    model_versions,
    named_versions,
    pick_version,
    registry_stats,
    usage_totals,
    visible_versions,
)
from models_app.services import registration_create, registration_transition, usage_record
from registry_site.api.created import created
from registry_site.compiled import MARKER_TEXT
from registry_site.errors import InvalidInput, NotFound
from registry_site.idempotency import idempotent
from registry_site.inputs import request_fields, validated
from registry_site.pagination import NEWEST_FIRST
from registry_site.permissions import TokenHasScope, request_has_scope
from registry_site.reuse import represented
from registry_site.roles import is_moderator

# Names may hold dots and be words such as "search" or "stats": the list has no sub-routes,
# so /models/<any name>/ is always a model.
NAME_PATTERN = r"[a-z0-9][a-z0-9._-]*"
VERSION_PARAMETER = OpenApiParameter("version", str, description="One version instead of "
                                     "the newest.")
# Every column ordering of the list pages by cursor; best match (the search rank) by page.
KEYSET_ORDERINGS = frozenset(ORDERINGS.values())
# How many versions a model's detail embeds; versions/ pages through the rest.
EMBEDDED_VERSIONS = 10
# The detail's read: one row more than embedded tells whether a next page exists, without a
# count.
_NEWEST = VisibleCompiled(
    lambda versions, name: named_versions(versions, name)
    .values(*REGISTRATION_COLUMNS)[:EMBEDDED_VERSIONS + 1], name=MARKER_TEXT)


def require_scope(request, scope: str) -> None:
    """For token requests whose scope depends on the object: refuse without ``scope``."""
    if not request_has_scope(request, scope):
        raise PermissionDenied(f"This token lacks the '{scope}' scope.")


class HistoryPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = StatusChangeSerializer(many=True)


@extend_schema_view(
    list=extend_schema(summary="Search and list registrations (one row per version)"),
    retrieve=extend_schema(summary="A model: the newest visible version and its versions",
                           parameters=[VERSION_PARAMETER]),
)
class ModelViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Registrations. Anonymous callers see approved versions; owners also their own;
    moderators everything."""

    queryset = Registration.objects.all()
    serializer_class = RegistrationSerializer
    filterset_class = RegistrationFilterSet
    query_parameters = {"history": ("approved_at",)}  # what the filterset does not take
    lookup_field = "name"
    lookup_value_regex = NAME_PATTERN
    required_scopes = {"create": "register", "usage": "usage"}
    throttle_scopes = {"create": "register", "usage": "usage"}

    def get_queryset(self):
        return Registration.objects.visible_to(self.request.user).select_related("owner", "usage")

    @property
    def keyset_orderings(self):
        # versions/ keeps its page links (its rows are the model's few versions).
        return {"list": KEYSET_ORDERINGS, "history": (NEWEST_FIRST,)}.get(self.action, ())

    def list(self, request):
        # Anonymous callers all see the same page for a URL: shared through the cache until a
        # write that changes the catalog commits (models_app.read_cache, CATALOG).
        if request.user.is_authenticated or request.accepted_media_type != "application/json":
            return self._list(request)
        variant = f"{request.scheme}://{request.get_host()}|{request.get_full_path()}"
        content, generation = cached_answer(CATALOG, variant)
        if content is None:
            content = request.accepted_renderer.render(self._list(request).data)
            store_answer(CATALOG, variant, generation, content, LIST_ANSWER_SECONDS)
        return HttpResponse(content, content_type="application/json")

    def _list(self, request) -> Response:
        # Pending executions are annotated last: ranked search rebuilds the queryset.
        queryset = self.filter_queryset(self.get_queryset()).with_pending_executions()
        # The sort key travels in the cursor, so each row also carries its ordering columns.
        keys = [column.lstrip("-") for column in queryset.query.order_by]
        rows = queryset.values(*dict.fromkeys([*REGISTRATION_COLUMNS, *keys]))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response([registration_data(r) for r in page])

    @idempotent
    @extend_schema(
        summary="Register a model version and pay its fee",
        request=RegistrationInput,
        responses={201: RegistrationSerializer,
                   402: OpenApiResponse(description="Balance too low: needed and balance."),
                   403: OpenApiResponse(description="The name belongs to another user."),
                   409: OpenApiResponse(description="This version is already registered."),
                   503: OpenApiResponse(description="Registrations are paused.")},
    )
    def create(self, request):
        # A JSON body goes to the service as sent, which checks it once; a form body is
        # parsed here first (its lists arrive as repeated keys).
        fields = (request_fields(RegistrationInput, request.data) if type(request.data) is dict
                  else validated(RegistrationInput, request.data))
        registration = registration_create(owner=request.user, source=Source.API, **fields)
        return created(request, represented(RegistrationSerializer, registration),
                       "models-api:model-version", name=registration.name,
                       version=registration.version)

    @extend_schema(responses=ModelDetailSerializer)
    def retrieve(self, request, name=None):
        # Anonymous callers all see the same answer (approved versions only), so it is
        # shared through the cache until a write on this name commits (models_app.read_cache);
        # so do signed-in callers while they would see the same (not a moderator, not an owner
        # of the name, no open proposal about one of its versions).
        user = request.user
        if request.accepted_media_type != "application/json" or is_moderator(user):
            return Response(self._detail(request, name))
        variant = f"{request.scheme}://{request.get_host()}|{request.query_params.get('version')}"
        if not user.is_authenticated:
            content, generation = cached_answer(name, variant)
        else:
            content, generation, shared = cached_member_answer(name, variant, user_id=user.pk)
            if not shared:
                return Response(self._detail(request, name))
        if content is None:
            # The anonymous answer, whoever asks: only it may be stored for anonymous callers.
            content = request.accepted_renderer.render(
                self._detail(request, name, user=AnonymousUser()))
            store_answer(name, variant, generation, content)
        return HttpResponse(content, content_type="application/json")

    def _detail(self, request, name: str, *, user=None) -> dict:
        user = user or request.user
        newest = _NEWEST.rows(user=user, name=name)
        if not newest:
            raise NotFound(f"No model named {name!r}.")
        wanted = request.query_params.get("version")
        row = newest[0] if not wanted else next(
            (v for v in newest if v["version"] == wanted), None)
        if row is None and version_validator.regex.fullmatch(wanted):
            row = (visible_versions(name=name, user=user)  # an older version
                   .values(*REGISTRATION_COLUMNS).filter(version=wanted).first())
        if row is None:
            raise NotFound(f"{name} has no version {wanted!r}.")
        versions_next = None
        if len(newest) > EMBEDDED_VERSIONS:
            url = request.build_absolute_uri(self.reverse_action("versions", args=[name]))
            versions_next = replace_query_param(
                replace_query_param(url, "page", 2), "page_size", EMBEDDED_VERSIONS)
        return {
            **registration_data(row),
            "versions": [version_summary_data(v) for v in newest[:EMBEDDED_VERSIONS]],
            "versions_next": versions_next,
        }

    @extend_schema(summary="Every visible version of a model, newest first, page by page",
                   responses=VersionSummarySerializer(many=True))
    @action(detail=True, methods=["get"], filterset_class=None)
    def versions(self, request, name=None):
        versions = visible_versions(name=name, user=request.user)
        page = self.paginate_queryset(versions.values(*VERSION_COLUMNS))
        if not page and not versions.exists():
            raise NotFound(f"No model named {name!r}.")
        return self.get_paginated_response([version_summary_data(r) for r in page])

    @idempotent
    @extend_schema(
        summary="Change a version's status",
        description="Moderators (token scope `moderate`) make any move of the status table "
                    "with a reason; the owner (scope `register`) may deprecate an approved or "
                    "suspended version. A refused move answers 409 naming from and to.",
        request=StatusChangeInput, responses=RegistrationSerializer,
    )
    @action(detail=True, methods=["post"], url_path="status", url_name="status",
            permission_classes=[permissions.IsAuthenticated, TokenHasScope])
    def change_status(self, request, name=None):
        data = validated(StatusChangeInput, request.data)
        registration = pick_version(model_versions(name=name, user=request.user),
                                    data["version"])
        to_status = data["status"]
        owner_move = (registration.owner_id == request.user.pk
                      and (registration.status, to_status) in Registration.OWNER_TRANSITIONS)
        require_scope(request, "register" if owner_move else "moderate")
        registration_transition(
            registration=registration, to_status=to_status, actor=request.user,
            source=Source.API, reason=data["reason"],
        )
        return Response(represented(RegistrationSerializer, registration))

    @idempotent
    @extend_schema(
        summary="Record one execution and pay the execution fee",
        request=UsageRequestInput,
        responses={201: UsageRecordSerializer,
                   402: OpenApiResponse(description="Balance too low for the fee."),
                   409: OpenApiResponse(description="The version is not approved.")},
    )
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAuthenticated,
                                                              TokenHasScope])
    def usage(self, request, name=None):
        data = validated(UsageRequestInput, request.data)
        record = usage_record(name=name, version=data.get("version") or "", user=request.user,
                              success=data["success"], duration_us=data["duration_us"])
        # The record has no URL of its own: Location is where its counts are read.
        return created(request, represented(UsageRecordSerializer, record),
                       "models-api:model-stats", name=name,
                       query={"version": record.registration.version})

    @extend_schema(
        summary="Usage statistics: totals over the visible versions, or one version",
        parameters=[VERSION_PARAMETER], responses=UsageStatsSerializer,
    )
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def stats(self, request, name=None):
        versions = model_versions(name=name, user=request.user)
        version = request.query_params.get("version")
        if version:
            versions = [pick_version(versions, version)]
        return Response(UsageStatsSerializer(
            {"name": name, "version": version or None, **usage_totals(versions)}
        ).data)

    @extend_schema(
        summary="Status history, or which versions were approved at a time",
        parameters=[OpenApiParameter(
            "approved_at", str,
            description="ISO 8601 time: answer which versions were approved at that moment.",
        )],
        responses=PolymorphicProxySerializer(
            component_name="ModelHistory",
            serializers=[HistoryPageSerializer, ApprovedAtSerializer],
            resource_type_field_name=None,
        ),
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def history(self, request, name=None):
        raw = request.query_params.get("approved_at")
        if raw is not None:
            return Response(ApprovedAtSerializer(self._approved_at(name, raw, request.user)).data)
        ids = [r.pk for r in model_versions(name=name, user=request.user)]
        changes = (StatusChange.objects.filter(registration__in=ids)
                   .select_related("registration", "actor").order_by(*NEWEST_FIRST))
        page = self.paginate_queryset(changes)
        return self.get_paginated_response(StatusChangeSerializer(page, many=True).data)

    @staticmethod
    def _approved_at(name: str, raw: str, user) -> dict:
        try:
            when = parse_datetime(raw.strip())
        except ValueError:
            when = None
        if when is not None and timezone.is_naive(when):
            when = timezone.make_aware(when, datetime.UTC)
        try:
            when = when and when.astimezone(datetime.UTC)
        except OverflowError:
            when = None
        if when is None:
            raise InvalidInput({"approved_at": "An ISO 8601 time within years 1-9999, such "
                                               "as 2026-01-31T12:00:00Z."})
        # Versions approved at that moment were public then, so every version of the name
        # is considered, whatever its status now. A name that was never public and that the
        # caller cannot see now stays hidden (404), as on every other route.
        versions = approved_versions_at(name=name, when=when)
        if not versions:
            model_versions(name=name, user=user)
        return {"name": name, "approved_at": when, "versions": versions}


class RegistryStatsView(APIView):
    """Registry-wide figures (SPEC 7), refreshed at most every 30 seconds."""

    permission_classes = [permissions.AllowAny, TokenHasScope]

    @extend_schema(responses=RegistryStatsSerializer)
    def get(self, request):
        return Response(RegistryStatsSerializer(registry_stats()).data)

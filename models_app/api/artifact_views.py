"""PUT and GET the artifact file of one registered version."""

import os
import re

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from models_app.artifacts import artifact_for_download, artifact_upload, registration_for_artifact
from models_app.models import Artifact
from registry_site.api.created import created

# filename="..." (or filename*=UTF-8''...) in a Content-Disposition header.
FILENAME_RE = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)


class ArtifactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Artifact
        fields = ["sha256", "size_bytes", "file_format", "scan_summary", "scanner",
                  "uploaded_at"]
        read_only_fields = fields


class ArtifactView(APIView):
    """The artifact file: the owner uploads it once (raw body); approved versions, the owner
    and moderators download it."""

    required_scopes = {"put": "register"}
    throttle_scopes = {"put": "register"}

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={201: ArtifactSerializer,
                   409: OpenApiResponse(description="The version already has an artifact.")},
        description="Upload the raw file as the request body (`Content-Length` required). "
                    "Optional `Content-Disposition: attachment; filename=\"model.safetensors\"` "
                    "names it. Refused with 400 (`size_mismatch`, `hash_mismatch`, "
                    "`artifact_too_large`, `artifact_refused` with a `reason`) and nothing "
                    "stored; 409 `artifact_exists` when one is already stored.",
    )
    def put(self, request, name, version):
        registration = registration_for_artifact(name=name, version=version, user=request.user)
        match = FILENAME_RE.search(request.headers.get("Content-Disposition", ""))
        artifact = artifact_upload(
            registration=registration, user=request.user, stream=request.stream,
            content_length=_content_length(request), filename=match.group(1) if match else "",
        )
        return created(request, ArtifactSerializer(artifact).data, "models-api:model-artifact",
                       name=name, version=version)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(
        OpenApiTypes.BINARY, description="The file, as an attachment.")})
    def get(self, request, name, version):
        registration = registration_for_artifact(name=name, version=version, user=request.user)
        artifact = artifact_for_download(registration=registration)
        # Always an opaque attachment: a stored "x.html" must never render on this origin.
        response = FileResponse(
            artifact.file.open("rb"), as_attachment=True,
            filename=os.path.basename(artifact.file.name),
            content_type="application/octet-stream",
        )
        response["ETag"] = f'"{artifact.sha256}"'
        return response


def _content_length(request) -> int | None:
    try:
        return int(request.META["CONTENT_LENGTH"])
    except (KeyError, ValueError):
        return None

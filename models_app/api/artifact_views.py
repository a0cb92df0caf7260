"""PUT and GET the artifact file of one registered version."""

import os
import re

from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from models_app.artifacts import (
    artifact_downloaded,
    artifact_for_download,
    artifact_upload,
    registration_for_artifact,
)
from models_app.models import Artifact
from registry_site.api.created import created
from registry_site.etags import etag_named

# filename="..." (or filename*=UTF-8''...) in a Content-Disposition header.
FILENAME_RE = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)


UNSATISFIABLE = (-1, -1)
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
RANGE = OpenApiParameter("Range", str, OpenApiParameter.HEADER, pattern=r"^bytes=\d*-\d*$",
                         description="One byte range, such as bytes=1048576- to resume.")
IF_RANGE = OpenApiParameter("If-Range", str, OpenApiParameter.HEADER,
                            description="The ETag of the file the Range is of.")
IF_NONE_MATCH_FILE = OpenApiParameter(
    "If-None-Match", str, OpenApiParameter.HEADER,
    description="The ETag (SHA-256) of a copy you hold: 304 while it is this file.")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of one ``Range: bytes=`` range of a ``size``-byte file;
    UNSATISFIABLE when it starts beyond the end; None for no range, several, or one this
    cannot read (the whole file is then the answer, as HTTP allows)."""
    match = _RANGE.fullmatch((header or "").strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last N bytes
        length = int(last)
        if length == 0:
            return UNSATISFIABLE
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        return UNSATISFIABLE
    if end < start:
        return None
    return start, end


def _chunks(file, start: int, length: int, chunk: int = 1 << 16):
    with file:
        file.seek(start)
        while length > 0:
            data = file.read(min(chunk, length))
            if not data:
                return
            length -= len(data)
            yield data


class ArtifactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Artifact
        fields = ["sha256", "size_bytes", "file_format", "scan_summary", "scanner",
                  "uploaded_at", "downloads"]
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

    @extend_schema(
        parameters=[RANGE, IF_RANGE, IF_NONE_MATCH_FILE],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file, as an attachment."),
            (206, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The bytes the Range asked for."),
            304: OpenApiResponse(description="Not modified: the ETag (the file's SHA-256) "
                                             "you sent is this file's."),
            416: OpenApiResponse(description="The Range starts beyond the end of the file."),
        },
        description="The file as an attachment, with `ETag` (its SHA-256, quoted) and "
                    "`Accept-Ranges: bytes`. One `Range: bytes=start-end` (or `start-`, or "
                    "`-suffix`) answers 206 with `Content-Range`, so an interrupted download "
                    "resumes; `If-Range` with the ETag resumes only the same file. Several "
                    "ranges, or a malformed Range, get the whole file.")
    def get(self, request, name, version):
        registration = registration_for_artifact(name=name, version=version, user=request.user)
        artifact = artifact_for_download(registration=registration)
        etag = f'"{artifact.sha256}"'
        if etag_named(request.headers.get("If-None-Match"), etag, weak=True):
            response = HttpResponse(status=304)
            response["ETag"] = etag
            return response
        size = artifact.size_bytes
        wanted = byte_range(request.headers.get("Range"), size)
        if_range = request.headers.get("If-Range")
        if wanted is not None and if_range is not None and if_range.strip() != etag:
            wanted = None  # another file than the one the client has part of: all of it
        if wanted == UNSATISFIABLE:
            # The error shape, with the size a client needs to ask again (RFC 9110 15.5.17).
            return Response({"detail": f"The file is {size} bytes; the Range starts beyond "
                                       "its end.", "code": "range_not_satisfiable",
                             "size": size},
                            status=416, headers={"Content-Range": f"bytes */{size}"})
        filename = os.path.basename(artifact.file.name)
        if wanted is None or wanted[0] == 0:
            artifact_downloaded(artifact=artifact)  # a resumed download's later parts are not
        if wanted is None:
            # Always an opaque attachment: a stored "x.html" must never render on this origin.
            response = FileResponse(artifact.file.open("rb"), as_attachment=True,
                                    filename=filename, content_type="application/octet-stream")
        else:
            start, end = wanted
            response = StreamingHttpResponse(
                _chunks(artifact.file.open("rb"), start, end - start + 1),
                status=206, content_type="application/octet-stream")
            response["Content-Range"] = f"bytes {start}-{end}/{size}"
            response["Content-Length"] = str(end - start + 1)
            response["Content-Disposition"] = content_disposition_header(True, filename)
        response["ETag"] = etag
        response["Accept-Ranges"] = "bytes"
        return response


def _content_length(request) -> int | None:
    try:
        return int(request.META["CONTENT_LENGTH"])
    except (KeyError, ValueError):
        return None

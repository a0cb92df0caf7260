"""Artifact upload and download through the API, end to end."""

import hashlib

import pytest
from django.core.cache import cache

from models_app.models import Artifact
from models_app.services import registration_transition
from registry_site.models import AuditEvent, Parameter
from registry_site.parameters import cache_key
from tests.security import factories as f

pytestmark = pytest.mark.django_db


def url(registration):
    return f"/api/v1/models/{registration.name}/versions/{registration.version}/artifact/"


def put(client, registration, body: bytes, **headers):
    return client.put(url(registration), data=body, content_type="application/octet-stream",
                      **headers)


def test_owner_uploads_then_downloads_the_exact_bytes(client_for, user, register):
    body = f.safetensors()
    registration = register(user, body)
    owner = client_for(user, scopes=["read", "register"])

    response = put(owner, registration, body,
                   HTTP_CONTENT_DISPOSITION='attachment; filename="tiny.safetensors"')

    assert response.status_code == 201, response.json()
    assert response.json()["file_format"] == "safetensors"
    assert response.json()["sha256"] == hashlib.sha256(body).hexdigest()
    artifact = Artifact.objects.get(registration=registration)
    assert artifact.file.name.endswith("tiny.safetensors")
    assert AuditEvent.objects.filter(action="artifact.uploaded").count() == 1

    download = owner.get(url(registration))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == body
    assert download["Content-Type"] == "application/octet-stream"
    assert download["Content-Disposition"].startswith("attachment;")
    assert download["ETag"] == f'"{artifact.sha256}"'


def test_second_upload_is_refused_with_409(client_for, user, register):
    body = f.benign_pickle()
    registration = register(user, body)
    owner = client_for(user)
    assert put(owner, registration, body).status_code == 201
    response = put(owner, registration, body)
    assert response.status_code == 409
    assert response.json()["code"] == "artifact_exists"


def test_other_user_cannot_upload(client_for, user, other_user, moderator, register):
    body = f.benign_pickle()
    pending = register(user, body, name="pending-model")
    approved = register(user, body, name="approved-model", approve_by=moderator)
    stranger = client_for(other_user)

    # A pending version of someone else's does not exist for a stranger; an approved one does,
    # but only its owner may upload.
    assert put(stranger, pending, body).status_code == 404
    response = put(stranger, approved, body)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert put(client_for(moderator), approved, body).status_code == 403
    assert not Artifact.objects.exists()
    assert AuditEvent.objects.filter(action="security.permission_denied").count() == 2


def test_token_without_register_scope_gets_403(client_for, user, register):
    body = f.benign_pickle()
    registration = register(user, body)
    response = put(client_for(user, scopes=["read"]), registration, body)
    assert response.status_code == 403
    assert "register" in response.json()["detail"]
    assert not Artifact.objects.exists()


def test_anonymous_upload_gets_401(anon_client, user, register):
    body = f.benign_pickle()
    registration = register(user, body)
    assert put(anon_client, registration, body).status_code == 401


def test_download_rules(client_for, anon_client, user, other_user, moderator, register):
    body = f.benign_pickle()
    pending = register(user, body, name="pending-model")
    approved = register(user, body, name="approved-model", approve_by=moderator)
    owner = client_for(user)
    assert put(owner, pending, body).status_code == 201
    assert put(owner, approved, body).status_code == 201

    assert anon_client.get(url(approved)).status_code == 200
    assert client_for(other_user).get(url(approved)).status_code == 200
    assert anon_client.get(url(pending)).status_code == 404
    assert client_for(other_user).get(url(pending)).status_code == 404
    assert owner.get(url(pending)).status_code == 200
    assert client_for(moderator).get(url(pending)).status_code == 200


def test_download_without_artifact_is_404(anon_client, user, moderator, register):
    registration = register(user, b"x" * 10, approve_by=moderator)
    assert anon_client.get(url(registration)).status_code == 404


@pytest.mark.parametrize(
    "body, code",
    [
        (f.benign_pickle() + b"!", "size_mismatch"),
        (f.benign_pickle()[:-1], "size_mismatch"),
        (b"Z" * len(f.benign_pickle()), "hash_mismatch"),
    ],
    ids=["longer", "shorter", "other-bytes"],
)
def test_size_and_hash_mismatch_are_refused_and_nothing_is_stored(
    client_for, user, register, settings, body, code
):
    registration = register(user, f.benign_pickle())
    response = put(client_for(user), registration, body)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Artifact.objects.exists()
    assert not (settings.MEDIA_ROOT / "artifacts").exists()
    event = AuditEvent.objects.get(action="security.artifact_refused")
    assert event.details["code"] == code
    assert event.actor_id == user.pk


@pytest.mark.parametrize(
    "body, reason",
    [
        (f.evil_pickle(), "unsafe_pickle"),
        (f.torch_zip(f.evil_pickle(2)), "unsafe_pickle"),
        (f.npz({"x.npy": f.npy(f.evil_pickle())}), "unsafe_pickle"),
        (f.ELF, "executable"),
        (f.MACHO_MAGICS[3] + b"\x00" * 64, "executable"),
        (f.SHEBANG, "executable"),
        (f.safetensors(header_len=10**6), "malformed_safetensors"),
    ],
    ids=["pickle", "torch-zip", "npz", "elf", "mach-o", "shebang", "safetensors"],
)
def test_dangerous_content_is_refused_and_nothing_is_stored(
    client_for, user, register, settings, body, reason
):
    registration = register(user, body)
    response = put(client_for(user), registration, body)

    assert response.status_code == 400
    assert response.json()["code"] == "artifact_refused"
    assert response.json()["reason"] == reason
    assert not Artifact.objects.exists()
    assert not (settings.MEDIA_ROOT / "artifacts").exists()
    event = AuditEvent.objects.get(action="security.artifact_refused")
    assert event.details["reason"] == reason


def test_upload_larger_than_max_model_size_is_refused(client_for, user, register):
    body = f.benign_pickle()
    registration = register(user, body)
    # Lowered after registration (e.g. by a governance proposal).
    Parameter.objects.update_or_create(name="max_model_size", defaults={"value": 10})
    cache.delete(cache_key("max_model_size"))

    response = put(client_for(user), registration, body)
    assert response.status_code == 400
    assert response.json()["code"] == "artifact_too_large"
    assert not Artifact.objects.exists()


def test_upload_is_streamed_not_read_into_request_body(client_for, user, register, settings):
    """The body is over the request-size limit, yet accepted: it never goes through
    request.body (DATA_UPLOAD_MAX_MEMORY_SIZE) nor the size-limit middleware."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    header = f.safetensors({"t": {"dtype": "U8", "shape": [4096], "data_offsets": [0, 4096]}})
    body = header + bytes(range(256)) * 16
    registration = register(user, body)

    response = put(client_for(user), registration, body)
    assert response.status_code == 201, response.json()


def test_scan_result_snippet_shows_the_artifact_or_its_absence(client_for, user, register):
    from django.template.loader import render_to_string

    body = f.safetensors()
    registration = register(user, body)
    empty = render_to_string("models_app/_artifact.html", {"registration": registration})
    assert "No artifact uploaded" in empty
    assert put(client_for(user), registration, body).status_code == 201
    registration.refresh_from_db()
    shown = render_to_string("models_app/_artifact.html", {"registration": registration})
    assert "safetensors header valid" in shown
    assert hashlib.sha256(body).hexdigest() in shown
    assert url(registration) in shown


def test_empty_artifact_is_accepted_not_a_server_error(client_for, user, register):
    registration = register(user, b"", name="empty-model")
    response = put(client_for(user), registration, b"")
    assert response.status_code == 201, response.content
    assert Artifact.objects.filter(registration=registration).exists()


def test_zip_with_an_empty_member_is_scanned(client_for, user, register):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", b"")
    body = buffer.getvalue()
    registration = register(user, body, name="empty-member")
    response = put(client_for(user), registration, body)
    assert response.status_code == 201, response.content


@pytest.fixture
def uploaded(client_for, user, register):
    real = f.safetensors()
    registration = register(user, real)
    owner = client_for(user, scopes=["read", "register"])
    assert put(owner, registration, real).status_code == 201
    return owner, registration, real


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_a_download_resumes_with_a_range(uploaded):
    owner, registration, real = uploaded
    size = len(real)
    whole = owner.get(url(registration))
    assert whole["Accept-Ranges"] == "bytes"
    etag = whole["ETag"]
    part = owner.get(url(registration), HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206
    assert (part["Content-Range"], part["Content-Length"]) == (f"bytes 10-19/{size}", "10")
    assert content(part) == real[10:20]
    assert part["Content-Disposition"].startswith("attachment")
    rest = owner.get(url(registration), HTTP_RANGE="bytes=20-", HTTP_IF_RANGE=etag)
    assert (rest.status_code, content(rest)) == (206, real[20:])
    tail = owner.get(url(registration), HTTP_RANGE="bytes=-5")
    assert content(tail) == real[-5:]
    beyond = owner.get(url(registration), HTTP_RANGE=f"bytes={size + 10}-")
    assert beyond.status_code == 416
    assert beyond["Content-Range"] == f"bytes */{size}"
    assert (beyond.json()["code"], beyond.json()["size"]) == ("range_not_satisfiable", size)


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-1", "bytes=9-3", "bytes=-"])
def test_a_range_it_cannot_serve_gets_the_whole_file(uploaded, header):
    owner, registration, real = uploaded
    response = owner.get(url(registration), HTTP_RANGE=header)
    assert (response.status_code, content(response)) == (200, real)


def test_a_stale_if_range_or_a_held_etag(uploaded):
    owner, registration, real = uploaded
    stale = owner.get(url(registration), HTTP_RANGE="bytes=0-1", HTTP_IF_RANGE='"other"')
    assert (stale.status_code, content(stale)) == (200, real)
    held = owner.get(url(registration),
                     HTTP_IF_NONE_MATCH=f'"{hashlib.sha256(real).hexdigest()}"')
    assert (held.status_code, held.content) == (304, b"")


def test_downloads_are_counted_once_per_whole_download(uploaded, anon_client, moderator,
                                                       client):
    owner, registration, real = uploaded
    registration_transition(registration=registration, to_status="approved", actor=moderator,
                            source="admin", reason="checked")
    etag = owner.get(url(registration))["ETag"]  # 1: a whole download
    anon_client.get(url(registration), HTTP_RANGE="bytes=0-9")  # 2: a download's first part
    anon_client.get(url(registration), HTTP_RANGE="bytes=10-")  # its rest: not another
    anon_client.get(url(registration), HTTP_IF_NONE_MATCH=etag)  # 304: nothing sent
    assert Artifact.objects.get(registration=registration).downloads == 2
    stats = anon_client.get(f"/api/v1/models/{registration.name}/stats/").json()
    assert stats["downloads"] == 2
    assert anon_client.get("/api/v1/stats/").json()["total_downloads"] == 2
    page = client.get(f"/models/{registration.name}/").content.decode()
    assert "<dt>Downloads</dt><dd>2</dd>" in page
    assert "<dt>Artifact downloads</dt><dd>2</dd>" in page

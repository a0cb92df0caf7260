"""Orphan artifact files (a worker killed between the copy to storage and the commit) are
cleaned by a command and at upload start, with real files in a temporary MEDIA_ROOT."""

import os
import time

import pytest
from django.core.management import call_command

from models_app.models import Artifact
from tests.security import factories as f

pytestmark = pytest.mark.django_db


def url(registration):
    return f"/api/v1/models/{registration.name}/versions/{registration.version}/artifact/"


def put(client, registration, body: bytes, filename: str):
    return client.put(url(registration), data=body, content_type="application/octet-stream",
                      HTTP_CONTENT_DISPOSITION=f'attachment; filename="{filename}"')


def stored(settings, name: str, *, age: int, content: bytes = b"left behind") -> str:
    """A file in artifact storage, ``age`` seconds old."""
    path = settings.MEDIA_ROOT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    then = time.time() - age
    os.utime(path, (then, then))
    return name


@pytest.fixture
def uploaded(settings, client_for, user, register):
    """A real artifact row and its file, made an hour and a half old."""
    body = f.safetensors()
    registration = register(user, body, name="kept-model")
    assert put(client_for(user), registration, body, "model.safetensors").status_code == 201
    artifact = Artifact.objects.get(registration=registration)
    path = settings.MEDIA_ROOT / artifact.file.name
    os.utime(path, (time.time() - 5400, time.time() - 5400))
    return artifact


def test_command_deletes_only_old_unreferenced_files(settings, uploaded, capsys):
    old = stored(settings, "artifacts/gone-model/1.0.0/model.pt", age=7200)
    young = stored(settings, "artifacts/busy-model/1.0.0/model.pt", age=60)

    call_command("clean_orphan_artifacts", "--dry-run")
    assert "Would delete 1 orphan artifact file(s)." in capsys.readouterr().out
    assert (settings.MEDIA_ROOT / old).exists()

    call_command("clean_orphan_artifacts")
    output = capsys.readouterr().out
    assert old in output
    assert "Deleted 1 orphan artifact file(s)." in output
    assert not (settings.MEDIA_ROOT / old).exists()
    assert (settings.MEDIA_ROOT / young).exists()
    assert (settings.MEDIA_ROOT / uploaded.file.name).read_bytes() == f.safetensors()

    call_command("clean_orphan_artifacts", "--older-than", "0")
    assert not (settings.MEDIA_ROOT / young).exists()
    assert (settings.MEDIA_ROOT / uploaded.file.name).exists()


def test_files_outside_the_artifacts_tree_are_left_alone(settings, uploaded):
    other = stored(settings, "exports/report.csv", age=7200)
    call_command("clean_orphan_artifacts", "--older-than", "0")
    assert (settings.MEDIA_ROOT / other).exists()


def test_upload_start_removes_an_old_orphan_of_the_same_version(settings, client_for, user,
                                                                register):
    body = f.safetensors()
    registration = register(user, body, name="retried-model")
    orphan = stored(settings, "artifacts/retried-model/1.0.0/model.safetensors", age=7200)
    young = stored(settings, "artifacts/retried-model/1.0.0/other.bin", age=60)

    response = put(client_for(user), registration, body, "model.safetensors")

    assert response.status_code == 201, response.json()
    artifact = Artifact.objects.get(registration=registration)
    # The orphan is gone, so the new file takes the name it was blocking.
    assert artifact.file.name == orphan
    assert (settings.MEDIA_ROOT / orphan).read_bytes() == body
    assert (settings.MEDIA_ROOT / young).exists()


def test_a_refused_upload_still_cleans_and_stores_nothing(settings, client_for, user, register):
    body = f.evil_pickle()
    registration = register(user, body, name="refused-model")
    orphan = stored(settings, "artifacts/refused-model/1.0.0/model.pkl", age=7200)

    response = put(client_for(user), registration, body, "model.pkl")

    assert response.status_code == 400
    assert response.json()["code"] == "artifact_refused"
    assert not (settings.MEDIA_ROOT / orphan).exists()
    assert [p for p in (settings.MEDIA_ROOT / "artifacts").rglob("*") if p.is_file()] == []

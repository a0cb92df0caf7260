"""Artifact upload (stream, hash, scan, store) and download, for one registered version.

An upload is streamed to an anonymous temporary file in chunks while its SHA-256 is computed,
so memory stays flat whatever the size. Only once size, hash and content checks all pass is it
copied to Django's default storage and recorded as an Artifact row; a refused upload leaves
nothing behind but a ``security.artifact_refused`` audit event. An artifact is immutable: a
registration's declared hash never changes, so a second upload is refused (409) rather than
replacing the file.

A worker killed between the copy to storage and the commit leaves a file no row references:
``artifact_orphans_clean`` deletes such files once they are an hour old (younger ones may
belong to an upload still committing), at the start of every upload for that version's
directory and everywhere with ``manage.py clean_orphan_artifacts``.
"""

import hashlib
import os
import posixpath
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from typing import IO

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import get_valid_filename

from models_app.models import Artifact, Registration, artifact_path
from models_app.scanning import ScanRefused, scan_artifact
from registry_site.audit import audit_record
from registry_site.errors import Conflict, DomainError, Forbidden, NotFound
from registry_site.parameters import get_parameter
from registry_site.stats_cache import statistics_changed

CHUNK_SIZE = 1024 * 1024
# A stored file no row references is an orphan once it is this old: an upload copies its file
# before committing the row, so a younger one may still be on its way.
ORPHAN_AGE_SECONDS = 3600
ARTIFACTS_ROOT = "artifacts"

DEFAULT_FILENAMES = {
    "safetensors": "model.safetensors",
    "pytorch-zip": "model.pt",
    "numpy-npz": "arrays.npz",
    "numpy-npy": "array.npy",
    "pickle": "model.pkl",
    "gguf": "model.gguf",
}


class ArtifactRefused(DomainError):
    """The upload failed a check; ``code`` names which (hash, size, content)."""


def registration_for_artifact(*, name: str, version: str, user) -> Registration:
    """The version as the caller may see it: approved ones for everyone, all for the owner and
    moderators; anything else is NotFound, so hidden versions do not reveal themselves."""
    registration = (
        Registration.objects.visible_to(user, read_only_extras=False).select_related("owner")
        .filter(name=name, version=version).first()
    )
    if registration is None:
        raise NotFound(f"No version {version!r} of a model named {name!r}.")
    return registration


def artifact_for_download(*, registration: Registration) -> Artifact:
    """The stored artifact of a version the caller may see (registration_for_artifact applies
    the rule: approved, own, or moderator)."""
    artifact = Artifact.objects.filter(registration=registration).first()
    if artifact is None:
        raise NotFound(f"{registration} has no artifact to download.")
    return artifact


def artifact_downloaded(*, artifact: Artifact) -> None:
    """Count one download of ``artifact``: one UPDATE in its own short transaction, so
    downloads of a popular file wait for each other only for the increment itself."""
    Artifact.objects.filter(pk=artifact.pk).update(downloads=F("downloads") + 1)
    statistics_changed()


def artifact_upload(*, registration: Registration, user, stream: IO[bytes] | None,
                    content_length: int | None, filename: str = "") -> Artifact:
    """Stream, verify, scan and store the artifact of ``registration`` (its owner only)."""
    if registration.owner_id != user.pk:
        raise Forbidden("Only the owner of a model may upload its artifact.")
    if Artifact.objects.filter(registration=registration).exists():
        raise Conflict(f"{registration} already has an artifact; artifacts cannot be replaced.",
                       code="artifact_exists")
    filename = get_valid_filename(os.path.basename(filename or "")) if filename else ""
    # Cheap and bounded: one directory, where an earlier killed upload of this version left
    # its file.
    artifact_orphans_clean(under=posixpath.dirname(
        artifact_path(Artifact(registration=registration), "x")))

    declared = registration.size_bytes
    max_size = get_parameter("max_model_size")
    if declared > max_size:
        _refuse(registration, user, "artifact_too_large",
                f"The declared size {declared} exceeds max_model_size ({max_size} bytes).")
    if content_length is not None and content_length != declared:
        _refuse(registration, user, "size_mismatch",
                f"The body is {content_length} bytes but size_bytes is {declared}.")

    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as spool:
        digest = hashlib.sha256()
        received = 0
        while stream is not None and (chunk := stream.read(CHUNK_SIZE)):
            received += len(chunk)
            # Stop reading at the first byte past the declared size: never spool more.
            if received > declared:
                _refuse(registration, user, "size_mismatch",
                        f"The body is longer than size_bytes ({declared} bytes).")
            digest.update(chunk)
            spool.write(chunk)
        if received != declared:
            _refuse(registration, user, "size_mismatch",
                    f"The body is {received} bytes but size_bytes is {declared}.")
        sha256 = digest.hexdigest()
        if sha256 != registration.hash:
            _refuse(registration, user, "hash_mismatch",
                    f"The body's SHA-256 is {sha256} but the declared hash is "
                    f"{registration.hash}.", sha256=sha256)
        spool.flush()
        try:
            report = scan_artifact(spool, size=received, filename=filename)
        except ScanRefused as refusal:
            _refuse(registration, user, "artifact_refused", refusal.message,
                    reason=refusal.reason)
        spool.seek(0)
        return _store(registration=registration, user=user, spool=spool, sha256=sha256,
                      size=received, report=report,
                      filename=filename or DEFAULT_FILENAMES.get(report.file_format,
                                                                 "artifact.bin"))


def _store(*, registration, user, spool, sha256, size, report, filename) -> Artifact:
    artifact = Artifact(
        registration=registration, sha256=sha256, size_bytes=size,
        file_format=report.file_format, scan_summary=report.summary, scanner=report.scanner,
        uploaded_by=user,
    )
    # The copy to storage (possibly slow, possibly remote) happens before the transaction,
    # so no row lock or SQLite write lock is held while it runs.
    artifact.file.save(filename, File(spool, name=filename), save=False)
    try:
        with transaction.atomic():
            # The registration row serializes two uploads racing for the same version.
            Registration.objects.select_for_update().filter(pk=registration.pk).first()
            if Artifact.objects.filter(registration=registration).exists():
                raise Conflict(f"{registration} already has an artifact; artifacts cannot be "
                               "replaced.", code="artifact_exists")
            artifact.save(force_insert=True)
            audit_record(action="artifact.uploaded", actor=user, target=registration, details={
                "sha256": sha256, "size_bytes": size, "file_format": report.file_format,
                "scan_summary": report.summary, "scanner": report.scanner,
            })
    except BaseException:
        # The row did not commit: the stored file must not outlive it.
        Artifact.file.field.storage.delete(artifact.file.name)
        raise
    return artifact


def _refuse(registration, user, code: str, detail: str, **extra):
    """Record the refusal in the audit trail, then refuse the upload."""
    audit_record(action="security.artifact_refused", actor=user, target=registration,
                 details={"code": code, "detail": detail, **extra})
    raise ArtifactRefused(detail, code=code, **extra)


def _stored_files(storage, directory: str) -> Iterator[str]:
    try:
        directories, files = storage.listdir(directory)
    except FileNotFoundError:
        return
    for name in files:
        yield posixpath.join(directory, name)
    for name in directories:
        yield from _stored_files(storage, posixpath.join(directory, name))


def artifact_orphans_clean(*, older_than: int = ORPHAN_AGE_SECONDS, under: str = ARTIFACTS_ROOT,
                           dry_run: bool = False, batch: int = 500) -> list[str]:
    """Delete the files under ``under`` in artifact storage that no Artifact row references
    and that are older than ``older_than`` seconds; return their names."""
    storage = Artifact.file.field.storage
    cutoff = timezone.now() - timedelta(seconds=older_than)
    removed = []

    def sweep(candidates: list[str]) -> None:
        referenced = set(Artifact.objects.filter(file__in=candidates)
                         .values_list("file", flat=True))
        for name in candidates:
            if name not in referenced:
                if not dry_run:
                    storage.delete(name)
                removed.append(name)

    candidates = []
    for name in _stored_files(storage, under):
        if storage.get_modified_time(name) < cutoff:
            candidates.append(name)
        if len(candidates) >= batch:
            sweep(candidates)
            candidates = []
    if candidates:
        sweep(candidates)
    return removed

import hashlib

import pytest

from models_app.models import Registration
from models_app.services import registration_create, registration_transition


def register_version(owner, content: bytes, *, name="tiny-model", version="1.0.0",
                     approve_by=None, **fields) -> Registration:
    """Register a version whose declared hash and size match ``content``."""
    registration = registration_create(
        owner=owner, name=name, version=version,
        hash=hashlib.sha256(content).hexdigest(), size_bytes=len(content),
        parameter_count=fields.pop("parameter_count", 7), **fields,
    )
    if approve_by is not None:
        registration = registration_transition(
            registration=registration, to_status=Registration.Status.APPROVED,
            actor=approve_by, source="admin", reason="looks fine",
        )
    return registration


@pytest.fixture
def register(db):
    return register_version

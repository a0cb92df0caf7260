"""Registry fixtures: a way to register and to move versions through the real services."""

import pytest

from models_app.models import Source
from models_app.services import registration_create, registration_transition

HASH = "ab" * 32


@pytest.fixture
def register():
    """Register a version through the service (fees charged as for a real registrant)."""

    def make(owner, name="bert-base", version="1.0.0", *, size_bytes=1024, **fields):
        fields.setdefault("parameter_count", 110_000_000)
        fields.setdefault("hash", HASH)
        return registration_create(owner=owner, name=name, version=version,
                                   size_bytes=size_bytes, **fields)

    return make


@pytest.fixture
def move(moderator):
    """Move a registration as the moderator (or ``actor``), with a reason."""

    def make(registration, to_status, *, actor=None, reason="checked"):
        return registration_transition(registration=registration, to_status=to_status,
                                       actor=actor or moderator, source=Source.ADMIN,
                                       reason=reason)

    return make


@pytest.fixture
def approved(register, move, user):
    """An approved model owned by ``user``."""
    return move(register(user), "approved")

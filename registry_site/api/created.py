"""201 answers with ``Location``: where what the request created can be read (or revoked)."""

from urllib.parse import urlencode

from django.urls import reverse
from rest_framework import status
from rest_framework.response import Response


def created(request, data, viewname: str, *, query: dict | None = None, **kwargs) -> Response:
    """A 201 with ``data`` and the absolute URL of ``viewname`` (with ``kwargs`` and
    ``query``) as ``Location``."""
    location = reverse(viewname, kwargs=kwargs)
    if query:
        location = f"{location}?{urlencode(query)}"
    return Response(data, status=status.HTTP_201_CREATED,
                    headers={"Location": request.build_absolute_uri(location)})

"""Entity-tag comparison for the conditional headers the views handle themselves."""

from django.utils.cache import parse_etags


def etag_named(header: str | None, etag: str, *, weak: bool) -> bool:
    """Whether ``header`` (a list of entity tags, or ``*`` for any) names ``etag``.

    ``weak`` is If-None-Match's comparison (``W/"x"`` names ``"x"``); If-Match compares
    strongly, so a weak tag never matches there (RFC 9110, 8.8.3.2).
    """
    if header is None:
        return False
    tags = parse_etags(header)
    if tags == ["*"]:
        return True
    if weak:
        tags = [tag.removeprefix("W/") for tag in tags]
    return etag in tags

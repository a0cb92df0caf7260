from registry_site.roles import is_moderator


def roles(request):
    return {"is_moderator": is_moderator(getattr(request, "user", None))}

# The Celery app loads with Django, so @shared_task tasks bind to it and `celery -A
# registry_site` finds it.
from registry_site.celery import app as celery_app

__all__ = ["celery_app"]

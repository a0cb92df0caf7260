"""The Celery app: settings come from Django's (CELERY_* names), tasks from each app's tasks.py.

    celery -A registry_site worker -B     (make worker)
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")

app = Celery("registry_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

import os

from django.core.wsgi import get_wsgi_application

from registry_site.liveness import LivenessShortCircuit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")
# /livez is answered before Django (registry_site.liveness); everything else is Django's.
application = LivenessShortCircuit(get_wsgi_application())

"""A separate Django process for the cross-process throttling test.

Reads a number per line from stdin, makes that many anonymous GET /api/v1/parameters/
requests through the full middleware and DRF stack, and prints their status codes as a JSON
list. Settings (DATABASE_URL, REDIS_URL) come from the environment, as in a gunicorn worker.
"""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_site.settings")

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402

client = Client(REMOTE_ADDR="203.0.113.50")
print("ready", flush=True)
for line in sys.stdin:
    codes = [client.get("/api/v1/parameters/").status_code for _ in range(int(line))]
    print(json.dumps(codes), flush=True)

"""Django's PostgreSQL backend, with the per-request health check only after idle time.

With CONN_HEALTH_CHECKS, Django tests a persistent connection with ``SELECT 1`` before the
first query of every request: one more round trip to the server on every request that
touches the database. Here a connection that served a request without error less than
``HEALTH_CHECK_IDLE_SECONDS`` ago (a key of the database's settings, default 1; the
settings read DATABASE_HEALTH_CHECK_IDLE_MS) is trusted instead. One that sat idle longer,
which a server-side idle timeout, a pooler or a firewall may have dropped, is tested as
before. What is no longer caught beforehand: a server restart within those last seconds.
The request that meets it fails with 503 (registry_site.errors), nothing half-written, and
Django closes that connection at the request's end, so the next request reconnects.
"""

import time

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.idle_check_seconds = float(self.settings_dict.get("HEALTH_CHECK_IDLE_SECONDS", 1))
        self.healthy_at = None

    def close_if_health_check_failed(self):
        if (self.connection is not None and self.health_check_enabled
                and not self.health_check_done and self.healthy_at is not None
                and time.monotonic() - self.healthy_at < self.idle_check_seconds):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def close_if_unusable_or_obsolete(self):
        # Called at the start and at the end of every request. health_check_done is set only
        # once this request used the connection (it is cleared below, at each call).
        used = self.connection is not None and self.health_check_done
        super().close_if_unusable_or_obsolete()  # a connection it closes loses healthy_at
        if used and self.connection is not None and not self.errors_occurred:
            self.healthy_at = time.monotonic()

    def close(self):
        self.healthy_at = None
        super().close()

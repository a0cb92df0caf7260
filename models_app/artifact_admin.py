"""A read-only admin inline with a registration's artifact and its scan result.

The RegistrationAdmin adds it with ``inlines = [ArtifactInline]``.
"""

from django.contrib import admin

from models_app.models import Artifact


class ArtifactInline(admin.StackedInline):
    model = Artifact
    fields = ["file", "file_format", "size_bytes", "sha256", "scan_summary", "scanner",
              "uploaded_by", "uploaded_at"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0
    verbose_name = "artifact (scanned on upload)"

    def has_add_permission(self, request, obj=None):
        # Uploads go through the API, which streams, hashes and scans them.
        return False

    def has_change_permission(self, request, obj=None):
        return False

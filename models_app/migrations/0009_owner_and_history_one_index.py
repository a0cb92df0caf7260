"""Foreign keys indexed by the composite index or unique constraint that leads with them
(reg_owner_idx, status_change_reg_idx, model_user_unique, storage_charge_once) lose their own
single-column index: one more for every registration, first use and charge to write."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from registry_site.migration_helpers import foreign_key_index_dropped


class Migration(migrations.Migration):

    dependencies = [
        ("models_app", "0008_usage_deltas"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        foreign_key_index_dropped("models_app", "registration", "owner", models.ForeignKey(
            db_index=False, on_delete=django.db.models.deletion.PROTECT,
            related_name="registrations", to=settings.AUTH_USER_MODEL)),
        foreign_key_index_dropped("models_app", "statuschange", "registration", models.ForeignKey(
            db_index=False, on_delete=django.db.models.deletion.PROTECT,
            related_name="status_changes", to="models_app.registration")),
        foreign_key_index_dropped("models_app", "modeluser", "registration", models.ForeignKey(
            db_index=False, on_delete=django.db.models.deletion.PROTECT,
            related_name="+", to="models_app.registration")),
        foreign_key_index_dropped("models_app", "storagecharge", "registration", models.ForeignKey(
            db_index=False, on_delete=django.db.models.deletion.PROTECT,
            related_name="storage_charges", to="models_app.registration")),
    ]

"""A ledger entry's account is indexed by ledger_account_idx alone, which leads with it: the
foreign key's own index was one more for every charge to write."""

import django.db.models.deletion
from django.db import migrations, models

from registry_site.migration_helpers import foreign_key_index_dropped


class Migration(migrations.Migration):

    dependencies = [
        ("fees_app", "0003_field_rules_from_models"),
    ]

    operations = [
        foreign_key_index_dropped("fees_app", "ledgerentry", "account", models.ForeignKey(
            db_index=False, on_delete=django.db.models.deletion.PROTECT,
            related_name="entries", to="fees_app.account")),
    ]

"""Foreign keys indexed by the composite index or unique constraint that leads with them
(vote_one_per_voter and vote_proposal_idx, proposal_proposer_idx, power_user_time_idx) lose
their own single-column index: one more for every vote, proposal and power change to write."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from registry_site.migration_helpers import foreign_key_index_dropped


class Migration(migrations.Migration):

    dependencies = [
        ("governance_app", "0004_vote_counted"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        foreign_key_index_dropped("governance_app", "vote", "proposal", models.ForeignKey(
            db_index=False, on_delete=django.db.models.deletion.PROTECT,
            related_name="votes", to="governance_app.proposal")),
        foreign_key_index_dropped("governance_app", "proposal", "proposer", models.ForeignKey(
            db_index=False, on_delete=django.db.models.deletion.PROTECT,
            related_name="proposals", to=settings.AUTH_USER_MODEL)),
        foreign_key_index_dropped(
            "governance_app", "votingpowercheckpoint", "user", models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.PROTECT,
                related_name="power_checkpoints", to=settings.AUTH_USER_MODEL)),
    ]

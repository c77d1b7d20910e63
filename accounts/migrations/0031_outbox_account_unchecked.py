"""Outbox rows: the account a copy of the user's, without a foreign-key constraint or an index
of its own (see OutboxEmail.portal_account)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0030_audit_events_keep_their_ids"),
    ]

    operations = [
        migrations.AlterField(
            model_name="outboxemail",
            name="portal_account",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.portalaccount",
            ),
        ),
    ]

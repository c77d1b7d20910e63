"""A login token knows the outbox email that carries it: the email's secret is derived from it,
so a re-sent email carries the same link (accounts.tokens.issue_for_email). The column is
nullable, so adding it rewrites nothing; its index is built in one go, which holds up issuing
links while it reads the table (one row per link ever issued)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_audit_by_account_action"),
    ]

    operations = [
        migrations.AddField(
            model_name="logintoken",
            name="outbox_email",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="accounts.outboxemail",
            ),
        ),
    ]

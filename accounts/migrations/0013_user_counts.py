"""Per-account user counters (accounts.models.UserCount), kept by triggers on accounts_user
(helpers.counter_triggers). Only portal users of an account are counted (MSSP staff have no
account). The counters start from the users that exist when the migration runs."""

from django.db import migrations, models

from accounts.models.user_count import USER_COUNTER as USERS


def create_triggers(apps, schema_editor):
    USERS.create(schema_editor)


def drop_triggers(apps, schema_editor):
    USERS.drop(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0012_retention_indexes")]

    operations = [
        migrations.CreateModel(
            name="UserCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("user_type", models.CharField(max_length=20)),
                ("state", models.CharField(max_length=20)),
                ("users", models.BigIntegerField(default=0)),
                (
                    "portal_account",
                    models.ForeignKey(
                        on_delete=models.deletion.CASCADE,
                        related_name="user_counts",
                        to="accounts.portalaccount",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("portal_account", "user_type", "state"), name="user_count_key"
                    )
                ]
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]

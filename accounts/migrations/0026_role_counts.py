"""Users per role (accounts.models.RoleCount), kept by triggers on accounts_user
(helpers.counter_triggers), starting from the users there now."""

import django.db.models.deletion
from django.db import migrations, models

from accounts.models.user_count import ROLE_COUNTER


def create_triggers(apps, schema_editor):
    ROLE_COUNTER.create(schema_editor)


def drop_triggers(apps, schema_editor):
    ROLE_COUNTER.drop(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0025_user_crm_account_name'),
    ]

    operations = [
        migrations.CreateModel(
            name='RoleCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('users', models.BigIntegerField(default=0)),
                ('portal_account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.portalaccount')),
                ('role', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='counts', to='accounts.role')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('portal_account', 'role'), name='role_count_key')],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]

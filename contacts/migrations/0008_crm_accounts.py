"""The CRM accounts of each portal account by name (contacts.models.CrmAccount), kept by triggers
on contacts_contact (helpers.counter_triggers), starting from the contacts there now."""

import django.db.models.deletion
from django.db import migrations, models

from contacts.models import CRM_ACCOUNT_COUNTER


def create_triggers(apps, schema_editor):
    CRM_ACCOUNT_COUNTER.create(schema_editor)


def drop_triggers(apps, schema_editor):
    CRM_ACCOUNT_COUNTER.drop(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0024_user_undeliverable_email'),
        ('contacts', '0007_contacts_page_sort_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='CrmAccount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=200)),
                ('contacts', models.BigIntegerField(default=0)),
                ('portal_account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='crm_accounts', to='accounts.portalaccount')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('portal_account', 'name'), name='crm_account_key')],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]

"""Live and deleted contacts per account (contacts.models.ContactCount), kept by triggers on
contacts_contact (helpers.counter_triggers), starting from the contacts there now; and the
deleted contacts' index in name order, for the contacts page's Deleted list."""

import django.db.models.deletion
from django.db import migrations, models

from contacts.models import CONTACT_COUNTER as CONTACTS


def create_triggers(apps, schema_editor):
    CONTACTS.create(schema_editor)


def drop_triggers(apps, schema_editor):
    CONTACTS.drop(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0012_retention_indexes'),
        ('contacts', '0005_contact_search_trigram_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='ContactCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('deleted', models.BooleanField()),
                ('contacts', models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RemoveIndex(
            model_name='contact',
            name='contact_deleted_per_account',
        ),
        migrations.AddIndex(
            model_name='contact',
            index=models.Index(condition=models.Q(('deleted_at__isnull', False)), fields=['portal_account', 'name', 'id'], name='contact_deleted_by_name'),
        ),
        migrations.AddField(
            model_name='contactcount',
            name='portal_account',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='contact_counts', to='accounts.portalaccount'),
        ),
        migrations.AddConstraint(
            model_name='contactcount',
            constraint=models.UniqueConstraint(fields=('portal_account', 'deleted'), name='contact_count_key'),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]

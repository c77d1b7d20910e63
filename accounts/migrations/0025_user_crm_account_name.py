"""Each portal user's copy of their contact's CRM account name, kept by triggers
(accounts.user_crm_accounts), starting from the users there now; and its index for the users
page's CRM-account filter."""

from django.db import migrations, models

from accounts import user_crm_accounts


def create_triggers(apps, schema_editor):
    user_crm_accounts.create(schema_editor)


def drop_triggers(apps, schema_editor):
    user_crm_accounts.drop(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0024_user_undeliverable_email'),
        ('contacts', '0008_crm_accounts'),
    ]

    operations = [
        migrations.AddField(
            model_name='user',
            name='crm_account_name',
            field=models.CharField(blank=True, editable=False, max_length=200, null=True),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
        migrations.AddIndex(
            model_name='user',
            index=models.Index(condition=models.Q(('kind', 'portal')), fields=['portal_account', 'state', 'crm_account_name', 'name', 'id'], name='user_tab_by_crm_account'),
        ),
    ]

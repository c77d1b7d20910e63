"""Audit events keep the ids they were written with: no foreign-key constraints (checked per
event at every commit), no index of the actor, and deleting a user no longer clears them.
Going back clears the ids of what is gone first (as SET_NULL did), or the keys would not fit."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Exists, OuterRef


def clear_what_is_gone(apps, schema_editor):
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    for field, model in (
        ("actor", apps.get_model("accounts", "User")),
        ("subject_user", apps.get_model("accounts", "User")),
        ("portal_account", apps.get_model("accounts", "PortalAccount")),
    ):
        there = model.objects.filter(pk=OuterRef(f"{field}_id"))
        AuditEvent.objects.filter(**{f"{field}__isnull": False}).exclude(Exists(there)).update(
            **{field: None}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0029_user_crm_account_checked_per_statement"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="portal_account",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="audit_events",
                to="accounts.portalaccount",
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="subject_user",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        # Last, so that going back runs it first, before the keys come back.
        migrations.RunPython(migrations.RunPython.noop, clear_what_is_gone),
    ]

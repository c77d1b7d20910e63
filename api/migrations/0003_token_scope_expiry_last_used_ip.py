from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_live_token_names_unique"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="scope",
            # Tokens made before scopes could call every endpoint: they keep doing so. New ones
            # name their scope (the model has no default).
            field=models.CharField(
                choices=[
                    ("sync", "Contact sync"),
                    ("read", "Read portal users"),
                    ("full", "Full access"),
                ],
                default="full",
                max_length=8,
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="last_used_ip",
            field=models.GenericIPAddressField(blank=True, null=True),
        ),
    ]

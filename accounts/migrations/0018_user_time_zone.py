from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0017_access_blocked_email")]

    operations = [
        # Nullable, no default: SQLite adds the column in place (see User.time_zone).
        migrations.AddField(
            model_name="user",
            name="time_zone",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
    ]

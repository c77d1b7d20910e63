from django.apps import AppConfig


class ApiConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "api"
    verbose_name = "CRM API"

    def ready(self):
        from accounts import actors
        from api.models import ApiToken

        # A token acts for its own portal account, on every user there (accounts.actors).
        actors.register_account_actor(ApiToken)

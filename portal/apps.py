from django.apps import AppConfig


class PortalConfig(AppConfig):
    """What a portal user sees and does: sign in (password, emailed link or code), forgot
    password, activate, reset, and the home page. It uses accounts' lifecycle and tokens;
    accounts never imports it."""

    name = "portal"

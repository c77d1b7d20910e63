"""Deployment checks (`manage.py check --deploy`) for what the product's security rests on."""

from django.conf import settings
from django.core.checks import Error, Tags, register

PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
    "django.core.cache.backends.filebased.FileBasedCache",
)


@register(Tags.security, Tags.caches, deploy=True)
def shared_cache(app_configs, **kwargs):
    """The sign-in throttle counts failures in the cache: with a cache per process (or per
    machine), N gunicorn workers allow N times the guesses."""
    backend = settings.CACHES["default"]["BACKEND"]
    if settings.DEBUG or backend not in PER_PROCESS_CACHES:
        return []
    return [
        Error(
            f"The default cache ({backend.rsplit('.', 1)[-1]}) is not shared between processes, "
            "so each one counts sign-in failures on its own.",
            hint="Set CACHE_URL to Redis, e.g. redis://127.0.0.1:6379/1.",
            id="accounts.E001",
        )
    ]


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


@register(Tags.security, deploy=True)
def links_in_emails(app_configs, **kwargs):
    """Every invitation, reset and login link is PORTAL_BASE_URL plus a secret: the default
    (this machine, plain http) sends people to a page they cannot open, or their secret over
    an unencrypted connection."""
    if settings.DEBUG:
        return []
    from urllib.parse import urlsplit

    base = urlsplit(settings.PORTAL_BASE_URL)
    hint = "Set PORTAL_BASE_URL to the https address people open, e.g. https://admin.example.com."
    if base.hostname in LOOPBACK_HOSTS or (base.hostname or "").endswith(".localhost"):
        problem = "points at this machine"
    elif base.scheme != "https":
        problem = "is not https"
    else:
        return []
    return [
        Error(
            f"PORTAL_BASE_URL ({settings.PORTAL_BASE_URL}) {problem}: every link in the emails "
            "(invitations, password resets, login links) would use it.",
            hint=hint,
            id="accounts.E002",
        )
    ]


@register(Tags.security, deploy=True)
def sender_address(app_configs, **kwargs):
    """A From at localhost is refused or filed as spam by most mail servers."""
    if settings.DEBUG or not settings.DEFAULT_FROM_EMAIL.rstrip("> ").endswith("@localhost"):
        return []
    return [
        Error(
            f"DEFAULT_FROM_EMAIL ({settings.DEFAULT_FROM_EMAIL}) is an address at localhost: "
            "mail servers refuse or bin what comes from it.",
            hint="Set DEFAULT_FROM_EMAIL to an address of your domain, e.g. "
            "'Portal <no-reply@example.com>'.",
            id="accounts.E003",
        )
    ]

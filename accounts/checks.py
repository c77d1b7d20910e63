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

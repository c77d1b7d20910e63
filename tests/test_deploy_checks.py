import pytest
from django.core.checks import run_checks
from django.test import override_settings

LOCAL_MEMORY = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/1",
    }
}


def deploy_errors(**production):
    # Undone before the suite's own fixtures clear the cache: no Redis is needed here.
    with override_settings(**production):
        return {message.id for message in run_checks(include_deployment_checks=True)}


def test_production_without_a_shared_cache_fails_the_deploy_check():
    assert "accounts.E001" in deploy_errors(DEBUG=False, CACHES=LOCAL_MEMORY)


@pytest.mark.parametrize(("debug", "caches"), [(False, REDIS), (True, LOCAL_MEMORY)])
def test_a_shared_cache_or_the_demo_passes(debug, caches):
    assert "accounts.E001" not in deploy_errors(DEBUG=debug, CACHES=caches)

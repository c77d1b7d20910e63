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


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8000",
        "https://localhost",
        "http://admin.example.com",
        "https://x.localhost",
    ],
)
def test_production_emails_must_link_to_an_https_address_people_can_open(base_url):
    assert "accounts.E002" in deploy_errors(DEBUG=False, PORTAL_BASE_URL=base_url)


def test_an_https_public_base_url_or_the_demo_passes():
    assert "accounts.E002" not in deploy_errors(
        DEBUG=False, PORTAL_BASE_URL="https://admin.example.com"
    )
    assert "accounts.E002" not in deploy_errors(DEBUG=True, PORTAL_BASE_URL="http://127.0.0.1:8000")


def test_production_mail_must_not_come_from_localhost():
    assert "accounts.E003" in deploy_errors(
        DEBUG=False, DEFAULT_FROM_EMAIL="Portal Admin <no-reply@localhost>"
    )
    assert "accounts.E003" not in deploy_errors(
        DEBUG=False, DEFAULT_FROM_EMAIL="Portal <no-reply@example.com>"
    )

"""With JSON logs, Django's line per request is the access log (gunicorn's is off): it names the
client as the audit log does (behind the trusted proxies) and its user agent."""

import logging

import pytest


@pytest.fixture(autouse=True)
def _request_lines(settings):
    settings.LOG_REQUESTS = True
    settings.TRUSTED_PROXY_HOPS = 1


def request_line(caplog):
    [record] = [r for r in caplog.records if r.name == "portal_admin.requests"]
    return record


def test_the_request_line_names_the_client_behind_the_proxy(client, caplog, db):
    with caplog.at_level(logging.INFO, logger="portal_admin.requests"):
        client.get(
            "/sign-in/",
            HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9",
            HTTP_USER_AGENT="Mozilla/5.0 (test)",
        )

    record = request_line(caplog)
    assert record.client_ip == "203.0.113.9"  # the left entry is the client's own claim
    assert record.user_agent == "Mozilla/5.0 (test)"
    assert (record.method, record.path, record.status) == ("GET", "/sign-in/", 200)


def test_a_long_user_agent_is_cut(client, caplog, db):
    with caplog.at_level(logging.INFO, logger="portal_admin.requests"):
        client.get("/sign-in/", HTTP_USER_AGENT="x" * 5000)

    assert len(request_line(caplog).user_agent) == 200

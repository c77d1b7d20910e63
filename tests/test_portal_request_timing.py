"""'Email me a link', 'email me a code' and 'forgot password' must not tell who has an account,
by their answer or by their time: the request does the same work for every address (it does not
even look the address up) and a Celery worker decides what to send."""

import re

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal import tasks
from tests.factories import PortalUserFactory

REQUEST_LINK = "/p/acme/login/email-link/"
REQUEST_CODE = "/p/acme/login/email-code/"
FORGOT = "/p/acme/forgot-password/"


@pytest.fixture
def alan(account, partner_role):
    return PortalUserFactory(portal_account=account, role=partner_role, email="alan@example.com")


@pytest.fixture
def queued(monkeypatch):
    requests = []
    monkeypatch.setattr(
        tasks.answer_email_request,
        "apply_async",
        lambda args, **options: requests.append((*args, options)),
    )
    return requests


@pytest.mark.parametrize("url", [REQUEST_LINK, REQUEST_CODE, FORGOT])
def test_the_request_does_the_same_work_for_known_and_unknown_addresses(
    client, alan, url, queued, django_capture_on_commit_callbacks
):
    def ask(email):
        with (
            CaptureQueriesContext(connection) as queries,
            django_capture_on_commit_callbacks(execute=True),
        ):
            response = client.post(url, {"email": email}, REMOTE_ADDR="10.0.0.1")
        return response, [query["sql"] for query in queries.captured_queries]

    known, known_queries = ask("alan@example.com")
    unknown, unknown_queries = ask("nobody@example.com")

    assert known.status_code == unknown.status_code == 200
    assert page_text(known).replace("alan", "nobody") == page_text(unknown)
    assert len(known_queries) == len(unknown_queries)
    assert not [sql for sql in known_queries + unknown_queries if "accounts_user" in sql]
    assert mail.outbox == []
    assert [args[1:3] for args in queued] == [
        ("alan@example.com", url_kind(url)),
        ("nobody@example.com", url_kind(url)),
    ]
    # The worker logs the task's argsrepr: what was typed and the IP are not in it.
    for args in queued:
        assert args[1] not in args[-1]["argsrepr"]
        assert "10.0.0.1" not in args[-1]["argsrepr"]


def page_text(response):
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def url_kind(url):
    return {REQUEST_LINK: "link", REQUEST_CODE: "code", FORGOT: "reset"}[url]


@pytest.mark.parametrize("url", [REQUEST_LINK, REQUEST_CODE, FORGOT])
def test_the_worker_sends_to_a_known_address_only(
    client, alan, url, django_capture_on_commit_callbacks
):
    for email in ("alan@example.com", "nobody@example.com"):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(url, {"email": email})
    assert [message.to for message in mail.outbox] == [["alan@example.com"]]

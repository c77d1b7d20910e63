"""Bad input everywhere, generated from the URL conf: every console page of the persona's own
account gets query strings and form posts full of NUL bytes, numbers past any column, overlong
strings, impossible dates, header breaks and unknown choices. The answer is never a 500 (on
PostgreSQL too: run with DATABASE_URL), whatever the view does with it."""

from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import PortalAccount
from tests.conftest import console_sign_in
from tests.test_tenant_isolation import FILLERS, Side, console_endpoints, walk, world  # noqa: F401

BAD_VALUES = {
    "nul": "a\x00b",
    "huge": "9" * 40,
    "negative huge": "-" + "9" * 40,
    "overlong": "x" * 20_000,
    "float overflow": "1e309",
    "bad date": "2026-02-30",
    "header break": "Hello\r\nBcc: mallory@evil.example",
    "unknown choice": "definitely-not-a-choice",
    "emoji": "\U0001f600",
    "superscript digit": "\u00b2",  # str.isdigit() says yes, int() says no
}

QUERY_KEYS = [
    "q", "page", "before", "after", "tab", "sort", "role", "user_type", "last_sign_in",
    "crm_account", "show", "next", "step_up", "days", "warning_days", "contact", "name", "poll",
    "action", "kind", "email", "person", "section", "target", "state", "actor", "since", "until",
]  # fmt: skip
BODY_KEYS = [
    *QUERY_KEYS,
    "ids", "confirmed", "all_matching", "url", "events", "description", "active", "subject",
    "body", "from_name", "from_email", "reply_to", "accent_color", "invitation_days",
    "login_email_minutes", "magic_link_minutes", "password_reset_hours", "reminders_on",
    "reminder_after_days", "reminder_max", "partner_inactive_days", "customer_inactive_days",
    "inactivity_warning_days", "time_zone", "access_ends_on", "expires_on", "expires_at",
    "scope", "contact_id", "slug", "partner_licenses", "customer_licenses", "employee_licenses",
    "send_invitation", "send_activation", "code", "password", "email_id", "again", "checked",
    "otp_token", "require_two_factor", "new_password1", "new_password2",
]  # fmt: skip


def _own_side(account):
    from accounts.models import Role, User
    from contacts.models import Contact

    return Side(
        account,
        users=list(User.objects.filter(portal_account=account).order_by("pk")),
        roles=list(Role.objects.filter(portal_account=account).order_by("pk")),
        contacts=list(Contact.objects.filter(portal_account=account).order_by("pk")),
    )


def _urls(endpoint, account_pk):
    """Each way to fill the endpoint's URL with the persona's own account (every value of the
    word-like parameters, the first id of each kind). None when the data has no such id."""
    side = _own_side(PortalAccount.objects.get(pk=account_pk))
    values = {}
    for name in endpoint.params:
        found = FILLERS[name](side)
        if not found:
            return []
        values[name] = found if name in ("action", "quick", "fix", "kind", "which") else found[:1]
    combos = [{}]
    for name, options in values.items():
        combos = [{**combo, name: option} for combo in combos for option in options]
    return [reverse(endpoint.name, kwargs=combo) for combo in combos]


def _fuzz(client, account_pk):
    problems, count = [], 0
    for endpoint in console_endpoints():
        if not endpoint.name or endpoint.name in ("logout", "home"):
            continue
        for url in _urls(endpoint, account_pk):
            try:  # every field missing
                count += 1
                if client.post(url, {}).status_code >= 500:
                    problems.append(f"POST {url} [empty]: 500")
            except Exception as error:  # noqa: BLE001 - the finding is the exception
                problems.append(f"POST {url} [empty]: {error!r}"[:300])
            for label, value in BAD_VALUES.items():
                requests = [
                    ("GET", lambda u=url, v=value: client.get(u, dict.fromkeys(QUERY_KEYS, v))),
                    ("POST", lambda u=url, v=value: client.post(u, dict.fromkeys(BODY_KEYS, v))),
                    # As htmx sends a form: URL-encoded (the plain POST above is multipart).
                    (
                        "HTMX POST",
                        lambda u=url, v=value: client.post(
                            u,
                            urlencode(dict.fromkeys(BODY_KEYS, v)),
                            content_type="application/x-www-form-urlencoded",
                            headers={"HX-Request": "true"},
                        ),
                    ),
                ]
                for method, send in requests:
                    count += 1
                    try:
                        response = send()
                    except Exception as error:  # noqa: BLE001 - the finding is the exception
                        problems.append(f"{method} {url} [{label}]: {error!r}"[:300])
                        continue
                    if response.status_code >= 500:
                        problems.append(f"{method} {url} [{label}]: {response.status_code}")
    return problems, count


@pytest.fixture(autouse=True)
def _status_codes_only(monkeypatch):
    """The walk reads status codes only: the test client's copy of the context of every template
    each response renders (for response.context) is skipped, a tenth of the walk's time."""
    monkeypatch.setattr("django.test.client.store_rendered_templates", lambda *a, **kw: None)


@pytest.mark.parametrize("persona", ["mssp_admin", "account_admin", "technician"])
def test_bad_input_on_every_console_page_is_never_a_500(persona, world, request):  # noqa: F811
    own, _other, _secrets = world
    user = request.getfixturevalue(persona)
    client = console_sign_in(Client(raise_request_exception=True), user)
    problems, count = _fuzz(client, own.account.pk)
    print(f"\n{persona}: {count} requests")
    assert not problems, "Bad input made a 500:\n" + "\n".join(problems[:60])


PORTAL_BODY_KEYS = [
    "email", "password", "code", "new_password1", "new_password2", "password1", "password2",
    "next", "target", "method", "username", "remember",
]  # fmt: skip


def test_bad_input_on_every_portal_page_is_never_a_500(account, partner_role):
    """The portal side: anybody may send anything to its sign-in pages."""
    from tests.factories import PortalUserFactory

    PortalUserFactory(portal_account=account, role=partner_role, email="pia@acme.example")
    client = Client(raise_request_exception=True)
    problems, count = [], 0
    portal = [e for e in walk() if e.route.startswith("p/<slug:slug>/")]
    for endpoint in portal:
        kwargs = {"slug": account.slug}
        if "token" in endpoint.params:
            kwargs["token"] = "x" * 43
        if "digest" in endpoint.params:  # the logo's
            kwargs["digest"] = "0" * 16
        url = reverse(endpoint.name, kwargs=kwargs)
        for label, value in BAD_VALUES.items():
            for method in ("GET", "POST"):
                count += 1
                try:
                    if method == "GET":
                        response = client.get(url, dict.fromkeys(QUERY_KEYS, value))
                    else:
                        response = client.post(url, dict.fromkeys(PORTAL_BODY_KEYS, value))
                except Exception as error:  # noqa: BLE001 - the finding is the exception
                    problems.append(f"{method} {url} [{label}]: {error!r}"[:300])
                    continue
                if response.status_code >= 500:
                    problems.append(f"{method} {url} [{label}]: {response.status_code}")
    print(f"\nportal: {count} requests")
    assert not problems, "Bad input made a 500:\n" + "\n".join(problems[:60])

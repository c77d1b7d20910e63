"""Tenant isolation, generated from the URL conf so that a new console view cannot be forgotten.

Signed in as Acme's account admin, every console URL is requested (GET and POST) with Globex's
slug and ids, and with Acme's own slug but Globex's ids. The answer is 404 (or 403 when the page
is forbidden to the persona whatever the account) and nothing in the database changes. A URL
parameter this module does not know how to fill fails the run: teach FILLERS about it.
"""

import itertools
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, path, reverse
from django.utils import timezone

from accounts import lifecycle, tokens
from accounts.models import (
    AuditEvent,
    LoginToken,
    OutboxEmail,
    PortalAccount,
    Role,
    SignedInSession,
    TokenPurpose,
    User,
    UserState,
    UserType,
)
from accounts.user_actions import ACTIONS, BULK_ACTIONS
from api import api_tokens
from api.models import ApiToken
from contacts.models import Contact
from imports.models import ImportJob
from tests.conftest import console_sign_in
from tests.factories import ContactFactory, PortalUserFactory, RoleFactory
from webhooks.models import Delivery
from webhooks.models import Endpoint as WebhookEndpoint

# The CRM API under /api/v1/: an API token, not a console session, is the credential, so these
# are no console pages. Each is tried with another account's token in tests/test_api_*.py.
API_URLS = {
    "api-openapi": "the API's schema, open to anybody (tests/test_api_schema.py)",
    **{
        f"api-portal-user{action}": "token API (tests/test_api_portal_users.py)"
        for action in [
            "",
            "-enable",
            "-disable",
            "-reactivate",
            "-reinvite",
            "-delete",
            "-reset-password",
            "-change-role",
            "-magic-link",
            "-send-login-email",
        ]
    },
    "api-portal-user-access-end": "token API (tests/test_access_end.py)",
    **{
        f"api-sync-{operation}": "token API (tests/test_sync_endpoint.py)"
        for operation in ["upsert", "delete", "restore", "merge"]
    },
}

# URL names that are not tenant-scoped console pages. Everything else in the URL conf is
# requested by the tests below; a stale entry here fails too.
NOT_TENANT_SCOPED = {
    "login": "console sign-in page",
    "logout": "console sign-out",
    "home": "redirects to the person's own start page",
    "sent-mail": "demo mail folder, MSSP staff only (DEBUG)",
    "portal-home": "portal side (/p/<slug>/), for portal users",
    "portal-login": "portal side",
    "portal-brand-css": "portal side: the public colour of a portal's pages",
    "portal-logo": "portal side: the public logo of a portal's pages and emails",
    "portal-logout": "portal side",
    "portal-activate": "portal side",
    "portal-reset": "portal side",
    "portal-link": "portal side",
    "portal-magic-link": "portal side",
    "portal-request-link": "portal side",
    "portal-request-code": "portal side",
    "portal-code": "portal side",
    "portal-forgot-password": "portal side",
    "portal-confirm-email": "portal side",
    "two-factor-verify": "the person's own second factor, no tenant data",
    "two-factor": "the person's own second factor",
    "two-factor-set-up": "the person's own second factor",
    "two-factor-recovery-codes": "the person's own second factor",
    "two-factor-turn-off": "the person's own second factor",
    "my-sessions": "the person's own sessions and sign-ins",
    "time-zone": "the person's own time zone setting",
    "my-sessions-end-others": "the person's own sessions",
    "my-session-end": "one of the person's own sessions (anybody else's is a 404: "
    "tests/test_signed_in_sessions.py)",
    **API_URLS,
}
NOT_TENANT_SCOPED_NAMESPACES = {"admin": "Django admin under /support/ (MSSP staff only)"}
# Monitoring: open to load balancers and Prometheus, no tenant data; details for a token or MSSP
# staff (tests/test_health.py, tests/test_metrics.py).
MONITORING_URLS = {
    "health": "load balancer probe, no tenant data",
    "health-ready": "readiness, details for a token or MSSP staff",
    "metrics": "Prometheus, a token or an allowed address",
}
NOT_TENANT_SCOPED.update(MONITORING_URLS)
# Of those, the ones that are no console page at all (open to anybody, or the token API).
PUBLIC = {"login", "logout", *API_URLS, *MONITORING_URLS}

MODELS = [
    PortalAccount,
    Role,
    User,
    Contact,
    AuditEvent,
    OutboxEmail,
    LoginToken,
    ImportJob,
    ApiToken,
    WebhookEndpoint,
    Delivery,
]
BODY_ACTIONS = [*ACTIONS, "activate", "deactivate"]  # user/bulk actions, role (de)activation


# --- Walking the URL conf ---


@dataclass(frozen=True)
class Endpoint:
    name: str  # "ns:name" for namespaced patterns; "" when the pattern has no name
    route: str
    params: tuple = ()
    namespace: str = ""


def _param_names(pattern):
    converters = getattr(pattern.pattern, "converters", None)
    if converters is not None:  # path(): <int:user_id>
        return list(converters)
    regex = getattr(pattern.pattern, "regex", None)  # re_path(): (?P<user_id>...)
    return list(regex.groupindex) if regex is not None else []


def walk(patterns=None, prefix="", namespace="", params=()):
    """Every URL pattern, with its full route, its qualified name and every parameter it takes
    (including those of the includes it sits under)."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for pattern in patterns:
        here = (*params, *_param_names(pattern))
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from walk(pattern.url_patterns, route, inner, here)
        elif isinstance(pattern, URLPattern):
            name = pattern.name or ""
            if name and namespace:
                name = f"{namespace}:{name}"
            yield Endpoint(name=name, route=route, params=here, namespace=namespace)


def is_allow_listed(endpoint):
    return endpoint.name in NOT_TENANT_SCOPED or any(
        endpoint.namespace == ns or endpoint.namespace.startswith(ns + ":")
        for ns in NOT_TENANT_SCOPED_NAMESPACES
    )


def console_endpoints():
    """Every console URL (everything but the sign-in pages, the portal side and the admin)."""
    return [
        e
        for e in walk()
        if e.name not in PUBLIC
        and not e.name.startswith("portal-")
        and not e.namespace.startswith("admin")
    ]


def tenant_scoped_endpoints():
    return [e for e in walk() if not is_allow_listed(e)]


# --- Filling URL parameters ---


class UnknownParameter(Exception):
    pass


@dataclass
class Side:
    """One portal account's values for each kind of URL parameter."""

    account: PortalAccount
    users: list = field(default_factory=list)
    roles: list = field(default_factory=list)
    contacts: list = field(default_factory=list)


# parameter name -> the values to try, taken from one Side. Extend when a URL gains a new kind
# of id; the own-account oracle uses the first value of each list.
FILLERS = {
    "slug": lambda side: [side.account.slug],
    "user_id": lambda side: [u.pk for u in side.users],
    "role_id": lambda side: [r.pk for r in side.roles],
    "contact_pk": lambda side: [c.pk for c in side.contacts],
    "action": lambda side: list(ACTIONS),
    # The sign-in links (login tokens) of the side's users, made in `world`.
    "token_id": lambda side: list(
        LoginToken.objects.filter(user__in=side.users).order_by("pk").values_list("pk", flat=True)
    ),
    # The side's CSV import jobs (made in `world`) and the files an import offers.
    "job_id": lambda side: list(
        ImportJob.objects.filter(portal_account=side.account)
        .order_by("pk")
        .values_list("pk", flat=True)
    ),
    "which": lambda side: ["source", "success", "failure"],
    # The dashboard's quick actions (accounts.views.quick_actions).
    "quick": lambda side: ["login-email", "magic-link"],
    # The orphan fixes for many at once (contacts.views.orphan_fixes).
    "fix": lambda side: ["restore-crm-account", "disable-all"],
    # The emails an account words itself (mail.views.custom_email_edit).
    "kind": lambda side: ["login_link"],
    # The signed-in sessions of the side's users (made in `world`).
    "session_id": lambda side: list(
        SignedInSession.objects.filter(user__in=side.users)
        .order_by("pk")
        .values_list("pk", flat=True)
    ),
    # The side's API tokens (made in `world`).
    "api_token_id": lambda side: list(
        ApiToken.objects.filter(portal_account=side.account)
        .order_by("pk")
        .values_list("pk", flat=True)
    ),
    # The side's webhook endpoints and their deliveries (made in `world`).
    "endpoint_id": lambda side: list(
        WebhookEndpoint.objects.filter(portal_account=side.account)
        .order_by("pk")
        .values_list("pk", flat=True)
    ),
    "delivery_id": lambda side: list(
        Delivery.objects.filter(portal_account=side.account)
        .order_by("pk")
        .values_list("pk", flat=True)
    ),
}


def _check_known(endpoint):
    unknown = [p for p in endpoint.params if p not in FILLERS]
    if unknown:
        raise UnknownParameter(
            f"URL {endpoint.name or '(unnamed)'} /{endpoint.route} takes {', '.join(unknown)}, "
            "which tests/test_tenant_isolation.py does not know how to fill with another "
            "account's ids: add it to FILLERS (and to the data in `world`)."
        )


def _combinations(endpoint, values):
    names = list(endpoint.params)
    for combo in itertools.product(*(values[name] for name in names)):
        yield dict(zip(names, combo, strict=True))


def foreign_kwargs(endpoint, own, other):
    """(label, kwargs) for every way to point the URL at the other account's data: its slug
    with its ids, and the own slug with its ids."""
    _check_known(endpoint)
    other_values = {name: FILLERS[name](other) for name in endpoint.params}
    for name, values in other_values.items():
        assert values, f"the test data has no {name} of {other.account.slug} to try"
    id_params = [p for p in endpoint.params if p not in ("slug", "action", "quick", "fix", "kind")]
    variants = [("other account", other_values)]
    if "slug" in endpoint.params and id_params:
        variants.append(
            ("own slug, other account's ids", {**other_values, "slug": [own.account.slug]})
        )
    for label, values in variants:
        for kwargs in _combinations(endpoint, values):
            yield label, kwargs


def own_kwargs(endpoint, own, kwargs):
    """The same URL pointed at the persona's own account (first value of each kind)."""
    mine = {name: FILLERS[name](own)[0] for name in endpoint.params}
    if "action" in kwargs:
        mine["action"] = kwargs["action"]
    return mine


def post_bodies(endpoint, other):
    """Form data that would do damage if a view let it through: other-account ids everywhere,
    and every action name for views that take the action from the form."""
    user_ids = [str(u.pk) for u in other.users]
    base = {
        "ids": user_ids,
        "confirmed": "1",
        "role": str(other.roles[0].pk),
        "contact_id": other.contacts[0].contact_id,
        "name": "Mallory",
        "email": "mallory@evil.example",
        "user_type": UserType.EMPLOYEE,
        "send_invitation": "on",
        "slug": "mallory",
        "partner_licenses": "0",
        "customer_licenses": "0",
        "employee_licenses": "0",
        "tab": "enabled",
    }
    if endpoint.name not in FORM_ACTION_VIEWS:
        return [base]
    return [{**base, "action": action} for action in BODY_ACTIONS]


# The views that read the action to take from the form (grep: POST.get("action")); every other
# view ignores an "action" field, so sending each action name to them repeated the same request
# 16 times (the walk took 27 s).
FORM_ACTION_VIEWS = {"users-bulk", "role-edit"}


# --- The data: two accounts, and a snapshot of everything ---


@pytest.fixture
def world(
    account, other_account, partner_role, account_admin, other_admin, mssp_admin, settings, tmp_path
):
    globex_role = RoleFactory(portal_account=other_account, name="Globex Partner")
    globex_inactive = RoleFactory(portal_account=other_account, name="Globex Old", active=False)
    make = lambda **kw: PortalUserFactory(portal_account=other_account, role=globex_role, **kw)  # noqa: E731
    enabled = make(name="Gina Enabled", email="gina@globex.example")
    disabled = make(name="Dora Disabled", email="dora@globex.example", state=UserState.DISABLED)
    employee = PortalUserFactory(
        portal_account=other_account,
        name="Emil Employee",
        email="emil@globex.example",
        user_type=UserType.EMPLOYEE,
    )
    unconfirmed = lifecycle.invite(
        other_account,
        role=globex_role,
        by=mssp_admin,
        name="Una Unconfirmed",
        email="una@globex.example",
    )
    lifecycle.reset_password(enabled, by=mssp_admin)  # an outbox row and audit event to leak
    spare = ContactFactory(portal_account=other_account, name="Sam Spare", email="sam@globex.ex")
    own_user = PortalUserFactory(
        portal_account=account, role=partner_role, name="Otto Own", email="otto@acme.example"
    )
    own_contact = ContactFactory(portal_account=account, name="Olga Own", email="olga@acme.ex")
    # Live sign-in links on both sides, for the token_id of the links pages to point at.
    tokens.issue(enabled, TokenPurpose.MAGIC_LINK, target="courses", by=mssp_admin)
    tokens.issue(unconfirmed, TokenPurpose.ACTIVATION)
    tokens.issue(own_user, TokenPurpose.MAGIC_LINK, by=mssp_admin)
    # A signed-in session on each side.
    for session_user in (enabled, own_user):
        SignedInSession.objects.create(
            user=session_user,
            session_key=f"world-{session_user.pk}",
            door=SignedInSession.Door.PORTAL,
            last_seen_at=timezone.now(),
        )
    # A live API token on each side.
    for side_account in (other_account, account):
        api_tokens.create_token(side_account, f"{side_account.slug} connector", by=mssp_admin)
    # A webhook endpoint on each side with a delivery of a change (its payload names a user).
    for side_account, side_user in ((other_account, enabled), (account, own_user)):
        hook = WebhookEndpoint.objects.create(
            portal_account=side_account,
            url=f"https://crm.{side_account.slug}.example/hooks",
            events=["user.disabled"],
        )
        Delivery.objects.create(
            portal_account=side_account,
            endpoint=hook,
            event_id=f"evt_{side_account.pk:032x}",
            event_type="user.disabled",
            payload={"user": {"email": side_user.email}},
            status=Delivery.Status.FAILED,
        )
    # Import jobs on both sides (files in a temporary media folder): one ready to start, one
    # running (to cancel), one done with result files.
    settings.MEDIA_ROOT = tmp_path / "media"
    for side_account in (other_account, account):
        for status in (ImportJob.Status.VALIDATED, ImportJob.Status.RUNNING, ImportJob.Status.DONE):
            job = ImportJob(
                portal_account=side_account,
                status=status,
                original_filename=f"{side_account.slug}-{status}.csv",
                column_mapping={"contact_id": 0, "role": 1},
                total_rows=1,
            )
            csv_text = f"ContactId,Role\n{spare.contact_id},Globex Partner\n".encode()
            job.source_file.save("source.csv", ContentFile(csv_text), save=False)
            job.success_file.save("ok.csv", ContentFile(b"ContactId,Role,UserId\n"), save=False)
            job.failure_file.save("failed.csv", ContentFile(b"Line,ContactId\n"), save=False)
            job.save()
    other = Side(
        other_account,
        users=[enabled, unconfirmed, disabled, employee, other_admin],
        roles=[globex_role, globex_inactive, other_admin.role, employee.role],
        contacts=[spare, enabled.contact, unconfirmed.contact],
    )
    own = Side(account, users=[own_user], roles=[partner_role], contacts=[own_contact])
    secrets = [other_account.name.encode()] + [
        text.encode() for u in other.users for text in (u.name, u.email)
    ]
    secrets += [
        b"crm.globex.example",
        WebhookEndpoint.objects.get(portal_account=other_account).secret.encode(),
    ]
    return own, other, secrets


def snapshot():
    """Every row of every model a console action could touch, field by field."""
    return {
        model.__name__: {row["id"]: row for row in model.objects.order_by("pk").values()}
        for model in MODELS
    }


def describe_changes(before, after):
    lines = []
    for model, rows in after.items():
        old = before[model]
        for pk in old.keys() - rows.keys():
            lines.append(f"{model} {pk} deleted")
        for pk in rows.keys() - old.keys():
            lines.append(f"{model} {pk} created: {rows[pk]}")
        for pk in rows.keys() & old.keys():
            diff = {k: (old[pk][k], v) for k, v in rows[pk].items() if old[pk][k] != v}
            if diff:
                lines.append(f"{model} {pk} changed: {diff}")
    return lines


def _listing(lines, limit=40):
    more = f"\n...and {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


def _client(user, backend="accounts.backends.ConsoleBackend"):
    if backend == "accounts.backends.ConsoleBackend":
        return console_sign_in(Client(), user)
    client = Client()
    client.force_login(user, backend=backend)
    return client


def _run(client, method, url, body):
    if method == "GET (HTMX)":  # views answer HTMX with partials: the same scoping must hold
        return client.get(url, headers={"HX-Request": "true"})
    return client.get(url) if method == "GET" else client.post(url, body)


def _leaks(response, secrets):
    if getattr(response, "streaming", False):
        return []
    return [s.decode() for s in secrets if s in response.content]


# --- The tests ---


def test_account_admin_reaches_nothing_of_another_account(account_admin_client, world):
    own, other, secrets = world
    client = account_admin_client
    expected = {e.name or e.route for e in tenant_scoped_endpoints()}
    requested, problems, changes, oracle, count = set(), [], [], {}, 0
    before = snapshot()

    def own_status(endpoint, kwargs):
        """Is the page forbidden (403) or GET-less (405) for this persona whatever the account?
        Then the same answer for the other account reveals nothing."""
        mine = own_kwargs(endpoint, own, kwargs)
        key = (endpoint.name, tuple(sorted(mine.items())))
        if key not in oracle:
            oracle[key] = client.get(reverse(endpoint.name, kwargs=mine)).status_code
        return oracle[key]

    for endpoint in tenant_scoped_endpoints():
        if not endpoint.name:
            problems.append(f"/{endpoint.route} has no URL name: name it, or allow-list it")
            continue
        try:
            cases = list(foreign_kwargs(endpoint, own, other))
        except UnknownParameter as error:
            problems.append(str(error))
            continue
        for label, kwargs in cases:
            url = reverse(endpoint.name, kwargs=kwargs)
            requests = [("GET", None), ("GET (HTMX)", None)]
            requests += [("POST", body) for body in post_bodies(endpoint, other)]
            for method, body in requests:
                response = _run(client, method, url, body)
                requested.add(endpoint.name)
                count += 1
                status = response.status_code
                ok = status == 404 or (
                    status in (403, 405) and own_status(endpoint, kwargs) == status
                )
                action = f" action={body['action']}" if body and "action" in body else ""
                if not ok:
                    problems.append(
                        f"{method} {url}{action} ({endpoint.name}, {label}): {status}, "
                        "expected 404 (or 403 when the page is forbidden to an account admin)"
                    )
                if leaked := _leaks(response, secrets):
                    problems.append(f"{method} {url}{action}: the response shows {leaked}")
        after = snapshot()
        changes += [f"{endpoint.name}: {change}" for change in describe_changes(before, after)]
        before = after

    assert not problems, "Tenant isolation broken:\n" + _listing(problems)
    assert not changes, "Requests for another account changed data:\n" + _listing(changes)
    assert requested == expected, (
        f"Console URLs never requested: {sorted(expected - requested)}; "
        f"requested but not expected: {sorted(requested - expected)}"
    )
    print(f"\nTenant isolation: {len(requested)} URL patterns, {count} requests")


def test_the_allow_list_names_real_urls_that_are_not_console_pages():
    by_name = {e.name: e for e in walk()}
    stale = [name for name in NOT_TENANT_SCOPED if name not in by_name]
    assert not stale, f"NOT_TENANT_SCOPED names URLs that no longer exist: {stale}"
    for name in NOT_TENANT_SCOPED:
        if name.startswith("portal-"):
            assert by_name[name].route.startswith("p/<slug:slug>/"), (
                f"{name} is allow-listed as a portal page but lives at /{by_name[name].route}"
            )
    for endpoint in walk():
        if endpoint.namespace.startswith("admin"):
            assert endpoint.route.startswith("support/"), endpoint


def test_a_url_parameter_the_test_cannot_fill_fails_loudly(world):
    own, other, _ = world
    endpoint = next(
        walk([path("accounts/<slug:slug>/widgets/<int:widget_id>/", lambda r: None, name="x")])
    )
    assert endpoint.params == ("slug", "widget_id")
    with pytest.raises(UnknownParameter, match="widget_id.*add it to FILLERS"):
        list(foreign_kwargs(endpoint, own, other))


def test_ids_of_another_account_in_form_data_change_nothing(
    account_admin_client, world, partner_role
):
    """The own slug in the URL, the other account's ids in the posted form."""
    own, other, secrets = world
    client = account_admin_client
    before = snapshot()
    bulk = reverse("users-bulk", args=[own.account.slug])
    for action in BULK_ACTIONS:
        ids = [u.pk for u in other.users]
        response = client.post(bulk, {"action": action.name, "ids": ids, "confirmed": "1"})
        assert response.status_code == 400, action.name
        assert "Select at least one user first." in response.content.decode()
    add = reverse("user-add", args=[own.account.slug])
    contact = other.contacts[0]
    response = client.post(
        add,
        {"contact_id": contact.contact_id, "user_type": UserType.PARTNER, "role": partner_role.pk},
    )
    assert response.status_code == 400
    assert "No contact with this id in this portal account." in response.content.decode()
    response = client.post(
        add,
        {
            "name": "Mallory",
            "email": "mallory@acme.example",
            "user_type": UserType.EMPLOYEE,
            "role": other.roles[0].pk,
        },
    )
    assert response.status_code == 400
    change_role = reverse("user-action", args=[own.account.slug, own.users[0].pk, "change-role"])
    response = client.post(change_role, {"role": other.roles[0].pk})
    assert response.status_code == 400
    assert not _leaks(response, secrets)
    assert describe_changes(before, snapshot()) == []


@pytest.fixture
def portal_user(account, partner_role):
    return PortalUserFactory(
        portal_account=account, role=partner_role, name="Pia Portal", email="pia@acme.example"
    )


def _own_console_requests(world):
    own, other, _ = world
    for endpoint in console_endpoints():
        _check_known(endpoint)
        kwargs = {name: FILLERS[name](own)[0] for name in endpoint.params}
        url = reverse(endpoint.name, kwargs=kwargs)
        yield endpoint, url, "GET", None
        yield endpoint, url, "POST", post_bodies(endpoint, other)[0]


def test_a_portal_user_gets_403_on_every_console_url(world, portal_user):
    """A portal user holding a console session (say their admin seat just moved away)."""
    client = _client(portal_user)
    before = snapshot()
    seen, problems = set(), []
    for endpoint, url, method, body in _own_console_requests(world):
        seen.add(endpoint.name)
        status = _run(client, method, url, body).status_code
        if status != 403:
            problems.append(f"{method} {url} ({endpoint.name}): {status}, expected 403")
    assert not problems, "\n".join(problems)
    assert describe_changes(before, snapshot()) == []
    assert seen == {e.name for e in console_endpoints()}
    assert {"users", "home"} <= seen


def test_a_portal_sign_in_is_not_a_console_sign_in(world, portal_user):
    client = _client(portal_user, backend="accounts.backends.PortalBackend")
    before = snapshot()
    for _endpoint, url, method, body in _own_console_requests(world):
        response = _run(client, method, url, body)
        assert response.status_code == 302, (method, url)
        assert urlsplit(response["Location"]).path == reverse("login"), (method, url)
    assert describe_changes(before, snapshot()) == []


def test_anonymous_is_sent_to_sign_in_from_every_console_url(world, client):
    before = snapshot()
    seen = set()
    for endpoint, url, method, body in _own_console_requests(world):
        seen.add(endpoint.name)
        response = _run(client, method, url, body)
        assert response.status_code == 302, (method, url, response.status_code)
        assert urlsplit(response["Location"]).path == reverse("login"), (method, url)
    assert seen == {e.name for e in console_endpoints()}
    assert describe_changes(before, snapshot()) == []

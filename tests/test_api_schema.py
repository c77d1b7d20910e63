"""The OpenAPI schema served at /api/v1/openapi.json stays true: it names every /api/v1/ URL and
no other, and schemathesis sends every operation generated requests (valid and invalid bodies,
for contacts in every portal-user state) through the WSGI app, checking that each answer is
documented with its status code, content type, headers and body."""

import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import UserState
from api.openapi import SCHEMA
from contacts.salesforce_ids import to_18
from tests.factories import ContactFactory, PortalUserFactory
from tests.test_tenant_isolation import walk

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]
SF_15 = "0035g00000AbCdE"
SF_18 = to_18(SF_15)
LOOKUPS = ("Salesforce 15", "Salesforce 18", "another account's")
# Role names are free text in the schema; most generated bodies name the seeded roles so that
# requests get past the role check.
CONFIG = schemathesis.Config.from_dict(
    {
        "dictionaries": {"roles": {"values": ["Partner User", "Customer User", "Reseller"]}},
        "parameters": {"body.role": {"dictionary": "roles", "probability": 0.9}},
    }
)
# Generated requests per operation, on top of the hand-picked ones: few, to stay fast.
EXAMPLES = {GenerationMode.POSITIVE: 5, GenerationMode.NEGATIVE: 5}


def _as_schema_path(route):
    """'api/v1/accounts/<slug:slug>/...' -> '/accounts/{slug}/...'."""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.removeprefix("api/v1/"))


def test_the_schema_describes_every_api_url_and_no_other():
    routes = {_as_schema_path(e.route) for e in walk() if e.route.startswith("api/v1/")}
    assert routes == set(SCHEMA["paths"])


def test_the_schema_is_served_without_a_token(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json() == SCHEMA
    assert client.post("/api/v1/openapi.json").status_code == 405


def test_other_methods_are_405_naming_the_documented_ones(api_client):
    for path, operations in SCHEMA["paths"].items():
        url = "/api/v1" + path.format(slug="acme", contact_ref="003" + "0" * 16)
        documented = [method.upper() for method in operations if method != "parameters"]
        for method in ["get", "post", "put", "patch", "delete"]:
            if method.upper() not in documented:
                response = getattr(api_client, method)(url)
                assert response.status_code == 405, (method, url)
                assert response["Allow"] == ", ".join(documented)
                assert response.json()["error"]


@pytest.fixture
def wsgi_app(settings):
    """Django's WSGI app, as a server runs it, inside the test's transaction: like Django's test
    client, it must not close the database connection at the end of each request."""
    settings.ALLOWED_HOSTS = ["localhost"]
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(account, other_account, partner_role, customer_role, inactive_role):
    """Acme's contacts in every portal-user situation, by name: contact ids (the enabled one by
    its Salesforce id too), a contact id of nobody's and one of another account's contact."""
    refs = {}
    for name, state, deleted, role, extra in [
        ("no user", None, False, None, {}),
        ("deleted, no user", None, True, None, {}),
        ("enabled", UserState.ENABLED, False, customer_role, {"contact__salesforce_id": SF_18}),
        ("unconfirmed", UserState.UNCONFIRMED, False, partner_role, {}),
        ("disabled", UserState.DISABLED, False, customer_role, {}),
        ("enabled, contact deleted", UserState.ENABLED, True, partner_role, {}),
        ("account admin", UserState.ENABLED, False, partner_role, {"is_account_admin": True}),
    ]:  # fmt: skip
        if state is None:
            contact = ContactFactory(portal_account=account)
        else:
            user = PortalUserFactory(portal_account=account, role=role, state=state, **extra)
            contact = user.contact
        if deleted:
            contact.deleted_at = timezone.now()
            contact.save()
        refs[name] = contact.contact_id
    refs["Salesforce 15"], refs["Salesforce 18"] = SF_15, SF_18
    refs["nobody's"] = "003" + "0" * 16
    refs["another account's"] = ContactFactory(portal_account=other_account).contact_id
    return refs


def _hand_picked(operation, refs):
    """Valid requests that reach each answer of the operation: (contact ref, body) pairs."""
    if "{contact_ref}" not in operation.path:  # the sync: one batch that applies

        def one(name):
            return {"contact_id": refs[name]}

        batches = {
            "upsert": {"contacts": [{**one("enabled"), "name": "New Name"}]},
            "delete": {"contacts": [one("no user")]},
            "restore": {"contacts": [one("deleted, no user")]},
            "merge": {"merges": [{"winner": one("no user"), "loser": one("enabled")}]},
        }
        return [(None, batches[operation.path.split("/")[-2]])]
    bodies = {
        "enable/": [{"role": "Partner User"}, {"role": "Customer User", "user_type": "customer"}],
        "change-role/": [{"role": "Partner User"}, {"role": "Customer User"}],
        "magic-link/": [{"target": "courses"}],
        "send-login-email/": [{"target": None}],
    }
    action = operation.path.rsplit("/portal-user/", 1)[1]
    if operation.method == "get":
        return [(ref, NOT_SET) for ref in refs.values()]
    # Lookups by Salesforce id and across accounts are the GET's to show; actions take states.
    states = [ref for name, ref in refs.items() if name not in LOOKUPS]
    return [(ref, body) for ref in states for body in bodies.get(action, [{}])]


def _call(case, statuses):
    # Each request starts from the seeded contacts: an enabled user stays enabled.
    with transaction.atomic():
        response = case.call_and_validate(checks=CHECKS)
        transaction.set_rollback(True)
    statuses.add(response.status_code)


def _generated(operation, mode, refs, headers, statuses):
    def cases(ref):
        parameters = {"slug": "acme", "contact_ref": ref}
        fixed = {p.name: parameters[p.name] for p in operation.path_parameters}
        return operation.as_strategy(mode, path_parameters=fixed, headers=headers)

    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,  # no .hypothesis/ folder in the work tree
        derandomize=True,  # the same requests on every run: CI stays reproducible
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.sampled_from(list(refs.values())).flatmap(cases))
    def check(case):
        _call(case, statuses)

    check()


def test_every_operation_answers_as_the_schema_says(wsgi_app, api_token, seeded):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi_app, config=CONFIG)
    schema.validate()
    operations = [result.ok() for result in schema.get_all_operations()]
    described = {
        f"{method.upper()} {path}"
        for path, methods in SCHEMA["paths"].items()
        for method in methods
        if method != "parameters"
    }
    # schemathesis leaves out the schema's own URL (tested above).
    assert {operation.label for operation in operations} == described - {"GET /openapi.json"}

    headers = {"Authorization": f"Bearer {api_token.secret}"}
    for operation in operations:
        statuses = set()
        for ref, body in _hand_picked(operation, seeded):
            parameters = {"slug": "acme", **({"contact_ref": ref} if ref else {})}
            _call(operation.Case(path_parameters=parameters, headers=headers, body=body), statuses)
        # Without a body there is nothing to make invalid: path and token are fixed.
        modes = list(GenerationMode) if len(operation.body) else [GenerationMode.POSITIVE]
        for mode in modes:
            _generated(operation, mode, seeded, headers, statuses)
        assert statuses & {200, 201, 202}, (operation.label, statuses)
        if "/portal-user/" in operation.path and operation.method == "post":
            assert {400, 404, 409} <= statuses, (operation.label, statuses)

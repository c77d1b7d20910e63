"""The webhook queries that run on every change, every worker wake-up and every log page read
what they need, not the history: on PostgreSQL, over a table of 30,000 deliveries (most of them
delivered, 1 in 300 of them the endpoint's whose log is read), EXPLAIN ANALYZE shows no
sequential scan of it and at most 200 rows read (a log page shows 50)."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import lifecycle
from helpers.bulk_sql import insert
from tests.factories import PortalUserFactory
from tests.test_query_plans import _nodes, _plan
from webhooks import delivery
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.postgres
TABLE = "webhooks_delivery"
HISTORY, PENDING_LATER, DUE, ENDPOINTS = 30_000, 2_000, 20, 300


def _rows_read(plan):
    return sum(
        (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
        for node in _nodes(plan)
        if node.get("Relation Name") == TABLE
    )


@pytest.fixture
def history(account, other_account):
    """The endpoint's deliveries among those of other endpoints (other tenants'), as in a shared
    table: the planner picks its paths by how few of the rows are this endpoint's."""
    hook = Endpoint.objects.create(portal_account=account, url="https://a.example/", events=[])
    others = Endpoint.objects.bulk_create(
        Endpoint(portal_account=other_account, url="https://b.example/", events=[])
        for _ in range(ENDPOINTS - 1)
    )
    now = timezone.now()
    fields = ("portal_account_id", "endpoint_id", "event_id", "event_type", "payload", "status")
    fields += ("attempts", "next_attempt_at")
    rows = []
    for n in range(HISTORY):
        endpoint = hook if n % ENDPOINTS == 0 else others[n % (ENDPOINTS - 1)]
        rows.append(
            (endpoint.portal_account_id, endpoint.pk, f"evt_{n:032x}", "user.disabled", {})
            + ("delivered", 1, None)
        )
    later = now + timedelta(hours=1)
    for n in range(PENDING_LATER):  # the newest rows: retries waiting, none of them the hook's
        rows.append((other_account.pk, others[0].pk, f"evt_l{n:031x}", "user.disabled", {}))
        rows[-1] += ("pending", 1, later)
    for n in range(DUE):
        rows.append((other_account.pk, others[1].pk, f"evt_d{n:031x}", "user.disabled", {}))
        rows[-1] += ("pending", 0, now)
    with transaction.atomic():
        insert(Delivery, fields, rows)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")  # noqa: S608 - a fixed table name
    return hook


def _checked(queries):
    problems = []
    for query in queries:
        if TABLE not in query["sql"] or not query["sql"].lstrip().upper().startswith("SELECT"):
            continue
        plan = _plan(query["sql"], query["params"])
        scans = [
            (n["Node Type"], n.get("Index Name"))
            for n in _nodes(plan)
            if n.get("Relation Name") == TABLE
        ]
        if any(kind == "Seq Scan" for kind, _ in scans) or _rows_read(plan) > 200:
            problems.append((query["sql"][query["sql"].find(" WHERE") :], scans, _rows_read(plan)))
    return problems


def _captured(action):
    with CaptureQueriesContext(connection) as captured:
        action()
    return [{"sql": q["sql"].replace("%", "%%"), "params": None} for q in captured.captured_queries]


def test_the_log_page_claims_and_sweeps_read_only_what_they_use(history, account_admin_client):
    url = reverse("webhook-deliveries", args=["acme", history.pk])
    last = Delivery.objects.filter(endpoint=history).order_by("id")[60].pk
    queries = _captured(lambda: account_admin_client.get(url))
    queries += _captured(lambda: account_admin_client.get(url, {"before": last}))
    queries += _captured(delivery.next_due)
    queries += _captured(lambda: delivery.claim_due(50))

    assert _checked(queries) == []
    assert Delivery.objects.filter(status="pending", attempts=0).count() == DUE


def test_a_change_costs_the_same_whatever_the_history(history, account, technician):
    user = PortalUserFactory(portal_account=account)
    history.events = ["user.disabled"]
    history.save()
    queries = _captured(lambda: lifecycle.disable(user, by=technician))

    assert _checked(queries) == []
    assert (
        Delivery.objects.filter(event_type="user.disabled", attempts=0, endpoint=history).count()
        == 1
    )

"""The access policies' sweeps read index ranges, not the account (PostgreSQL): each selection
runs under EXPLAIN ANALYZE over an account of 30,000 users beside 20,000 of other tenants, and
must use its index, never scan the users table, and read about as many rows as it returns. The
plans are printed (pytest -s) for the record."""

import json
import random
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts import expiry, reminders
from accounts.inactivity import Rule
from accounts.models import AccessPolicy, Role, User, UserKind, UserState, UserType
from contacts.models import Contact
from tests.factories import PortalAccountFactory

pytestmark = pytest.mark.postgres

SIZE, OTHERS = 30_000, 20_000
SLACK_ROWS = 50


def _seed(size, now):
    account = PortalAccountFactory()
    roles = {
        t: Role.objects.create(portal_account=account, name=f"R {t}", user_type=t)
        for t in (UserType.PARTNER, UserType.CUSTOMER, UserType.EMPLOYEE)
    }
    rng = random.Random(size)
    types = [rng.choice([UserType.EMPLOYEE] * 3 + [UserType.CUSTOMER] * 2) for _ in range(size)]
    contacts = iter(
        Contact.objects.bulk_create(
            Contact(
                portal_account=account,
                contact_id=f"003{account.pk:04d}{index:012d}",
                name=f"User {index}",
                email=f"u{index}@a{account.pk}.example",
            )
            for index, user_type in enumerate(types)
            if user_type != UserType.EMPLOYEE
        )
    )
    users = []
    for index, user_type in enumerate(types):
        state = rng.choices(list(UserState), weights=[25, 60, 15])[0]
        invited = now - timedelta(days=rng.uniform(0, 400))
        users.append(
            User(
                kind=UserKind.PORTAL,
                portal_account=account,
                user_type=user_type,
                role=roles[user_type],
                contact=None if user_type == UserType.EMPLOYEE else next(contacts),
                name=f"User {index}",
                email=f"u{index}@a{account.pk}.example",
                password="!unusable",
                state=state,
                invited_at=invited,
                last_invited_at=invited,
                last_login=None
                if rng.random() < 0.05
                else now - timedelta(days=rng.uniform(0, 400)),
                access_ends_on=(now + timedelta(days=rng.randint(-3, 300))).date()
                if rng.random() < 0.02
                else None,
            )
        )
    User.objects.bulk_create(users, batch_size=5000)
    return account


@pytest.fixture
def world(db):
    now = timezone.now()
    _seed(OTHERS, now)
    account = _seed(SIZE, now)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_user")
    return account, now


def _explain(queryset):
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        print("\n" + "\n".join(row[0] for row in cursor.fetchall()))
    return plan


def _nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _check(queryset, index):
    plan = _explain(queryset)
    scans = [n for n in _nodes(plan) if n.get("Relation Name") == "accounts_user"]
    assert scans, plan
    assert all("Seq Scan" not in n["Node Type"] for n in scans), plan
    # An index scan names its index; a bitmap heap scan's child (the index scan) does.
    assert {n["Index Name"] for n in _nodes(plan) if "Index Name" in n} == {index}, plan
    returned = plan["Actual Rows"]
    read = sum(
        (n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"] for n in scans
    )
    assert read <= returned + SLACK_ROWS, (read, returned)
    return returned


def test_the_reminder_sweep_reads_the_invitations_due_since_its_last_run(world):
    account, now = world
    policy = AccessPolicy(
        portal_account=account, reminders_on=True, reminder_after_days=3, reminder_max=3
    )
    for number in (1, 2, 3):
        due = reminders._due(policy, number, now - timedelta(hours=1), now)
        _check(
            due.order_by("invited_at", "id").values_list("invited_at", "id")[:500],
            "user_unconfirmed_by_invited",
        )


def test_the_expiry_sweep_reads_the_ended_users_only(world):
    _account, now = world
    due = (
        expiry.due(now.date()).order_by("access_ends_on", "id").values_list("access_ends_on", "id")
    )
    assert _check(due[:500], "user_access_ends") > 0


def test_the_inactivity_sweep_reads_the_inactive_users_of_one_type(world):
    account, now = world
    rule = Rule(account.pk, UserType.CUSTOMER, 300, 14, now)
    returned = _check(
        rule.candidates().order_by("active", "id").values_list("active", "id")[:500],
        "user_inactive_by_type",
    )
    assert returned > 0

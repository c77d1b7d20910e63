"""A guard against pages whose cost grows with the account, that is not a timing: on PostgreSQL,
every query of each Users and Contacts page case runs under EXPLAIN ANALYZE over two accounts,
one four times the other. A sequential scan of the users or contacts table fails, and so does a
query that reads more rows of them in the bigger account (rows returned plus rows filtered
out, over all loops): a page shows 50 rows, and the searches match the same few users in both
accounts, so a plan that reads in proportion to the account is the only way to grow.

The tables are ANALYZEd as autovacuum would, so the plans are those production would get, except
for searches: at these sizes reading the account's rows is rightly cheaper than the trigram
indexes (each GIN lookup is priced at hundreds of rows), and PostgreSQL switches to them only
at tens of thousands of users. The searches are therefore left to `bench/users_page.py`, which
prints the rows each case reads at 100,000 and 1,000,000 users beside its times."""

import json
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, User, UserKind, UserState, UserType
from contacts.models import Contact
from tests.factories import PortalAccountFactory

pytestmark = pytest.mark.postgres

SMALL, BIG = 1_500, 6_000
OTHER_TENANTS = 10_000
WATCHED_TABLES = {"accounts_user", "contacts_contact"}
# A query may read this many more rows in the bigger account (it has 4x the rows), plus a little
# for pages that straddle a different mix of states.
GROWTH_ALLOWED = 1.5
SLACK_ROWS = 20
NAMES = "Ada Alan Chen Dana Elena Felix Grace Hugo Ines Jonas Lara Marco Nadia Olga".split()  # noqa: SIM905
SURNAMES = "Ada Alan Chen Dana Elena Felix Grace Hugo Ines Jonas Lara Marco Nadia Olga".split()  # noqa: SIM905

USERS_CASES = {
    "enabled tab": {},
    "disabled tab": {"tab": "disabled"},
    "unconfirmed tab": {"tab": "unconfirmed"},
    "page 3": {"page": 3},
    "sort by last sign-in": {"sort": "last_login"},
    "sort by email, reversed": {"sort": "-email"},
}
CONTACTS_CASES = {
    "live contacts": {},
    "deleted contacts": {"show": "deleted"},
    "page 3": {"page": 3},
    "contacts by name, reversed": {"sort": "-name"},
    "contacts by email": {"sort": "email"},
    "contacts by email, reversed, page 3": {"sort": "-email", "page": 3},
    "contacts by CRM account": {"sort": "crm"},
    "contacts newest first": {"sort": "-created"},
    "deleted contacts by date": {"show": "deleted", "sort": "-deleted"},
}
# The contacts page's portal-user filter finds its matches as a search does (up to a cap, then
# pages through them), so what it reads grows with the matches until the cap, like a search's:
# the test below checks how it reads the users instead.
CONTACT_FILTER_CASES = {
    "no portal user": {"portal": "none"},
    "any portal user": {"portal": "any"},
    "portal user enabled": {"portal": "enabled"},
    "portal user disabled, by email": {"portal": "disabled", "sort": "email"},
    "portal user unconfirmed, CRM account": {"portal": "unconfirmed", "crm": "Company%201"},
}


def _seed(size):
    """An account of `size` portal users, most with a CRM contact, and some contacts without a
    user; states, types and sign-ins mixed as in a real account."""
    account = PortalAccountFactory(
        partner_licenses=size, customer_licenses=size, employee_licenses=size
    )
    roles = {  # a user's type is their role's
        user_type: Role.objects.create(
            portal_account=account, name=f"Viewer {user_type}", user_type=user_type
        )
        for user_type in (UserType.PARTNER, UserType.EMPLOYEE)
    }
    rng = random.Random(size)
    now = timezone.now()
    contacts = Contact.objects.bulk_create(
        Contact(
            portal_account=account,
            contact_id=f"003{account.pk:04d}{index:012d}",
            name=f"{rng.choice(NAMES)} {rng.choice(SURNAMES)}",
            email=f"c{index}@a{account.pk}.example",
            crm_account_name=f"Company {index % 50}",
            deleted_at=now if rng.random() < 0.02 else None,
        )
        for index in range(size + size // 5)
    )
    User.objects.bulk_create(
        User(
            kind=UserKind.PORTAL,
            portal_account=account,
            user_type=UserType.PARTNER if contact else UserType.EMPLOYEE,
            contact=contact,
            role=roles[UserType.PARTNER if contact else UserType.EMPLOYEE],
            name=contact.name if contact else f"Employee {index}",
            email=f"u{index}@a{account.pk}.example",
            password="!unusable",
            state=rng.choices(list(UserState), weights=[25, 60, 15])[0],
            invited_at=now,
            last_invited_at=now,
            last_login=now if rng.random() < 0.7 else None,
        )
        for index, contact in enumerate(contacts[i] if i % 10 else None for i in range(size))
    )
    return account


@pytest.fixture
def accounts(db):
    # The other tenants of a shared table: without them a whole-table scan of 7,500 users is
    # cheap enough that PostgreSQL prefers it to the index paths it takes in production.
    _seed(OTHER_TENANTS)
    small, big = _seed(SMALL), _seed(BIG)
    with connection.cursor() as cursor:
        for table in sorted(WATCHED_TABLES):
            cursor.execute(f"ANALYZE {table}")  # noqa: S608 - a fixed table name
    return small, big


def _plan(sql, params):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def _nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _rows_read(plan, tables=WATCHED_TABLES):
    """Rows of the watched tables that the plan's scans touched."""
    return sum(
        (
            node["Actual Rows"]
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        )
        * node["Actual Loops"]
        for node in _nodes(plan)
        if node.get("Relation Name") in tables
    )


def _page_queries(client, url):
    """The SELECTs a page request runs, with their parameters, in order."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    # The debug cursor logs the SQL with its parameters inlined; run it again to plan it.
    return [
        query["sql"] for query in captured.captured_queries if query["sql"].startswith("SELECT")
    ]


def _problems(client, url_of, cases, small, big):
    problems = []
    for case, params in cases.items():
        small_queries = _page_queries(client, url_of(small, params))
        big_queries = _page_queries(client, url_of(big, params))
        assert len(small_queries) == len(big_queries), f"{case}: query count differs by size"
        for small_sql, big_sql in zip(small_queries, big_queries, strict=True):
            small_plan, big_plan = _plan(small_sql, None), _plan(big_sql, None)
            problems += _plan_problems(case, small_plan, big_plan, big_sql)
    return problems


def _plan_problems(case, small_plan, big_plan, big_sql):
    """A sequential scan of a watched table, or rows read that grow with the account."""
    problems = []
    for node in _nodes(big_plan):
        if node["Node Type"] == "Seq Scan" and node["Relation Name"] in WATCHED_TABLES:
            problems.append(f"{case}: Seq Scan on {node['Relation Name']}: {big_sql}")
    small_read, big_read = _rows_read(small_plan), _rows_read(big_plan)
    if big_read > small_read * GROWTH_ALLOWED + SLACK_ROWS:
        problems.append(
            f"{case}: reads {small_read} rows at {SMALL} users, {big_read} at {BIG}: {big_sql}"
        )
    return problems


def _url(name, query_params):
    def url_of(account, params):
        query = "&".join(f"{k}={v}" for k, v in {**query_params, **params}.items())
        return reverse(name, args=[account.slug]) + (f"?{query}" if query else "")

    return url_of


def test_users_and_contacts_pages_read_only_what_they_show(accounts, admin_client):
    small, big = accounts
    problems = _problems(admin_client, _url("users", {}), USERS_CASES, small, big)
    problems += _problems(admin_client, _url("contacts", {}), CONTACTS_CASES, small, big)
    assert not problems, "\n".join(problems)

    # The check itself: a count of every user of the account is what it must catch, whether
    # the planner reads the account's index range (rows that grow) or the table (a Seq Scan).
    sql = "SELECT count(*) FROM accounts_user WHERE portal_account_id = %s AND name LIKE %s"
    small_plan, big_plan = _plan(sql, [small.pk, "%x%"]), _plan(sql, [big.pk, "%x%"])
    assert _plan_problems("count", small_plan, big_plan, sql)


def test_the_contacts_portal_filter_reads_only_the_users_of_the_contacts_it_looks_at(
    accounts, admin_client
):
    """Whatever the filter matches, each contact looked at costs one probe of its user (the
    users' unique contact index): the filter never scans or hashes the users table, which holds
    every account's users (a join planned that way read all 26,000 of them here)."""
    _small, big = accounts
    url_of = _url("contacts", {})
    problems = []
    for case, params in CONTACT_FILTER_CASES.items():
        for sql in _page_queries(admin_client, url_of(big, params)):
            plan = _plan(sql, None)
            for node in _nodes(plan):
                if node["Node Type"] == "Seq Scan" and node["Relation Name"] in WATCHED_TABLES:
                    problems.append(f"{case}: Seq Scan on {node['Relation Name']}: {sql}")
            users = _rows_read(plan, {"accounts_user"})
            contacts = _rows_read(plan, {"contacts_contact"})
            if users > contacts + SLACK_ROWS:
                problems.append(f"{case}: reads {users} users for {contacts} contacts: {sql}")
    assert not problems, "\n".join(problems)

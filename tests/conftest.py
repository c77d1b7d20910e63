import os
from contextlib import ExitStack

import pytest

from accounts.models import UserKind, UserType
from portal_admin.celery import app as celery_app
from tests.factories import (
    PortalAccountFactory,
    PortalUserFactory,
    RoleFactory,
    StaffFactory,
)
from tests.migrated_db import migrations_from_a_snapshot

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _postgres_error(config):
    from django.db import connection
    from pytest_django.plugin import blocking_manager_key

    if connection.vendor != "postgresql":
        return "DATABASE_URL does not point at PostgreSQL"
    # Collection runs with database access blocked, and the database named in DATABASE_URL need
    # not exist (pytest-django creates test_<name> through the server's maintenance database).
    try:
        with config.stash[blocking_manager_key].unblock(), connection._nodb_cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        return f"PostgreSQL is not reachable: {error}"
    return None


def _redis_error():
    from django.conf import settings

    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis"):
        return "CELERY_BROKER_URL does not point at Redis"
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as error:
        return f"Redis is not reachable at {url}: {error}"
    return None


def pytest_collection_modifyitems(config, items):
    """Tests marked postgres / worker need the real services. Locally they are skipped when the
    services are not configured; in CI a missing service fails the run instead.

    Under xdist, the slowest tests come first (HEAVY_FIRST), so that none starts near the end
    while the other workers run out of work."""
    if hasattr(config, "workerinput"):  # every worker sorts alike: xdist checks it
        items.sort(key=_heavy_rank)
    needs = {
        "postgres": lambda: _postgres_error(config),
        "worker": lambda: _postgres_error(config) or _redis_error(),
    }
    for marker, check in needs.items():
        marked = [item for item in items if item.get_closest_marker(marker)]
        if not marked:
            continue
        problem = check()
        if problem and IN_CI:
            pytest.exit(f"CI needs the real services for '{marker}' tests: {problem}", returncode=3)
        if problem:
            for item in marked:
                item.add_marker(pytest.mark.skip(reason=f"{problem} (runs in CI)"))


BROWSER_TESTS = "tests/test_browser_"
# The slowest tests outside the browser ones (2 to 30 s of CPU each), slowest first: under
# xdist they start first (pytest_collection_modifyitems), after the browser runs. A name that
# no longer matches only loses its place in the queue.
HEAVY_FIRST = (
    "tests/test_attack_fuzz.py::test_bad_input_on_every_console_page_is_never_a_500[",
    "tests/test_tenant_isolation.py::test_account_admin_reaches_nothing_of_another_account",
    "tests/test_api_schema.py::test_every_operation_answers_as_the_schema_says",
    "tests/test_gunicorn_access_log.py::test_the_access_log_never_holds_a_portal_link_secret",
    "tests/test_seed_demo.py::TestTheDemoData::",  # one seeding for the class
    "tests/test_csv_reader.py::test_a_million_rows_stream_in_bounded_memory",
    "tests/test_metrics.py::test_counters_of_several_processes_add_up",
    "tests/test_outbox_pace.py::test_at_120_a_minute_a_backlog_leaves_two_a_second_and",
    "tests/test_tenant_isolation.py::test_a_portal_user_gets_403_on_every_console_url",
)


def _heavy_rank(item):
    return next(
        (rank for rank, name in enumerate(HEAVY_FIRST) if item.nodeid.startswith(name)),
        len(HEAVY_FIRST),
    )


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """With -n (pytest-xdist's "load"): each test goes to whichever worker is free, as usual,
    except
    - the browser tests (tests/test_browser_*.py), dealt out in one run of files per worker,
      first: a worker's browser tests then share one Chromium (tests/browser.py), launched once
      instead of once per test;
    - a test class, whose tests go to one worker together: a class-scoped fixture (say, data
      that its tests only read, tests/test_seed_demo.py) is then made once."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class BrowserTestsInARow(LoadScopeScheduling):
        browser_files = None

        def _split_scope(self, nodeid):
            if not nodeid.startswith(BROWSER_TESTS):
                path = nodeid.split("[", 1)[0].split("::")
                return "::".join(path[:2]) if len(path) > 2 else nodeid  # its class, or itself
            # The files alternate between as many runs as there are workers. Units are handed
            # out largest first (LoadScopeScheduling), so each worker starts with its run.
            if self.browser_files is None:
                files = {n.split("::")[0] for n in self.collection if n.startswith(BROWSER_TESTS)}
                self.browser_files = sorted(files)
            run = self.browser_files.index(nodeid.split("::")[0]) % self.numnodes
            return f"browser tests, run {run}"

    return BrowserTestsInARow(config, log)


@pytest.fixture(scope="session")
def _migrate_from_a_snapshot():
    with ExitStack() as patched:
        patched.enter_context(migrations_from_a_snapshot())
        yield patched


@pytest.fixture(scope="session")
def django_db_setup(_migrate_from_a_snapshot, django_db_setup):
    """pytest-django's, with the migrated SQLite database copied from a snapshot of an earlier
    run (tests/migrated_db.py); `migrate` is itself again once the test database is there."""
    _migrate_from_a_snapshot.close()
    return django_db_setup


@pytest.fixture(autouse=True)
def _eager_celery(request):
    """Tasks run in-process unless a test is about the real worker."""
    if request.node.get_closest_marker("worker"):
        yield
        return
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache: one test's failures must not lock out the next (nor a
    test that made the cache unreachable leave the counters in the process's memory)."""
    from django.core.cache import cache

    from accounts import link_lifetimes
    from helpers import attempt_counter

    link_lifetimes.forget()

    cache.clear()
    yield
    attempt_counter.cache.unreachable_until = 0.0
    attempt_counter._this_process.clear()
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_test_settings(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Real hashers cost ~100 ms a password by design; tests hash hundreds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Pages render without a collectstatic run: no manifest, no STATIC_ROOT.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.STATIC_ROOT = None


@pytest.fixture
def clock(monkeypatch):
    """Time the test moves (tests/clock.py): the policies' tests never sleep."""
    from django.utils import timezone

    from tests.clock import Clock

    moving = Clock(timezone.now())
    monkeypatch.setattr(timezone, "now", moving)
    return moving


# --- Personas: who acts in a test ---


@pytest.fixture
def account(db):
    return PortalAccountFactory(name="Acme Portal", slug="acme")


@pytest.fixture
def other_account(db):
    return PortalAccountFactory(name="Globex Portal", slug="globex")


@pytest.fixture
def partner_role(account):
    return RoleFactory(portal_account=account, name="Partner User")


@pytest.fixture
def customer_role(account):
    return RoleFactory(portal_account=account, name="Customer User", user_type=UserType.CUSTOMER)


@pytest.fixture
def employee_role(account):
    return RoleFactory(portal_account=account, name="Staff", user_type=UserType.EMPLOYEE)


@pytest.fixture
def inactive_role(account):
    return RoleFactory(portal_account=account, name="Reseller", active=False)


@pytest.fixture
def mssp_admin(db):
    return StaffFactory(kind=UserKind.MSSP_ADMIN, name="Mia Admin", email="mia@mssp.example")


@pytest.fixture
def technician(db):
    return StaffFactory(kind=UserKind.TECHNICIAN, name="Theo Tech", email="theo@mssp.example")


@pytest.fixture
def account_admin(account, partner_role):
    return PortalUserFactory(
        portal_account=account,
        role=partner_role,
        is_account_admin=True,
        name="Ada Admin",
        email="ada.admin@acme.example",
    )


@pytest.fixture
def other_admin(other_account):
    return PortalUserFactory(
        portal_account=other_account,
        is_account_admin=True,
        name="Gus Globex",
        email="gus@globex.example",
    )


def console_sign_in(client, user):
    """Sign `client` in at the console as `user` would: the password, then a code from their
    authenticator app (MSSP staff must have one; see accounts/two_factor.py)."""
    import time

    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts import two_factor

    client.force_login(user, backend="accounts.backends.ConsoleBackend")
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=two_factor.APP_NAME, confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[two_factor.VERIFIED_AT] = time.time()
    session.save()
    return client


def _client_for(user):
    """Each persona gets a client of its own, so one test can act as several people."""
    from django.test import Client

    return console_sign_in(Client(), user)


@pytest.fixture
def admin_client(mssp_admin):
    return _client_for(mssp_admin)


@pytest.fixture
def technician_client(technician):
    return _client_for(technician)


@pytest.fixture
def account_admin_client(account_admin):
    return _client_for(account_admin)


@pytest.fixture
def sample_world(db):
    """An account holding the shared samples' world (contacts.csv, roles.csv), for imports."""
    from tests.samples import load_world

    account = PortalAccountFactory(
        name="Acme Portal", slug="acme", partner_licenses=50, customer_licenses=50
    )
    load_world(account)
    return account


@pytest.fixture
def api_token(account, mssp_admin):
    """A live API token of `account`, its secret at hand as `.secret` (in real life the secret
    is shown once and never stored)."""
    from api.api_tokens import create_token

    token, secret = create_token(account, "CRM connector", by=mssp_admin)
    token.secret = secret
    return token


def api_client_for(secret):
    """A client sending that token with every request, CSRF checks on as for any caller."""
    from django.test import Client

    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {secret}"})


@pytest.fixture
def api_client(api_token):
    return api_client_for(api_token.secret)

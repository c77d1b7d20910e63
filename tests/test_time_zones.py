"""Times in the console: relative ("3 days ago") with the exact time on hover, in the viewer's
own time zone (a setting per console person, UTC until chosen)."""

import itertools
import re
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format

from accounts import audit
from accounts.models import AuditEvent
from accounts.templatetags.when import exact, relative
from tests.factories import PortalUserFactory

TIME_ZONE = reverse("time-zone")


def _event_at(by, subject, when):
    event = audit.record("disable", by=by, subject=subject)
    AuditEvent.objects.filter(pk=event.pk).update(created_at=when)


def test_relative_words():
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert relative(now - timedelta(seconds=20), now) == "just now"
    assert relative(now - timedelta(days=3, hours=2), now) == "3\xa0days ago"
    assert relative(now + timedelta(hours=5), now) == "in 5\xa0hours"
    # Rounded, not cut: a 7-day invitation just sent is not "in 6 days".
    assert relative(now + timedelta(days=6, hours=23, minutes=59), now) == "in 1\xa0week"
    assert relative(now + timedelta(days=6, hours=10), now) == "in 6\xa0days"
    assert relative(now + timedelta(hours=4, minutes=50), now) == "in 5\xa0hours"
    assert relative(now - timedelta(days=45), now) == "Oct 18, 2026"


def _moments_of_the_year(zone):
    """2026 every 75 minutes (each quarter of the hour in turn, every local day), and every 15
    minutes for 3 hours either side of each clock change, where hours repeat or are skipped."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [start + timedelta(minutes=75 * n) for n in range(7008)]
    quarters = set(moments)
    for before, after in itertools.pairwise(moments):
        if before.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            first = before - timedelta(hours=3) - timedelta(minutes=before.minute % 15)
            quarters.update(first + timedelta(minutes=15 * n) for n in range(30))
    return sorted(quarters)


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
)
def test_exact_and_old_dates_read_as_django_formats_them(zone):
    """exact and relative's dates are spelled out (date_format was a tenth of the users page):
    the same words as date_format's, through the clock changes of the year (hours repeated or
    skipped, where date_format names no zone) and the turn of a year."""
    moments = _moments_of_the_year(zoneinfo.ZoneInfo(zone))
    moments += [datetime(9, 3, 4, 5, 6, 7, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, tzinfo=UTC)]
    now = datetime(2099, 1, 1, tzinfo=UTC)  # every moment older than a month: a date
    days = {}  # date_format's "M j, Y" of each local day: 96 moments a day read the same words
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        for moment in moments:
            local = timezone.localtime(moment)
            assert exact(moment) == date_format(local, "M j, Y, H:i:s T"), moment
            day = local.date()
            if day not in days:
                days[day] = date_format(local, "M j, Y")
            assert relative(moment, now) == days[day], moment


def test_a_person_chooses_their_time_zone(technician_client, technician):
    page = technician_client.get(TIME_ZONE)
    assert page.status_code == 200
    assert '<option value="Europe/Berlin">' in page.content.decode()
    response = technician_client.post(TIME_ZONE, {"time_zone": "Europe/Berlin"}, follow=True)
    assert "Times are shown in Europe/Berlin now." in response.content.decode()
    technician.refresh_from_db()
    assert technician.time_zone == "Europe/Berlin"


def test_a_zone_that_is_no_zone_is_refused_and_changes_nothing(technician_client, technician):
    response = technician_client.post(TIME_ZONE, {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 400
    technician.refresh_from_db()
    assert not technician.time_zone


def test_the_log_shows_relative_times_and_the_exact_one_in_the_viewers_zone(
    technician_client, technician, account, partner_role
):
    grace = PortalUserFactory(portal_account=account, role=partner_role)
    _event_at(technician, grace, timezone.now() - timedelta(days=3, hours=1))
    _event_at(technician, grace, datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC))
    log = reverse("audit-log", args=[account.slug])

    utc = technician_client.get(log).content.decode()
    assert "3\xa0days ago" in utc
    assert 'title="Jan 15, 2025, 12:00:00 UTC"' in utc
    assert ">Jan 15, 2025</time>" in utc  # old: a date, not "11 months ago"

    technician.time_zone = "Europe/Berlin"
    technician.save(update_fields=["time_zone"])
    berlin = technician_client.get(log).content.decode()
    assert 'title="Jan 15, 2025, 13:00:00 CET"' in berlin
    assert "Jan 15, 2025, 13:00:00 CET" in berlin  # and shown under it in the log
    assert 'datetime="2025-01-15T12:00:00+00:00"' in berlin  # machines get UTC
    assert "When (UTC)" not in berlin
    assert timezone.get_current_timezone_name() == "UTC"  # nothing leaks past the request


def test_another_persons_zone_is_theirs_alone(
    technician_client, admin_client, technician, mssp_admin, account, partner_role
):
    grace = PortalUserFactory(portal_account=account, role=partner_role)
    _event_at(technician, grace, datetime(2025, 7, 1, 8, 30, tzinfo=UTC))
    technician.time_zone = "America/New_York"
    technician.save(update_fields=["time_zone"])
    log = reverse("audit-log", args=[account.slug])
    assert "Jul 1, 2025, 04:30:00 EDT" in technician_client.get(log).content.decode()
    assert "Jul 1, 2025, 08:30:00 UTC" in admin_client.get(log).content.decode()


def test_the_users_list_says_how_long_ago_with_the_exact_time_on_hover(
    technician_client, account, partner_role
):
    PortalUserFactory(
        portal_account=account, role=partner_role, last_login=timezone.now() - timedelta(hours=2)
    )
    page = technician_client.get(reverse("users", args=[account.slug])).content.decode()
    assert re.search(
        r'<time datetime="[^"]+" title="[A-Z][a-z]{2} \d+, \d{4}, [\d:]+ UTC">'
        r"2\xa0hours ago</time>",
        page,
    )


def test_every_list_date_is_relative_with_the_exact_time_on_hover(
    technician_client, account, partner_role
):
    from contacts.models import Contact
    from tests.factories import ContactFactory

    now = timezone.now()
    PortalUserFactory(
        portal_account=account,
        role=partner_role,
        state="unconfirmed",
        invited_at=now - timedelta(days=3),
        last_invited_at=None,
    )
    contact = ContactFactory(portal_account=account, name="Cleo Contact")
    Contact.objects.filter(pk=contact.pk).update(created_at=now - timedelta(days=2))
    hover = r'<time datetime="[^"]+" title="[A-Z][a-z]{2} \d+, \d{4}, [\d:]+ UTC">'

    unconfirmed = technician_client.get(reverse("users", args=[account.slug]) + "?tab=unconfirmed")
    cells = unconfirmed.content.decode().split("<tbody>")[1]
    assert re.search(hover + r"3\xa0days ago</time>", cells)  # Invited
    contacts = technician_client.get(reverse("contacts", args=[account.slug]) + "?q=Cleo")
    assert re.search(hover + r"2\xa0days ago</time>", contacts.content.decode())

"""{% when value %}: a time as people read it in a list, "3 days ago", with the exact time in
the viewer's time zone on hover (the title) and in the datetime attribute (ISO, UTC) for
machines. Older than RELATIVE_DAYS it is a date: "3 months ago" says too little in a log.
{{ value|exact }}: the exact time alone, for where it is shown in full.

A list shows one to three times a row, so the words are spelled out here rather than by
date_format (which parses its format string and looks each letter up, about a tenth of the users
page's time with format_html and the month's lazy translation); tests/test_time_zones.py holds
them to date_format's words."""

from datetime import timedelta
from functools import cache
from html import escape

from django import template
from django.utils import timezone, translation
from django.utils.dateformat import format as date_format
from django.utils.dates import MONTHS_3
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince, timeuntil

register = template.Library()

RELATIVE_DAYS = 30
JUST_NOW = timedelta(minutes=1)


@register.filter
def exact(value):
    """ "Dec 2, 2026, 17:44:17 CET" in the viewer's time zone."""
    if not value:
        return ""
    return _exact(timezone.localtime(value))


def _exact(local):
    """date_format's "M j, Y, H:i:s T" of a local time."""
    if local.replace(fold=not local.fold).utcoffset() != local.utcoffset():
        # An hour that a clock change repeats or skips: date_format leaves the zone's name out.
        return date_format(local, "M j, Y, H:i:s T")
    time = f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    return f"{_day(local)}, {time} {local.tzname()}"


def _day(local):
    """date_format's "M j, Y"."""
    return f"{_months(translation.get_language())[local.month]} {local.day}, {local.year:04d}"


@cache
def _months(language):
    """date_format's "M" of each month in a language: its three letters, title-cased."""
    with translation.override(language):
        return [""] + [str(MONTHS_3[month]).title() for month in range(1, 13)]


def relative(value, now=None, local=None):
    now = now or timezone.now()
    delta = now - value
    if abs(delta) < JUST_NOW:
        return "just now"
    if timedelta(0) < delta < timedelta(days=RELATIVE_DAYS):
        return f"{timesince(value, now, depth=1)} ago"
    if timedelta(0) < -delta < timedelta(days=RELATIVE_DAYS):
        # timeuntil cuts: an invitation valid for 7 days, just sent, would be "in 6 days".
        # Half of the unit shown, added, makes the cut a rounding.
        return f"in {timeuntil(value, now - _half_unit(-delta), depth=1)}"
    return _day(local or timezone.localtime(value))


def _half_unit(ahead):
    if ahead >= timedelta(days=1):
        return timedelta(hours=12)
    if ahead >= timedelta(hours=1):
        return timedelta(minutes=30)
    return timedelta(seconds=30)


@register.simple_tag
def when(value, empty=""):
    if not value:
        return empty
    local = timezone.localtime(value)
    # format_html's escaping of the three, without its formatting machinery.
    return mark_safe(  # noqa: S308 - every value is escaped
        f'<time datetime="{escape(value.isoformat())}" title="{escape(_exact(local))}">'
        f"{escape(relative(value, local=local))}</time>"
    )

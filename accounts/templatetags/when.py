"""{% when value %}: a time as people read it in a list, "3 days ago", with the exact time in
the viewer's time zone on hover (the title) and in the datetime attribute (ISO, UTC) for
machines. Older than RELATIVE_DAYS it is a date: "3 months ago" says too little in a log.
{{ value|exact }}: the exact time alone, for where it is shown in full."""

from datetime import timedelta

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

register = template.Library()

RELATIVE_DAYS = 30
JUST_NOW = timedelta(minutes=1)


@register.filter
def exact(value):
    """ "Dec 2, 2026, 17:44:17 CET" in the viewer's time zone."""
    if not value:
        return ""
    return date_format(timezone.localtime(value), "M j, Y, H:i:s T")


def relative(value, now=None):
    now = now or timezone.now()
    delta = now - value
    if abs(delta) < JUST_NOW:
        return "just now"
    if timedelta(0) < delta < timedelta(days=RELATIVE_DAYS):
        return f"{timesince(value, now, depth=1)} ago"
    if timedelta(0) < -delta < timedelta(days=RELATIVE_DAYS):
        return f"in {timeuntil(value, now, depth=1)}"
    return date_format(timezone.localtime(value), "M j, Y")


@register.simple_tag
def when(value, empty=""):
    if not value:
        return empty
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact(value), relative(value)
    )

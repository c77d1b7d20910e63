"""Times in the console are shown in the viewer's time zone (`User.time_zone`, chosen on the
Time zone page; UTC until then). The middleware activates it for the request, so every `|date`
in a template and `timezone.localtime` in a view use it; the database and the logs stay in UTC."""

import zoneinfo
from functools import cache

from django.utils import timezone

DEFAULT = "UTC"


@cache
def choices():
    """Every IANA zone name this system knows, sorted, for the select."""
    return sorted(zoneinfo.available_timezones())


def zone(name):
    """The ZoneInfo for `name`, or None when it is no zone (a name the system dropped)."""
    if not name or name not in choices():
        return None
    return zoneinfo.ZoneInfo(name)


class ViewerTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        chosen = zone(user.time_zone) if user is not None and user.is_authenticated else None
        if chosen is None:
            timezone.deactivate()
        else:
            timezone.activate(chosen)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

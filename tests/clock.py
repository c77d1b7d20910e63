"""A clock the policy tests move: django.utils.timezone.now patched (every module calls it
through the module, and auto_now fields do too), so nothing sleeps."""

from datetime import timedelta


class Clock:
    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)
        return self.now

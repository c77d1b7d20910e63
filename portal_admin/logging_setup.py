"""Where a log line came from, and the JSON lines production writes (LOG_FORMAT=json).

A request (operations.request_context) or a Celery task binds a LogContext; the AddLogContext
filter copies it onto every record, so each line names its request id, the portal account's
slug, the actor and the action. JsonLines writes a record as one JSON object per line and blanks
portal link secrets in every field, not just the message: Django puts the request itself on its
records, and a path may sit in any extra."""

import contextvars
import logging
from dataclasses import dataclass, field

from django.utils.functional import empty
from pythonjsonlogger.json import JsonFormatter

from helpers.log_redaction import redact

FIELDS = ("request_id", "account", "actor", "action")


@dataclass
class LogContext:
    request_id: str = ""
    account: str = ""
    action: str = ""
    # The request, for its actor: known only once authentication has run, and read only if it
    # has (a log line must never be what loads a session).
    request: object = field(default=None, repr=False)
    actor: str = ""

    def actor_label(self):
        if self.actor:
            return self.actor
        return actor_of(self.request) if self.request is not None else ""


_current = contextvars.ContextVar("log_context", default=None)


def bind(context):
    """Make `context` the current one; returns the token `unbind` takes."""
    return _current.set(context)


def unbind(token):
    _current.reset(token)


def current():
    return _current.get()


def current_request_id():
    context = _current.get()
    return context.request_id if context is not None else ""


def actor_of(request):
    """`<kind>:<id>` of whoever the request acts for: an API token, or the signed-in person.
    An id rather than a name or an email: the audit log holds who that is."""
    token = getattr(request, "api_token", None)
    if token is not None:
        return f"api_token:{token.pk}"
    user = getattr(request, "user", None)
    if user is None or getattr(user, "_wrapped", None) is empty:
        return ""
    if not user.is_authenticated:
        return ""
    return f"{user.kind}:{user.pk}"


class OneLineForABadHost(logging.Filter):
    """A request for a host not in ALLOWED_HOSTS (a scanner, a stale DNS name) is logged by
    Django as an ERROR with a traceback: a log full of them hides the errors that matter. It
    is a WARNING of one line here; the 400 answered is in the request's own line too."""

    def filter(self, record):
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        return True


class AddLogContext(logging.Filter):
    def filter(self, record):
        context = _current.get()
        values = {
            "request_id": context.request_id if context else "",
            "account": context.account if context else "",
            "action": context.action if context else "",
            "actor": context.actor_label() if context else "",
        }
        for name in FIELDS:
            if not getattr(record, name, ""):
                setattr(record, name, values[name])
        return True


class JsonLines(JsonFormatter):
    """One JSON object per record: time (UTC), level, logger, message, the context, extras."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("fmt", ["levelname", "name", "message"])
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        super().__init__(*args, **kwargs)

    def process_log_record(self, log_data):
        # Django's request and runserver's socket: the context already says which request it
        # was, and their repr holds the full path.
        log_data.pop("request", None)
        log_data.pop("server_time", None)
        # The time first, as people read a line; a context a line has none of is left out.
        ordered = {"time": log_data.pop("time", None)}
        ordered.update(
            (key, value)
            for key, value in log_data.items()
            if not (key in FIELDS and value in ("", None))
        )
        return ordered

    def jsonify_log_record(self, log_data):
        return redact(super().jsonify_log_record(log_data))

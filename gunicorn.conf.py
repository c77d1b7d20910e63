"""gunicorn in production: `gunicorn -c gunicorn.conf.py portal_admin.wsgi` (see README).
Command-line flags and GUNICORN_CMD_ARGS still override what is set here."""

import os

# Sync workers: the console's requests are short database work. 2 x cores + 1 keeps the cores
# busy while some workers wait on PostgreSQL; WEB_CONCURRENCY (the usual name on PaaS hosts)
# sets the count outright, e.g. where memory, not CPU, is the limit.
_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * (_cores or 1) + 1))

# A worker silent this long is killed and replaced. The longest request is a users CSV
# export streamed in one go; GUNICORN_TIMEOUT raises it for very large accounts.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
# On a deploy or restart, requests in flight get this long to finish.
graceful_timeout = 30
# Replace each worker now and then, so a slow leak cannot grow without bound; the jitter keeps
# them from all restarting at once.
max_requests = 2000
max_requests_jitter = 200


def _django_log_format():
    # Django's settings decide (LOG_FORMAT: JSON unless DEBUG), read as the workers will.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal_admin.settings")
    from django.conf import settings

    return settings.LOG_FORMAT


# Access lines on stdout (the process manager or container runtime collects them), through a
# logger that blanks portal link secrets out of every field. The combined format plus the
# client address the proxy saw and the time taken. With JSON logs Django writes one line per
# request itself, with its request id, portal account, actor, client address and user agent
# (operations.middleware), so gunicorn's would only repeat it less well; its own lines are then
# JSON too (RedactingLogger).
logger_class = "portal_admin.gunicorn_logger.RedactingLogger"
accesslog = None if _django_log_format() == "json" else "-"
access_log_format = (
    '%(h)s "%({x-forwarded-for}i)s" %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'
)
errorlog = "-"

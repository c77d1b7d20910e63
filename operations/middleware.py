"""Two middlewares at the top of MIDDLEWARE (see settings).

MonitoringMiddleware answers /health/ and /metrics before anything else runs: load balancers
and Prometheus call them by the machine's address (ALLOWED_HOSTS would refuse it) over plain
HTTP (SECURE_SSL_REDIRECT would send them away), and they need no session, CSRF or tenant. Each
view checks its own access.

RequestContextMiddleware gives every other request an id (the proxy's X-Request-ID when it sent
a sane one, else a new one), sends it back in X-Request-ID, binds the log context (request id,
portal account slug, actor, action: portal_admin.logging_setup), records the request's duration
for /metrics and, with LOG_REQUESTS, logs one line per request: with JSON logs that line is the
access log, and gunicorn's own stays off (gunicorn.conf.py)."""

import logging
import re
import time
import uuid

from django.conf import settings

from helpers.client_ip import client_ip
from operations import metrics, views
from portal_admin import logging_setup

REQUEST_ID_HEADER = "X-Request-ID"
# Kept as the proxy sent it when it looks like an id: no spaces, quotes or line breaks to forge
# log lines with, and not so long it floods them.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,99}")
_MONITORING = {"/health/": views.liveness, "/metrics": views.metrics_endpoint}

request_log = logging.getLogger("portal_admin.requests")
USER_AGENT_CHARS = 200


class MonitoringMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = _MONITORING.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)


def _request_id(request):
    sent = request.headers.get(REQUEST_ID_HEADER, "")
    return sent if _SANE_ID.fullmatch(sent) else uuid.uuid4().hex


def _view_name(request):
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else "unresolved"


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = _request_id(request)
        context = logging_setup.LogContext(request_id=request.request_id, request=request)
        token = logging_setup.bind(context)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            view = _view_name(request)
            metrics.observe_request(view, request.method, response.status_code, seconds)
            response.headers[REQUEST_ID_HEADER] = request.request_id
            if settings.LOG_REQUESTS:
                request_log.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round(seconds * 1000, 1),
                        "view": view,
                        # What an access log says of the caller: the address behind the
                        # trusted proxies (as the audit log and the throttle see it).
                        "client_ip": client_ip(request),
                        "user_agent": request.headers.get("User-Agent", "")[:USER_AGENT_CHARS],
                    },
                )
            return response
        finally:
            logging_setup.unbind(token)

    def process_view(self, request, view_func, view_args, view_kwargs):
        context = logging_setup.current()
        if context is None:
            return None
        # Every <slug> in the URLs is a portal account's (console, portal and API alike).
        context.account = str(view_kwargs.get("slug", ""))
        action = _view_name(request)
        if "action" in view_kwargs:
            action += f":{view_kwargs['action']}"
        context.action = action
        return None

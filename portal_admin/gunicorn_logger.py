"""gunicorn's logger for production (gunicorn.conf.py names it): its access log must not hold
the secret of a portal link any more than Django's logs do, so it goes through the same
redaction as the LOGGING setting (helpers.log_redaction)."""

from gunicorn.glogging import Logger

from helpers.log_redaction import RedactPortalSecrets, redact
from portal_admin.logging_setup import JsonLines


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        # Every atom, not just the request line: the Referer of a page opened from a link, the
        # raw URI and the environ's PATH_INFO carry the same secret, and a log format may name
        # any of them.
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()
        }

    def setup(self, cfg):
        super().setup(cfg)
        # gunicorn's own error lines name the path too ("Error handling request /p/...").
        if not any(isinstance(f, RedactPortalSecrets) for f in self.error_log.filters):
            self.error_log.addFilter(RedactPortalSecrets())
        if _json_logs():
            # Its lines among Django's JSON ones. An access log asked for on the command line
            # keeps its configured format: that is what its access_log_format says.
            for handler in self.error_log.handlers:
                handler.setFormatter(JsonLines())


def _json_logs():
    from django.conf import settings

    return settings.LOG_FORMAT == "json"

"""No usable sign-in link reaches the logs: the handler blanks the secret in portal link paths."""

import io
import logging

from accounts.log_redaction import RedactPortalSecrets


def _logged(message, *args):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactPortalSecrets())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_dead_links_400_is_logged_without_its_secret():
    line = _logged("Bad Request: %s", "/p/acme/link/AbC-123_xyz/")

    assert line.strip() == "Bad Request: /p/acme/link/[secret]/"


def test_every_token_page_is_covered_and_other_paths_are_left_alone():
    for kind in ("activate", "reset", "link", "magic"):
        assert "s3cr3t" not in _logged('"GET /p/acme/%s/s3cr3t/ HTTP/1.1" 200', kind)
    assert _logged("Not Found: /p/acme/login/").strip() == "Not Found: /p/acme/login/"


def test_the_console_handler_of_the_settings_uses_the_filter():
    handlers = logging.getLogger().handlers
    assert any(isinstance(f, RedactPortalSecrets) for handler in handlers for f in handler.filters)

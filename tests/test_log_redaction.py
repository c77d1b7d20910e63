"""No usable sign-in link reaches the logs: the handler blanks the secret in portal link paths."""

import io
import logging

import pytest

from helpers.log_redaction import RedactPortalSecrets


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


def _handlers_reached_from(name):
    logger, handlers = logging.getLogger(name), []
    while logger:
        # pytest's own capturing handlers are not the project's output
        handlers += [h for h in logger.handlers if not type(h).__module__.startswith("_pytest")]
        logger = logger.parent if logger.propagate else None
    return handlers


@pytest.mark.parametrize("name", ["django.request", "django.server", "django", "accounts"])
def test_every_handler_a_log_line_reaches_redacts(name):
    handlers = _handlers_reached_from(name)

    assert handlers
    for handler in handlers:
        assert any(isinstance(f, RedactPortalSecrets) for f in handler.filters), handler

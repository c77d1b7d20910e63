"""No usable sign-in link reaches the logs: the handler blanks the secret in portal link paths."""

import copy
import io
import json
import logging
import logging.config

import pytest

from helpers.log_redaction import RedactPortalSecrets
from portal_admin.logging_setup import JsonLines


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


# --- JSON lines (LOG_FORMAT=json, production's default) ---


@pytest.fixture
def json_logging(settings):
    """Django's LOGGING as production runs it, its handlers writing to a string; the test's own
    configuration comes back after."""
    config = copy.deepcopy(settings.LOGGING)
    config["handlers"]["console"]["formatter"] = "json"
    config["handlers"]["django.server"]["formatter"] = "json"
    # The handlers dictConfig makes again at the end would write to sys.stderr as it is during
    # this test (pytest's capture of it), not where the suite's handlers wrote: they get the
    # suite's streams back.
    streams = {name: getattr(h, "stream", None) for name, h in logging._handlers.items()}
    logging.config.dictConfig(config)
    stream = io.StringIO()
    for handler in {
        h for name in ("django.request", "accounts") for h in _handlers_reached_from(name)
    }:
        handler.setStream(stream)
    try:
        yield stream
    finally:
        logging.config.dictConfig(settings.LOGGING)
        for name, handler in logging._handlers.items():
            if streams.get(name) is not None and isinstance(handler, logging.StreamHandler):
                handler.setStream(streams[name])


@pytest.mark.parametrize("name", ["django.request", "django.server", "django", "accounts"])
def test_every_json_handler_a_log_line_reaches_redacts(json_logging, name):
    handlers = _handlers_reached_from(name)

    assert handlers
    for handler in handlers:
        assert isinstance(handler.formatter, JsonLines), handler
        assert any(isinstance(f, RedactPortalSecrets) for f in handler.filters), handler


def test_a_json_line_holds_no_secret_in_any_field(json_logging, rf):
    request = rf.get("/p/acme/magic/s3cr3t-m4gic/")
    try:
        raise ValueError("bad link /p/acme/reset/s3cr3t-r3set/")
    except ValueError:
        logging.getLogger("django.request").exception(
            "Bad Request: %s",
            request.path,
            extra={"request": request, "status_code": 400, "path": "/p/acme/link/s3cr3t-l1nk/"},
        )

    [line] = json_logging.getvalue().splitlines()
    record = json.loads(line)
    assert "s3cr3t" not in line
    assert record["message"] == "Bad Request: /p/acme/magic/[secret]/"
    assert record["path"] == "/p/acme/link/[secret]/"
    assert "/p/acme/reset/[secret]/" in record["exc_info"]
    assert record["level"] == "ERROR"
    assert record["status_code"] == 400


def test_gunicorn_writes_its_own_lines_as_json_through_the_same_filter(settings):
    from gunicorn.config import Config

    from portal_admin.gunicorn_logger import RedactingLogger

    settings.LOG_FORMAT = "json"
    logger = RedactingLogger(Config())
    stream = io.StringIO()
    for handler in logger.error_log.handlers:
        handler.setStream(stream)

    logger.error("Error handling request %s", "/p/acme/activate/s3cr3t/")

    record = json.loads(stream.getvalue())
    assert record["message"] == "Error handling request /p/acme/activate/[secret]/"
    assert any(isinstance(f, RedactPortalSecrets) for f in logger.error_log.filters)


def test_a_request_for_a_host_not_allowed_is_one_warning_line(client):
    """A scanner's bad Host headers must not fill the log with ERROR tracebacks."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("django.security.DisallowedHost")
    logger.addHandler(handler)
    try:
        response = client.get("/sign-in/", HTTP_HOST="scanner.invalid")
    finally:
        logger.removeHandler(handler)

    assert response.status_code == 400
    [record] = records
    assert (record.levelname, record.exc_info) == ("WARNING", None)
    assert "scanner.invalid" in record.getMessage()

"""Loaded by pytest before Django (see addopts in pyproject.toml): tests run with production-like
settings (DEBUG off) and only need a throwaway key and plain HTTP.

Compiled modules are kept between runs (__pycache__, ignored by git) even where the environment
says PYTHONDONTWRITEBYTECODE: each pytest process compiled the project, its tests and their
assertion rewriting again, about 5 s of CPU each (three processes for `run.py test`)."""

import logging
import os
import sys

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
sys.dont_write_bytecode = False

# aiosmtpd (the tests' SMTP servers) logs every connection at INFO from its own thread, which
# can outlive the test that started it; pytest has closed that test's captured stream by then,
# and logging printed a "--- Logging error ---" traceback into the run's output instead.
logging.getLogger("mail.log").setLevel(logging.WARNING)

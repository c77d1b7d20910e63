"""Loaded by pytest before Django (see addopts in pyproject.toml): tests run with production-like
settings (DEBUG off) and only need a throwaway key and plain HTTP."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")

import os

# Tests run with production-like settings (DEBUG off); they only need a throwaway key.
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")

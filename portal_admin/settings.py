"""Settings for Portal Admin: every deploy-specific value comes from the environment."""

import ipaddress
import logging
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=true for a local demo).")
    SECRET_KEY = "insecure-local-demo-key-never-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "portal_admin.support_admin_config.SupportAdminConfig",  # django.contrib.admin
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "accounts",
    "contacts",
    "imports",
    "api",
    "mail",
    "portal",
    "operations",
    "webhooks",
]

MIDDLEWARE = [
    # /health/ and /metrics first: no host check, redirect, session or CSRF (operations.middleware).
    "operations.middleware.MonitoringMiddleware",
    # The request id, log context and request metrics cover everything below.
    "operations.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal_admin.security_headers.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.time_zones.ViewerTimeZoneMiddleware",
    "portal_admin.security_headers.NoStoreWhenSignedInMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.console_sessions.ConsoleSessionMiddleware",
    "accounts.portal_sessions.PortalSessionMiddleware",
]

ROOT_URLCONF = "portal_admin.urls"
# Files are taken only by the views that ask for them (helpers/file_uploads.py).
FILE_UPLOAD_HANDLERS = [
    "helpers.file_uploads.RefuseFiles",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
WSGI_APPLICATION = "portal_admin.wsgi.application"
# A bulk action on the users page takes at most this many users. Its POST carries one field per
# user, and Django refuses a body of more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields (1,000 by
# default: 1,000 ids were refused) before any view runs, so both come from this one number.
BULK_ACTION_MAX_USERS = 1000
DATA_UPLOAD_MAX_NUMBER_FIELDS = BULK_ACTION_MAX_USERS + 100  # the form's other fields
# "Enable as portal users" on the contacts page creates each user in its own transaction within
# the request, so it takes fewer at a time; the CSV import (a background task) takes thousands.
BULK_ENABLE_MAX_CONTACTS = 200

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.demo_mail",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if "ENGINE" not in DATABASES["default"]:  # django-environ's answer to a URL it cannot read
    raise ImproperlyConfigured(
        "DATABASE_URL is not a database URL. Write it as "
        "postgres://USER:PASSWORD@HOST:5432/NAME (or leave it out for the demo's SQLite file)."
    )
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Short OLTP queries: PostgreSQL's JIT compiler spent 400 ms compiling a 1 ms page query
    # of the users list (bench/users_page.py), so it is off. So are parallel workers by
    # default: for a page's LIMIT 50 they read ahead in every worker (the CRM-account filter
    # read 23,000 users in three processes, 96 ms, where one reads 2,100 in 34), and under load
    # each query would take two more processes from the machine's cores.
    # Connections kept open between requests (gunicorn's sync workers: one each), checked
    # before reuse. A new connection per request cost a PostgreSQL backend's start, its
    # sign-in and a cold catalog cache: about as much database CPU as the page's queries
    # themselves (bench/console_requests.py). 0 connects per request again.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    parallel = env.int("DATABASE_PARALLEL_WORKERS_PER_QUERY", default=0)
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c jit=off -c max_parallel_workers_per_gather={parallel}"
    )
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL and a busy timeout keep the embedded demo usable when the eager "worker" writes too.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.ConsoleBackend", "accounts.backends.PortalBackend"]
SILENCED_SYSTEM_CHECKS = [
    # Email is unique per portal account, not globally, so the username field cannot be unique;
    # the auth backends resolve the ambiguity by scope.
    "auth.W004",
    # Joining the browsers' HSTS preload list binds the whole domain; the operator opts in with
    # SECURE_HSTS_PRELOAD=true, it is not a default we can choose for them.
    "security.W021",
    # Only SQLite says this: it ignores an index's INCLUDE columns, which serve PostgreSQL's
    # index-only scans of the users page; the index still works without them.
    "models.W040",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")

# --- Security (production defaults; the local demo runs with DEBUG=true over plain HTTP) ---
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many proxies (load balancer, nginx…) stand in front and append to X-Forwarded-For; the
# client's address for the audit log and throttling is read that many entries from the right.
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=0)
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 60 * 60)
# Every script and stylesheet is a file under static/: no inline <script>, style="" or on*=
# handler, and htmx runs with allowEval off (its config is in templates/base.html), so a
# string injected into a page cannot run. frame-ancestors repeats X-Frame-Options for browsers
# that read only CSP.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF],
        "style-src": [CSP_SELF],
        "img-src": [CSP_SELF, "data:"],
        "font-src": [CSP_SELF],
        "connect-src": [CSP_SELF],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_NONE],
        "frame-ancestors": [CSP_NONE],
        "form-action": [CSP_SELF],
    }
}

# --- Console sessions and sign-in throttling ---
# A second factor (accounts/two_factor.py): MSSP staff must have one unless this is off; an
# account's admin when the account's policy says so. Dangerous actions ask for a code again
# when the last one is older than TWO_FACTOR_STEP_UP_MINUTES.
TWO_FACTOR_REQUIRED_FOR_MSSP_STAFF = env.bool("TWO_FACTOR_REQUIRED_FOR_MSSP_STAFF", default=True)
TWO_FACTOR_STEP_UP_MINUTES = env.int("TWO_FACTOR_STEP_UP_MINUTES", default=10)
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default="Portal Admin")
CONSOLE_IDLE_TIMEOUT_MINUTES = env.int("CONSOLE_IDLE_TIMEOUT_MINUTES", default=30)
CONSOLE_MAX_SESSION_HOURS = env.int("CONSOLE_MAX_SESSION_HOURS", default=12)
# Portal sessions end after this long without a request (accounts/portal_sessions.py).
PORTAL_IDLE_TIMEOUT_MINUTES = env.int("PORTAL_IDLE_TIMEOUT_MINUTES", default=30)
# One throttle for every sign-in door (accounts/sign_in_guard.py): after SIGN_IN_MAX_FAILURES
# wrong passwords or codes for one identity, a wait of SIGN_IN_LOCKOUT_SECONDS that doubles with
# each further failure (at most SIGN_IN_LOCKOUT_MAX_SECONDS). Per IP the limit is far higher: an
# office behind one NAT shares it. Counts are forgotten a window after the last lock ends.
SIGN_IN_MAX_FAILURES = env.int("SIGN_IN_MAX_FAILURES", default=5)
SIGN_IN_MAX_FAILURES_PER_IP = env.int("SIGN_IN_MAX_FAILURES_PER_IP", default=100)
SIGN_IN_LOCKOUT_SECONDS = env.int("SIGN_IN_LOCKOUT_SECONDS", default=60)
SIGN_IN_LOCKOUT_MAX_SECONDS = env.int("SIGN_IN_LOCKOUT_MAX_SECONDS", default=60 * 60)
SIGN_IN_FAILURE_WINDOW_MINUTES = env.int("SIGN_IN_FAILURE_WINDOW_MINUTES", default=15)
# Failure counters live here; a per-process memory cache only suits a single-process demo.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# A hung Redis (stopped, not refusing connections) answers nothing: without a timeout a cache
# call, or handing a task to the broker, waited 5 s and more, and the pages behind it queued up.
REDIS_TIMEOUT_SECONDS = env.float("REDIS_TIMEOUT_SECONDS", default=0.3)
if CACHES["default"]["BACKEND"].endswith("RedisCache"):
    CACHES["default"].setdefault("OPTIONS", {}).update(
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
    )

# --- Email and the outbox ---
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    default="mail.mail_folder.MailFolderBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
MAIL_FOLDER = env.path("MAIL_FOLDER", default=BASE_DIR / "var" / "mail")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Portal Admin <no-reply@localhost>")
# Links in emails must be absolute; the sender has no request to build them from.
PORTAL_BASE_URL = env("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# The DNS records a portal account's owner publishes to send from their own domain
# (mail.sender_identity): what the MSSP's mail servers' SPF record is called, and where the
# DKIM key the MSSP signs with lives ({selector} and {domain} are filled in).
_mail_host = urlsplit(PORTAL_BASE_URL).hostname or "localhost"
MAIL_SPF_INCLUDE = env("MAIL_SPF_INCLUDE", default=f"_spf.{_mail_host}")
MAIL_DKIM_SELECTOR = env("MAIL_DKIM_SELECTOR", default="portaladmin")
MAIL_DKIM_CNAME_TARGET = env(
    "MAIL_DKIM_CNAME_TARGET", default=f"{{selector}}._domainkey.{_mail_host}"
)
# A row still unsent this long after it was queued is handed to Celery again by the sweep.
OUTBOX_REQUEUE_AFTER = timedelta(seconds=env.int("OUTBOX_REQUEUE_AFTER_SECONDS", default=600))
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=8)
OUTBOX_RETRY_BASE_SECONDS = env.int("OUTBOX_RETRY_BASE_SECONDS", default=30)
# Workers claim due rows in batches of this many and send them over one mail server session
# (mail/batches.py); off, each row has a Celery task of its own (the bench's baseline).
OUTBOX_SEND_IN_BATCHES = env.bool("OUTBOX_SEND_IN_BATCHES", default=True)
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", default=100)
# A claimed row is left to its worker this long; a worker killed mid-batch leaves the rest of
# its batch to be taken again after it. Longer than a batch takes to send.
OUTBOX_CLAIM_SECONDS = env.int("OUTBOX_CLAIM_SECONDS", default=120)
# A worker claims a lane's next batch while it sends a full one (mail.batches.ClaimAhead, on
# PostgreSQL): the claim no longer holds up the mail server. Off, one claim after the other.
OUTBOX_CLAIM_AHEAD = env.bool("OUTBOX_CLAIM_AHEAD", default=True)
# A drain hands the rest of a backlog to a fresh task after this long, so that the worker runs
# other tasks in between.
OUTBOX_DRAIN_SECONDS = env.float("OUTBOX_DRAIN_SECONDS", default=5.0)

# --- CSV imports ---
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_MEGABYTES", default=50) * 1024 * 1024
# A header wider than this is refused at upload: the mapping page lists every column once per
# field, so 170,000 columns made a 40 MB page.
IMPORT_MAX_COLUMNS = env.int("IMPORT_MAX_COLUMNS", default=200)
# Uploaded files and result files hold people's data: deleted this long after the import ended
# (imports.tasks.delete_expired_import_files); the job's row and counts stay.
IMPORT_FILE_RETENTION_DAYS = env.int("IMPORT_FILE_RETENTION_DAYS", default=90)
# A running import whose progress is older than this has stalled (its worker was killed, or its
# task was lost with the broker): imports.tasks.resume_stalled_imports hands it to a worker
# again, which resumes after the last committed row. Half of it bounds how long a batch's
# transaction may hang on a paused worker (its locks would hold the resumed run up).
IMPORT_STALL_MINUTES = env.float("IMPORT_STALL_MINUTES", default=3)
# Rows per batch of an import run by the worker; 0: each import's own (5,000 portal users,
# 500 contacts).
IMPORT_BATCH_SIZE = env.int("IMPORT_BATCH_SIZE", default=0)
# An import reads, looks up and checks its next batch in a thread while the current one is
# written (imports.read_ahead, on PostgreSQL). Off, one after the other.
IMPORT_READ_AHEAD = env.bool("IMPORT_READ_AHEAD", default=True)

# --- Login tokens ---
TOKEN_LIFETIMES = {
    "activation": timedelta(days=env.int("INVITATION_LIFETIME_DAYS", default=7)),
    "password_reset": timedelta(hours=env.int("PASSWORD_RESET_LIFETIME_HOURS", default=24)),
    "magic_link": timedelta(minutes=env.int("MAGIC_LINK_LIFETIME_MINUTES", default=15)),
    "login_email": timedelta(minutes=env.int("LOGIN_EMAIL_LIFETIME_MINUTES", default=15)),
    "login_code": timedelta(minutes=env.int("LOGIN_CODE_LIFETIME_MINUTES", default=10)),
    "email_change": timedelta(days=env.int("EMAIL_CHANGE_LIFETIME_DAYS", default=3)),
}
LOGIN_CODE_MAX_ATTEMPTS = env.int("LOGIN_CODE_MAX_ATTEMPTS", default=5)

# --- Retention (operations/retention.py, applied daily by beat and by manage.py apply_retention)
# Login tokens are deleted this long after they expired (used, revoked or not): a dead token
# is only history, and a token's expiry is at most its lifetime after its use.
LOGIN_TOKEN_RETENTION_DAYS = env.int("LOGIN_TOKEN_RETENTION_DAYS", default=30)
# Sent, cancelled and failed emails (addresses, subjects) this long after they were written;
# a pending email is never deleted.
OUTBOX_RETENTION_DAYS = env.int("OUTBOX_RETENTION_DAYS", default=90)
# The audit log is evidence: kept for ever unless this is set (days).
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=None)

# --- Portal brute-force limits (per portal account + email, and per IP, in the cache) ---
PORTAL_LINK_REQUESTS_MAX = env.int("PORTAL_LINK_REQUESTS_MAX", default=5)
PORTAL_LINK_REQUESTS_MAX_PER_IP = env.int("PORTAL_LINK_REQUESTS_MAX_PER_IP", default=100)
PORTAL_THROTTLE_WINDOW_MINUTES = env.int("PORTAL_THROTTLE_WINDOW_MINUTES", default=15)
# Emails that console admins and API tokens may have sent to one user within an hour (resets,
# reinvitations, login emails and codes, an enable's email): accounts/email_allowance.py.
EMAILS_ASKED_FOR_PER_ADDRESS_PER_HOUR = env.int("EMAILS_ASKED_FOR_PER_ADDRESS_PER_HOUR", default=10)

# --- Outbox sending pace: at most this many emails a minute per portal account, so a large
# import or bulk action is spread out instead of burning the sender's reputation ---
OUTBOX_RATE_PER_ACCOUNT_PER_MINUTE = env.int("OUTBOX_RATE_PER_ACCOUNT_PER_MINUTE", default=120)

# --- Webhooks (webhooks/): per-account endpoints told of every change ---
# Loopback and private networks as targets: tests and development only (webhooks.W001).
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", default=False)
# Connect and each read: a slow receiver must not hold a worker.
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=5.0)
# A failed attempt is tried again after base * 2^(attempts - 1) seconds, at most the max;
# 8 attempts from 60 s span about 2 hours.
WEBHOOKS_MAX_ATTEMPTS = env.int("WEBHOOKS_MAX_ATTEMPTS", default=8)
WEBHOOKS_RETRY_BASE_SECONDS = max(env.int("WEBHOOKS_RETRY_BASE_SECONDS", default=60), 1)
WEBHOOKS_RETRY_MAX_SECONDS = env.int("WEBHOOKS_RETRY_MAX_SECONDS", default=6 * 60 * 60)
# A claimed delivery is left to its worker this long (longer than an attempt can take).
WEBHOOKS_CLAIM_SECONDS = env.int("WEBHOOKS_CLAIM_SECONDS", default=120)
WEBHOOKS_RETENTION_DAYS = env.int("WEBHOOKS_RETENTION_DAYS", default=30)

# --- Celery ---
# With no broker configured (the embedded default) tasks run in-process, so the demo needs
# neither Redis nor a worker.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    # With its host named: kombu warns "No hostname was supplied" wherever it reads a bare one.
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=3.0)
# A dead or hung broker must never hold a page: publishing tries once, for at most
# REDIS_TIMEOUT_SECONDS, and what could not be handed over waits for the sweeps (the outbox
# row stays pending). No retry: redis-py already reconnects a pooled connection that a broker
# restart dropped, so a retry only doubled the wait on a hung broker (and a broker that failed
# moments ago is not tried again at all: portal_admin/celery.py).
CELERY_TASK_PUBLISH_RETRY = False
# A worker outlives any broker outage: it reconnects for ever (Celery's default gives up after
# 100 attempts, about 45 minutes, and the worker exits), also when the broker is down at start.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# visibility_timeout: emails deferred by the per-account pace may wait hours behind a large
# import; Redis would otherwise hand them out again after one hour (harmless, but wasteful).
# max_retries: connecting to publish is tried once (the worker's own reconnecting is above).
# queue_order_strategy: a worker consuming several queues takes from the first non-empty one in
# the order of CELERY_TASK_QUEUES (or of -Q), not in turn.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 6 * 60 * 60,
    "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
    "socket_timeout": REDIS_TIMEOUT_SECONDS,
    "max_retries": 0,
    "queue_order_strategy": "priority",
}
# Queues, most urgent first: a person waiting for a login link, code or reset must not wait
# behind an import or a bulk invitation's 1,000 emails (a requeued import waited 50 s behind
# 1,100 email tasks, the sweep 2 minutes). The plain `celery -A portal_admin worker` consumes
# them all in this order; dedicated workers take -Q (README, Production).
CELERY_TASK_QUEUES = [
    Queue(name) for name in ("urgent", "maintenance", "imports", "celery", "bulk")
]
CELERY_TASK_DEFAULT_QUEUE = "celery"
# The queue of an outbox email is picked from its kind when it is handed over (mail/tasks.py);
# the route below is for a task queued otherwise. Exact names win over patterns.
CELERY_TASK_ROUTES = {
    "mail.tasks.send_outbox_email": {"queue": "urgent"},
    "mail.tasks.send_due_emails": {"queue": "urgent"},
    # Someone waits for it in their inbox, like a sign-in link.
    "mail.sample_emails.send_sample_email": {"queue": "urgent"},
    "portal.tasks.*": {"queue": "urgent"},
    "mail.tasks.hand_out_emails": {"queue": "bulk"},
    "mail.tasks.requeue_unsent_emails": {"queue": "maintenance"},
    "imports.tasks.resume_stalled_imports": {"queue": "maintenance"},
    "imports.tasks.delete_expired_import_files": {"queue": "maintenance"},
    "operations.tasks.*": {"queue": "maintenance"},
    "imports.tasks.*": {"queue": "imports"},
    "webhooks.tasks.sweep_webhooks": {"queue": "maintenance"},
    "webhooks.tasks.delete_old_deliveries": {"queue": "maintenance"},
}
CELERY_BEAT_SCHEDULE = {
    "requeue-unsent-outbox": {
        "task": "mail.tasks.requeue_unsent_emails",
        "schedule": env.int("OUTBOX_SWEEP_EVERY_SECONDS", default=300),
    },
    "delete-expired-import-files": {
        "task": "imports.tasks.delete_expired_import_files",
        "schedule": 60 * 60,  # idempotent and cheap; hourly keeps files at most an hour late
    },
    "resume-stalled-imports": {
        "task": "imports.tasks.resume_stalled_imports",
        "schedule": env.int("IMPORT_STALL_SWEEP_SECONDS", default=60),
    },
    # The access policies (accounts/tasks.py): each idempotent and a range of an index per
    # account, so hourly costs little; a policy acts at most an hour late.
    "send-invitation-reminders": {
        "task": "accounts.tasks.send_invitation_reminders",
        "schedule": env.int("POLICY_SWEEP_EVERY_SECONDS", default=60 * 60),
    },
    "end-expired-access": {
        "task": "accounts.tasks.end_expired_access",
        "schedule": env.int("POLICY_SWEEP_EVERY_SECONDS", default=60 * 60),
    },
    "apply-inactivity-policies": {
        "task": "accounts.tasks.apply_inactivity_policies",
        "schedule": env.int("POLICY_SWEEP_EVERY_SECONDS", default=60 * 60),
    },
    "sweep-webhooks": {
        "task": "webhooks.tasks.sweep_webhooks",
        "schedule": env.int("WEBHOOKS_SWEEP_EVERY_SECONDS", default=30),
    },
    "delete-old-webhook-deliveries": {
        "task": "webhooks.tasks.delete_old_deliveries",
        "schedule": 24 * 60 * 60,
    },
    "apply-retention": {
        "task": "operations.tasks.apply_retention",
        "schedule": 24 * 60 * 60,  # idempotent; days are the settings' unit, so daily suffices
    },
}

# --- Health, metrics and logs (operations/) ---
# /health/ready/ and the System page call a worker or beat dead once silent this long (a worker
# writes its heartbeat every 10 s, beat every 30 s), and the outbox late once its oldest waiting
# email is this old.
HEALTH_WORKER_MAX_AGE_SECONDS = env.int("HEALTH_WORKER_MAX_AGE_SECONDS", default=60)
HEALTH_BEAT_MAX_AGE_SECONDS = env.int("HEALTH_BEAT_MAX_AGE_SECONDS", default=120)
HEALTH_OUTBOX_MAX_AGE_MINUTES = env.int("HEALTH_OUTBOX_MAX_AGE_MINUTES", default=30)
# /metrics answers a bearer token of this value or an address in METRICS_ALLOWED_IPS (addresses
# or networks, read like the audit log's client address: TRUSTED_PROXY_HOPS); /health/ready/
# shows each check's answer to the token too. Empty: neither.
MONITORING_TOKEN = env("MONITORING_TOKEN", default="")
METRICS_ALLOWED_IPS = [
    ipaddress.ip_network(net, strict=False) for net in env.list("METRICS_ALLOWED_IPS", default=[])
]
# The load balancer's probe of /health/ready/ may come over plain HTTP (/health/ and /metrics are
# answered before the redirect anyway).
SECURE_REDIRECT_EXEMPT = [r"^health/"]
# "json": one JSON object per line, with the request id, portal account, actor and action
# (portal_admin/logging_setup.py); production's default. "text": the message alone.
LOG_FORMAT = env("LOG_FORMAT", default="text" if DEBUG else "json")
# One line per request from Django (operations.middleware): with JSON logs it replaces gunicorn's
# access log, which knows neither the request id nor the account.
LOG_REQUESTS = env.bool("LOG_REQUESTS", default=LOG_FORMAT == "json")

# Python's warnings (Celery's about running as root, a library's deprecation) go through
# logging, as JSON lines like the rest, instead of plain text on stderr between them.
logging.captureWarnings(True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "portal_secrets": {"()": "helpers.log_redaction.RedactPortalSecrets"},
        "log_context": {"()": "portal_admin.logging_setup.AddLogContext"},
        "one_line_for_a_bad_host": {"()": "portal_admin.logging_setup.OneLineForABadHost"},
    },
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
        "json": {"()": "portal_admin.logging_setup.JsonLines"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["log_context", "portal_secrets"],
            **({"formatter": "json"} if LOG_FORMAT == "json" else {}),
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "django.server",
            "filters": ["log_context", "portal_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # One line per task is worker noise in the web process when tasks run eagerly.
    # Django's own loggers get the filtered handlers instead of its defaults: they log request
    # paths, and a portal link's path holds its secret.
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "django.security.DisallowedHost": {
            "handlers": ["console"],
            "filters": ["one_line_for_a_bad_host"],
            "propagate": False,
        },
        "celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"},
        # "Task ... received": the line of its end says it again, with how long it took. A paced
        # outbox wakes a task for each email, and each wrote both lines.
        "celery.worker.strategy": {"level": env("CELERY_RECEIVED_LOG_LEVEL", default="WARNING")},
    },
}

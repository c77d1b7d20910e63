"""Creating and revoking a portal account's API tokens: each one transaction with its audit
event."""

import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import audit
from accounts.errors import LifecycleError
from api.models import ApiToken, token_hash

# A token is a long-lived secret in a connector's settings: an expiry further out than this is
# as good as none, and "never" says so honestly.
MAX_YEARS_AHEAD = 2


def latest_expiry_date(today=None):
    today = today or timezone.localdate()
    try:
        return today.replace(year=today.year + MAX_YEARS_AHEAD)
    except ValueError:  # 29 February
        return today.replace(year=today.year + MAX_YEARS_AHEAD, day=28)


def expiry_on(date):
    """The moment a token set to expire on `date` stops working (00:00 that day, in the
    console's time zone); LifecycleError for a date that is not after today or too far."""
    today = timezone.localdate()
    if date <= today:
        raise LifecycleError(
            "Pick an expiry date after today, or leave it empty for a token that never expires."
        )
    latest = latest_expiry_date(today)
    if date > latest:
        raise LifecycleError(
            f"Pick an expiry date at most {MAX_YEARS_AHEAD} years ahead: {latest:%Y-%m-%d} at "
            "the latest, or leave it empty for a token that never expires."
        )
    midnight = datetime.time.min.replace(tzinfo=timezone.get_current_timezone())
    return datetime.datetime.combine(date, midnight)


@transaction.atomic
def create_token(portal_account, name, *, by, ip=None, scope=ApiToken.Scope.FULL, expires_at=None):
    """Returns (token, secret): the secret exists in clear only here, to be shown once.
    `expires_at` None: the token never expires."""
    name = (name or "").strip()
    if not name:
        raise LifecycleError("Name the token after what will use it, e.g. 'Salesforce sync'.")
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise LifecycleError("Keep the token's name to 100 characters.")
    if scope not in ApiToken.Scope.values:
        raise LifecycleError("Pick what the token may do: sync, read or full.")
    if expires_at is not None and expires_at <= timezone.now():
        raise LifecycleError("Pick an expiry after now, or none for a token that never expires.")
    if portal_account.api_tokens.live().filter(name=name).exists():
        raise LifecycleError(f"A token named '{name}' already exists. Pick another name.")
    secret = ApiToken.new_secret()
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(
                portal_account=portal_account,
                name=name,
                token_hash=token_hash(secret),
                hint=secret[:8],
                created_by=by,
                scope=scope,
                expires_at=expires_at,
            )
    except IntegrityError:  # the same name created at the same moment
        raise LifecycleError(f"A token named '{name}' already exists. Pick another name.") from None
    audit.record(
        "create_api_token",
        by=by,
        portal_account=portal_account,
        ip=ip,
        detail=token.name,
        after={
            "scope": token.scope,
            "expires_at": expires_at.isoformat() if expires_at else "never",
        },
    )
    return token, secret


@transaction.atomic
def revoke_token(token, *, by, ip=None):
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.is_revoked:
        raise LifecycleError(f"{token} was already revoked.")
    token.revoked_at = timezone.now()
    token.revoked_by = by
    token.save(update_fields=["revoked_at", "revoked_by"])
    audit.record(
        "revoke_api_token",
        by=by,
        portal_account=token.portal_account,
        ip=ip,
        detail=token.name,
    )
    return token

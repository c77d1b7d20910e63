"""Login tokens: random secrets handed to a person once, stored only as a keyed hash."""

import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.errors import InvalidToken
from accounts.models import LoginToken, TokenPurpose


def _digest(secret):
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def _code_secret(user_id, code):
    # Six digits are too few to be unique across users, so a code's hash is bound to its user.
    return f"code:{user_id}:{code}"


def revoke(user, purposes=None):
    """Kill every live token of the user (of the given purposes); returns how many."""
    tokens = LoginToken.objects.filter(user=user, used_at__isnull=True, revoked_at__isnull=True)
    if purposes is not None:
        tokens = tokens.filter(purpose__in=purposes)
    return tokens.update(revoked_at=timezone.now())


def _create(user, purpose, secret, *, target="", by=None):
    revoke(user, [purpose])
    return LoginToken.objects.create(
        user=user,
        purpose=purpose,
        token_hash=_digest(secret),
        target=target,
        created_by=by,
        expires_at=timezone.now() + settings.TOKEN_LIFETIMES[purpose],
    )


def issue(user, purpose, *, target="", by=None):
    """Create a token and return its secret, the only time it exists in clear.
    Issuing a token kills the user's older ones of the same purpose."""
    return issue_token(user, purpose, target=target, by=by).secret


def issue_token(user, purpose, *, target="", by=None):
    """`issue`, returning the token row (its expiry, its target) with `.secret` attached."""
    if purpose == TokenPurpose.LOGIN_CODE:
        raise ValueError("Use issue_code() for one-time codes.")
    secret = secrets.token_urlsafe(32)
    token = _create(user, purpose, secret, target=target, by=by)
    token.secret = secret
    return token


def issue_code(user):
    code = f"{secrets.randbelow(10**6):06d}"
    _create(user, TokenPurpose.LOGIN_CODE, _code_secret(user.pk, code))
    return code


def _use(token):
    updated = LoginToken.objects.filter(pk=token.pk, used_at__isnull=True).update(
        used_at=timezone.now()
    )
    if not updated:  # somebody else redeemed it between our read and this write
        raise InvalidToken("This link has already been used.")
    token.used_at = timezone.now()
    return token


def peek(secret, purpose, portal_account):
    """The live token for a secret, without using it (to show a confirm page)."""
    token = (
        LoginToken.objects.select_related("user")
        .filter(token_hash=_digest(secret or ""), purpose=purpose)
        .first()
    )
    if token is None or token.user.portal_account_id != portal_account.pk:
        raise InvalidToken("This link is not valid.")
    if token.used_at is not None:
        raise InvalidToken("This link has already been used.")
    if token.revoked_at is not None:
        raise InvalidToken("This link was replaced by a newer one or withdrawn.")
    if token.expires_at <= timezone.now():
        raise InvalidToken("This link has expired.")
    return token


@transaction.atomic
def redeem(secret, purpose, portal_account):
    """Use a token once. Returns the LoginToken (with .user and .target)."""
    return _use(peek(secret, purpose, portal_account))


def redeem_code(user, code):
    # The failed attempt must be saved even though the caller gets an exception, so the
    # raise happens after the transaction has committed the counter.
    with transaction.atomic():
        token = (
            LoginToken.objects.select_for_update()
            .filter(
                user=user,
                purpose=TokenPurpose.LOGIN_CODE,
                used_at__isnull=True,
                revoked_at__isnull=True,
                expires_at__gt=timezone.now(),
            )
            .first()
        )
        if token is None:
            raise InvalidToken("This code has expired. Ask for a new one.")
        if hmac.compare_digest(token.token_hash, _digest(_code_secret(user.pk, code.strip()))):
            return _use(token)
        token.failed_attempts += 1
        if token.failed_attempts >= settings.LOGIN_CODE_MAX_ATTEMPTS:
            token.revoked_at = timezone.now()
        token.save(update_fields=["failed_attempts", "revoked_at"])
    raise InvalidToken("That code is not right.")

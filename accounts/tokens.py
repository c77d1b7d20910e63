"""Login tokens: secrets handed to a person once, stored only as a keyed hash. A token an admin
hands over (a magic link) is random; a token an email carries is derived from that email and a
server secret, so that the email sent again carries the same link (issue_for_email)."""

import base64
import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts import link_lifetimes
from accounts.errors import InvalidToken
from accounts.models import LoginToken, TokenPurpose
from helpers.bulk_sql import any_of, insert_new


def _digest(secret):
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def _code_secret(user_id, code, outbox_email_id=None):
    # Six digits are too few to be unique across users, so a code's hash is bound to its user,
    # and to its email: two emails may derive the same six digits, and the hash is unique.
    if outbox_email_id is None:
        return f"code:{user_id}:{code}"
    return f"code:{user_id}:{outbox_email_id}:{code}"


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
        expires_at=timezone.now() + link_lifetimes.lifetime(user.portal_account_id, purpose),
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


def _email_key(email, purpose):
    # The row's creation time as well as its id: ids come round again after a database is
    # restored from an older backup, and an old email's link must not open a new token.
    value = f"{email.pk}:{email.created_at.isoformat()}:{purpose}"
    return salted_hmac("accounts.tokens.issue_for_email", value, algorithm="sha256").digest()


def issue_for_email(email, purpose):
    """The secret of the link that the outbox email `email` carries. Sending the email is at
    least once: a worker killed after the mail server took the message, before the row was
    marked sent, sends it again. So the secret is the same on every attempt, and an attempt
    neither kills the token of an earlier one nor adds a second: the person may open either
    copy. A newer email of the purpose still kills this one's link."""
    if purpose == TokenPurpose.LOGIN_CODE:
        raise ValueError("Use issue_code_for_email() for one-time codes.")
    secret = base64.urlsafe_b64encode(_email_key(email, purpose)).rstrip(b"=").decode()
    _create_for_email(email, purpose, _digest(secret))
    return secret


def issue_code_for_email(email):
    """The one-time code that the outbox email `email` carries: as issue_for_email, the same
    six digits on every attempt."""
    code = f"{int.from_bytes(_email_key(email, TokenPurpose.LOGIN_CODE), 'big') % 10**6:06d}"
    _create_for_email(
        email, TokenPurpose.LOGIN_CODE, _digest(_code_secret(email.user_id, code, email.pk))
    )
    return code


def issue_for_emails(emails):
    """issue_for_email and issue_code_for_email for many outbox emails at once (the batch
    sender): {email pk: link secret or code}, for [(email, purpose)], in a query per purpose and
    one insert. The same secrets and the same rules: a user's other live tokens of the purpose
    die, an email's own token is created once. An email per user and purpose: two would both
    stay live."""
    minted, hashes, users = {}, {}, {}
    for email, purpose in emails:
        if purpose == TokenPurpose.LOGIN_CODE:
            code = f"{int.from_bytes(_email_key(email, purpose), 'big') % 10**6:06d}"
            minted[email.pk] = code
            hashes[email.pk] = _digest(_code_secret(email.user_id, code, email.pk))
        else:
            secret = base64.urlsafe_b64encode(_email_key(email, purpose)).rstrip(b"=").decode()
            minted[email.pk] = secret
            hashes[email.pk] = _digest(secret)
        users.setdefault(purpose, set()).add(email.user_id)
    now = timezone.now()
    for purpose, user_ids in users.items():
        LoginToken.objects.filter(
            user_id__in=any_of(user_ids),
            purpose=purpose,
            used_at__isnull=True,
            revoked_at__isnull=True,
        ).exclude(token_hash__in=any_of(hashes.values())).update(revoked_at=now)
    # An email sent again (its worker died before the mark) has its token already: skipped.
    insert_new(
        LoginToken,
        ("token_hash", "user_id", "purpose", "target")
        + ("outbox_email_id", "created_by_id", "expires_at"),
        [
            (hashes[email.pk], email.user_id, str(purpose), email.context.get("target", ""))
            + (email.pk, email.queued_by_id)
            + (now + link_lifetimes.lifetime(email.portal_account_id, purpose),)
            for email, purpose in emails
        ],
    )
    return minted


def _create_for_email(email, purpose, token_hash):
    # The user's other live tokens of the purpose die as with issue(); this email's own stays.
    LoginToken.objects.filter(
        user_id=email.user_id, purpose=purpose, used_at__isnull=True, revoked_at__isnull=True
    ).exclude(token_hash=token_hash).update(revoked_at=timezone.now())
    token, _ = LoginToken.objects.get_or_create(
        token_hash=token_hash,
        defaults={
            "user_id": email.user_id,
            "purpose": purpose,
            "target": email.context.get("target", ""),
            "outbox_email": email,
            # The person who caused the email, not the worker that sends it.
            "created_by_id": email.queued_by_id,
            "expires_at": timezone.now()
            + link_lifetimes.lifetime(email.portal_account_id, purpose),
        },
    )
    return token


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
        typed = _code_secret(user.pk, code.strip(), token.outbox_email_id)
        if hmac.compare_digest(token.token_hash, _digest(typed)):
            return _use(token)
        token.failed_attempts += 1
        if token.failed_attempts >= settings.LOGIN_CODE_MAX_ATTEMPTS:
            token.revoked_at = timezone.now()
        token.save(update_fields=["failed_attempts", "revoked_at"])
    raise InvalidToken("That code is not right.")

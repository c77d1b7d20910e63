"""Creating and revoking a portal account's API tokens: each one transaction with its audit
event."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import audit
from accounts.errors import LifecycleError
from api.models import ApiToken, token_hash


@transaction.atomic
def create_token(portal_account, name, *, by, ip=None):
    """Returns (token, secret): the secret exists in clear only here, to be shown once."""
    name = (name or "").strip()
    if not name:
        raise LifecycleError("Name the token after what will use it, e.g. 'Salesforce sync'.")
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise LifecycleError("Keep the token's name to 100 characters.")
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
            )
    except IntegrityError:  # the same name created at the same moment
        raise LifecycleError(f"A token named '{name}' already exists. Pick another name.") from None
    audit.record("create_api_token", by=by, portal_account=portal_account, ip=ip, detail=token.name)
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

"""How long a new login link works, per portal account (AccessPolicy, within its bounds).

Read on every link minted and every email rendered, so an account's policy is kept in this
process for a few seconds: the batch sender renders hundreds of emails of one account a second.
Saving a policy forgets this process's copy; other processes see it within CACHE_SECONDS."""

import time

from accounts.models import AccessPolicy

CACHE_SECONDS = 5.0
# account id -> (monotonic time read, policy)
_policies = {}


def policy_of(portal_account_id):
    """The account's AccessPolicy, or an unsaved one with the defaults."""
    now = time.monotonic()
    cached = _policies.get(portal_account_id)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    policy = AccessPolicy.objects.filter(portal_account_id=portal_account_id).first()
    if policy is None:
        policy = AccessPolicy(portal_account_id=portal_account_id)
    if len(_policies) > 10_000:  # accounts come and go; never let the memo grow without end
        _policies.clear()
    _policies[portal_account_id] = (now, policy)
    return policy


def forget(portal_account_id=None):
    if portal_account_id is None:
        _policies.clear()
    else:
        _policies.pop(portal_account_id, None)


def lifetime(portal_account_id, purpose):
    """The timedelta a new link of `purpose` for a user of the account works."""
    if portal_account_id is None:
        return AccessPolicy().lifetime(purpose)
    return policy_of(portal_account_id).lifetime(purpose)

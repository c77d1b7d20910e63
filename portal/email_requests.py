"""What the portal does when someone asks for a sign-in link, a code or a password reset. The
request's page answers at once, the same for every address; this runs in a Celery worker, so
that looking the address up, and writing the email, adds no time an outsider can measure."""

from accounts import lifecycle
from accounts.errors import LifecycleError
from accounts.models import PortalAccount, User, UserState


def answer(account_id, email, what, ip):
    """Email `what` ("link", "code" or "reset") to the portal user with this address, if there
    is one who may have it. Returns whether `what` was sent."""
    account = PortalAccount.objects.filter(pk=account_id).first()
    if account is None:
        return False
    return _send(what, person(account, email), ip)


def person(account, email):
    return (
        User.objects.portal_users()
        .filter(portal_account=account, email=email)
        .select_related("contact")
        .first()
    )


SENDERS = {
    "link": lambda user, ip: lifecycle.send_login_email(user, by=user, ip=ip),
    "code": lambda user, ip: lifecycle.send_login_code(user, by=user, ip=ip),
    "reset": lambda user, ip: lifecycle.reset_password(user, by=user, ip=ip),
}


def _send(what, user, ip):
    """Email the person what they asked for if they may sign in; an invited person who never
    activated gets their invitation again instead. Returns whether `what` was sent."""
    if user is None:
        return False
    try:
        if user.is_active:
            SENDERS[what](user, ip)
            return True
        if user.state == UserState.UNCONFIRMED and not user.contact_deleted:
            lifecycle.reinvite(user, by=user, ip=ip)
    except LifecycleError:
        pass  # the user changed in between (disabled a moment ago): nothing to send
    return False

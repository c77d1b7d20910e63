"""What the portal does when someone asks for a sign-in link, a code or a password reset. The
request's page answers at once, the same for every address; this runs in a Celery worker, so
that looking the address up, and writing the email, adds no time an outsider can measure."""

from django.db import transaction

from accounts import audit, lifecycle
from accounts.errors import LifecycleError
from accounts.models import EmailKind, PortalAccount, User, UserState
from mail import outbox


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
    activated gets their invitation again instead, and a blocked one (disabled, or their CRM
    contact deleted) an email saying so. Returns whether `what` was sent."""
    if user is None:
        return False
    try:
        if user.is_active:
            SENDERS[what](user, ip)
            return True
        if user.state == UserState.UNCONFIRMED and not user.contact_deleted:
            lifecycle.reinvite(user, by=user, ip=ip)
        else:
            send_access_blocked(user, what, ip)
    except LifecycleError:
        pass  # the user changed in between (disabled a moment ago): nothing to send
    return False


def _blocked(user):
    return user.state == UserState.DISABLED or user.contact_deleted


def why_blocked(user):
    """The reason the audit log gives for turning the person away."""
    return "contact deleted" if user.contact_deleted else f"user {user.get_state_display().lower()}"


def send_access_blocked(user, what, ip):
    """Tell a blocked person, at their own address, why no link or code came: the page they
    asked on said "check your email" as it does for everyone. One transaction with its audit
    event, like the emails it stands in for; the request throttle (portal.throttle) counts it
    as the link or code it replaces. Returns whether it was queued."""
    with transaction.atomic():
        # Locked alone, then read whole (as accounts.lifecycle._locked does): a locking query
        # with the outer join to the contact would not be allowed on PostgreSQL.
        locked = User.objects.select_for_update(no_key=True).filter(pk=user.pk)
        if not list(locked.values_list("pk", flat=True)):
            return False
        user = User.objects.select_related("portal_account", "contact").get(pk=user.pk)
        if not user.email or user.is_active or not _blocked(user):
            return False
        audit.record("send_access_blocked", by=user, subject=user, ip=ip, detail=why_blocked(user))
        outbox.queue_email(user, EmailKind.ACCESS_BLOCKED, asked_for=what)
    return True

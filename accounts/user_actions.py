"""The user actions the console offers: what each is called, what it does to the person (the
confirm dialog says it), for whom it shows, and which lifecycle function carries it out."""

from collections.abc import Callable
from dataclasses import dataclass

from accounts import email_changes, lifecycle, signed_in_sessions
from accounts.models import UserState
from accounts.permissions import may_act_on, may_move_admin_seat


def people(count):
    """ "24 users": whom a bulk action is about."""
    return f"{count:,} user{'s' if count != 1 else ''}"


def first_names(names, count, shown=3):
    """'Ada Larsen, Olga Novak and 22 more': whom a bulk action is about, from the first names
    of a selection of `count` people."""
    names = list(names[:shown])
    if not names:
        return ""
    rest = count - len(names)
    if rest > 0:
        return f"{', '.join(names)} and {rest:,} more"
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"


@dataclass(frozen=True)
class UserAction:
    """The words follow one rule: the action, then the person ("Login email sent to Ada
    Larsen", "Send a login email to 24 users?"). `{who}` is the name, or "24 users"."""

    name: str
    label: str
    done: str  # the message once done, e.g. "Login email sent to {who}."
    consequence: str
    perform: Callable
    danger: bool = False
    needs_role: bool = False
    bulk: bool = False
    # What the confirm dialog says, when it depends on more than the name.
    consequence_for: Callable | None = None
    question: str = "{label} {who}?"  # the confirm dialog's title

    def ask(self, user):
        return self.question.format(label=self.label, who=user.name)

    def ask_many(self, count):
        return self.question.format(label=self.label, who=people(count))

    def said(self, user, role=None):
        """The message once done to `user` (`role`: the one they were given)."""
        return self.done.format(who=user.name, role=role.name if role else "")

    def said_many(self, count):
        return self.done.format(who=people(count), role="")

    def describe(self, user):
        if self.consequence_for is not None:
            return self.consequence_for(user)
        return self.consequence.format(name=user.name)


def _admin_seat_consequence(user):
    # Naming the current holder: the seat moves, it is not shared, and they keep a normal login.
    current = (
        type(user)
        .objects.filter(portal_account_id=user.portal_account_id, is_account_admin=True)
        .exclude(pk=user.pk)
        .only("name")
        .first()
    )
    becomes = (
        f"{user.name} becomes the account admin and can manage this account's users in the console."
    )
    if current is None:
        return becomes
    return f"{becomes} {current.name} loses the seat and keeps a normal portal login."


def _open_sessions_consequence(user):
    count = signed_in_sessions.open_sessions(user).count()
    if not count:
        return f"{user.name} has no open sessions right now: nobody is signed in as them."
    sessions = "1 open session" if count == 1 else f"{count} open sessions"
    return (
        f"{user.name} has {sessions}. Every browser signed in as them is signed out at once and "
        "has to sign in again; their account, password and links stay as they are."
    )


ACTIONS = {
    action.name: action
    for action in [
        UserAction(
            "disable",
            "Disable",
            "Access disabled for {who}.",
            "{name} will not be able to sign in, every link they hold stops working at once, "
            "and their license seat is freed.",
            lambda user, by, ip, role: lifecycle.disable(user, by=by, ip=ip),
            danger=True,
            bulk=True,
        ),
        UserAction(
            "enable",
            "Enable",
            "Access restored for {who}.",
            "{name} gets access back and takes a license seat again. They are emailed a sign-in "
            "link (or a new invitation if they never activated).",
            lambda user, by, ip, role: lifecycle.enable(user, by=by, ip=ip),
            bulk=True,
        ),
        UserAction(
            "reinvite",
            "Reinvite",
            "Invitation sent again to {who}.",
            "{name} is sent a new invitation email; the previous invitation link stops working.",
            lambda user, by, ip, role: lifecycle.reinvite(user, by=by, ip=ip),
            bulk=True,
        ),
        UserAction(
            "reset-password",
            "Reset password",
            "Password reset email sent to {who}.",
            "{name} is emailed a link to choose a new password. Their current password keeps "
            "working until they do.",
            lambda user, by, ip, role: lifecycle.reset_password(user, by=by, ip=ip),
            question="Send {who} a password reset?",
        ),
        UserAction(
            "change-role",
            "Change role",
            "{who}'s role changed to {role}.",
            "{name} keeps their state; a role of another user type changes their user type "
            "and the license they take.",
            lambda user, by, ip, role: lifecycle.change_role(user, role, by=by, ip=ip),
            needs_role=True,
            question="Change {who}'s role?",
        ),
        UserAction(
            "send-login-email",
            "Send login email",
            "Login email sent to {who}.",
            "{name} is emailed a one-click sign-in link.",
            lambda user, by, ip, role: lifecycle.send_login_email(user, by=by, ip=ip),
            bulk=True,
            question="Send a login email to {who}?",
        ),
        UserAction(
            "end-sessions",
            "End sessions",
            "Sessions ended for {who}: signed out everywhere.",
            "{name} is signed out of every browser at once.",
            lambda user, by, ip, role: lifecycle.end_sessions(user, by=by, ip=ip),
            danger=True,
            consequence_for=_open_sessions_consequence,
            question="End {who}'s sessions?",
        ),
        UserAction(
            "resend-email-confirmation",
            "Resend confirmation",
            "Confirmation link sent again to {who}'s new address.",
            "{name}'s new sign-in email, from the CRM, waits until that address confirms it: "
            "it is sent a new link (the one before stops working).",
            lambda user, by, ip, role: email_changes.resend_confirmation(user, by=by, ip=ip),
            question="Send {who}'s new address its confirmation again?",
        ),
        UserAction(
            "make-admin",
            "Make account admin",
            "Account admin seat given to {who}.",
            "{name} becomes the account admin and can manage this account's users in the "
            "console. The current account admin loses that seat.",
            lambda user, by, ip, role: lifecycle.make_account_admin(user, by=by, ip=ip),
            consequence_for=_admin_seat_consequence,
            question="Make {who} the account admin?",
        ),
        UserAction(
            "delete",
            "Delete",
            "Portal login deleted for {who}.",
            "{name}'s portal login is removed for good: their invitation and links stop working. "
            "The CRM contact and the audit log stay.",
            lambda user, by, ip, role: lifecycle.delete(user, by=by, ip=ip),
            danger=True,
            bulk=True,
        ),
    ]
}

BULK_ACTIONS = [action for action in ACTIONS.values() if action.bulk]
_BULK_BY_TAB = {
    "enabled": ["disable", "send-login-email", "delete"],
    "disabled": ["enable", "delete"],
    "unconfirmed": ["reinvite", "disable", "delete"],
}


def bulk_actions_for(tab):
    """The bulk buttons that make sense on a tab (the server accepts any bulk action)."""
    return [ACTIONS[name] for name in _BULK_BY_TAB[tab]]


_BY_STATE = {
    UserState.ENABLED: [
        "disable",
        "reset-password",
        "change-role",
        "send-login-email",
        "end-sessions",
        "make-admin",
        "delete",
    ],
    UserState.DISABLED: ["enable", "delete"],
    # No make-admin: an invited user has no password yet (the lifecycle refuses it too). Disable
    # is offered here as the Unconfirmed tab's bulk bar offers it.
    UserState.UNCONFIRMED: ["reinvite", "disable", "change-role", "delete"],
}


# Whoever's contact is deleted cannot sign in until it is fixed (orphaned users): only what takes
# their access away, or a role change, is offered; the lifecycle refuses the rest.
CONTACT_DELETED_ACTIONS = {"disable", "delete", "change-role", "end-sessions"}


def row_actions(person, user):
    """The actions to offer on a user's row (the server re-checks everything on POST)."""
    if not may_act_on(person, user):
        return []
    names = list(_BY_STATE[user.state])
    if user.contact_deleted:
        names = [name for name in names if name in CONTACT_DELETED_ACTIONS]
    if user.is_account_admin or not may_move_admin_seat(person):
        names = [n for n in names if n != "make-admin"]
    if user.is_account_admin:
        names = [n for n in names if n != "delete"]
    return [ACTIONS[name] for name in names]

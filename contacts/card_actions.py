"""What the Portal user card on a contact's page offers for each state of the contact's user.
The labels, consequences and lifecycle calls are the users page's (accounts.user_actions), so
both screens say and do the same; the server re-checks everything on POST."""

from dataclasses import replace

from accounts import signed_in_sessions
from accounts.models import UserState
from accounts.permissions import may_act_on
from accounts.user_actions import ACTIONS, CONTACT_DELETED_ACTIONS

# Giving the contact a user, and handing over a magic link, are the card's own forms.
ENABLE = "invite"
MAGIC_LINK = "magic-link"
# Console only (the API offers what card_actions lists, and has no such endpoint).
END_SESSIONS = ACTIONS["end-sessions"]
RESEND_CONFIRMATION = ACTIONS["resend-email-confirmation"]

CARD_ACTIONS = {
    **{name: ACTIONS[name] for name in ["disable", "reinvite", "reset-password", "delete"]},
    "change-role": ACTIONS["change-role"],
    "send-login-email": ACTIONS["send-login-email"],
    # On a contact, turning a disabled login back on reads as reactivating it.
    "enable": replace(
        ACTIONS["enable"], label="Reactivate", done="Portal login reactivated for {who}."
    ),
}

# Not destructive, but they email the person (and a reinvite kills the link they hold), so the
# card asks first, as the Users page does.
_ASK_FIRST = {"enable", "reinvite"}


def asks_first(action):
    """Whether the card opens a confirmation for the action instead of acting on the click."""
    return action.danger or action.name in _ASK_FIRST


_BY_STATE = {
    UserState.ENABLED: ["reset-password", "send-login-email", "change-role", "disable"],
    UserState.UNCONFIRMED: ["reinvite", "change-role", "disable", "delete"],
    UserState.DISABLED: ["enable", "delete"],
}


def card_actions(person, user):
    """The actions the card offers on the user (none on an account admin's own seat)."""
    if user is None or not may_act_on(person, user):
        return []
    names = list(_BY_STATE[user.state])
    if user.contact_deleted:
        names = [name for name in names if name in CONTACT_DELETED_ACTIONS]
    if user.is_account_admin:
        names = [name for name in names if name != "delete"]
    return [CARD_ACTIONS[name] for name in names]


def may_end_sessions(person, user):
    """Signing a user out everywhere: for whoever may act on them, while they could be signed in
    (a user whose contact was deleted too: their sessions are worth ending)."""
    return user is not None and may_act_on(person, user) and user.state == UserState.ENABLED


def console_card_may(person, user, action):
    """Whether the console's card may do `action` now: what it offers, and ending sessions
    whenever they could exist (the last one may have ended since the card was shown; ending
    none is harmless)."""
    if action == END_SESSIONS:
        return may_end_sessions(person, user)
    return action in console_card_actions(person, user)


def console_card_actions(person, user):
    """What the console's card offers: the shared actions, ending sessions (while there are
    any), and, while a new email from the CRM waits for its confirmation, sending that link
    again (it expires)."""
    actions = card_actions(person, user)
    if may_end_sessions(person, user) and signed_in_sessions.open_sessions(user).exists():
        actions = [*actions, END_SESSIONS]
    if user is not None and user.pending_email and may_act_on(person, user):
        actions = [*actions, RESEND_CONFIRMATION]
    return actions


def refusal(contact, user, action=None):
    """Why the card (or the API) will not do `action` on the contact's portal user `user` now;
    with no user, why nothing but enabling it can be done."""
    if user is None:
        return f"{contact.name} has no portal user. Enable the contact as a portal user first."
    why = (
        "their CRM contact is deleted"
        if user.contact_deleted
        else f"the user is {user.get_state_display()}"
    )
    return f"{action.label} is not possible for {user.name} now: {why}."


def may_issue_magic_link(person, user):
    return (
        user is not None
        and may_act_on(person, user)
        and user.state == UserState.ENABLED
        and not user.contact_deleted
    )

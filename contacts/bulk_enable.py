"""Enable a selection of contacts as portal users with one role: the contacts page's bulk
action. Each new user goes through `lifecycle.invite`, the path of Add user and the contact's
card (one transaction with its audit event and invitation in the outbox, the license seat
claimed under the account's row lock), so one refusal stops nobody else and a refused row
leaves nothing behind. Every contact ends with one outcome, as a row of an import does."""

from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from accounts import licenses, lifecycle
from accounts.errors import LifecycleError
from accounts.models import User, UserType

CREATED, SKIPPED, FAILED = "created", "skipped", "failed"
OUTCOME_LABELS = {CREATED: "Created", SKIPPED: "Skipped", FAILED: "Failed"}
HAS_USER = "Already a portal user."
DELETED = "The contact is deleted in the CRM: restore it first."


@dataclass
class Outcome:
    contact: object
    result: str
    reason: str = ""
    user_id: int | None = None

    @property
    def label(self):
        return OUTCOME_LABELS[self.result]


def with_user_flag(contacts):
    """The contacts with `has_user`, one probe of the users' contact index each."""
    return contacts.annotate(has_user=Exists(User.objects.filter(contact=OuterRef("pk"))))


def seats(account, role, wanted):
    """What the confirmation says about the role's licenses: {"label", "needed", "free",
    "enough"}, as the import's review says it, from the account's counters."""
    limit = account.licenses_for(role.user_type)
    free = max(limit - licenses.seats_used(account, role.user_type), 0)
    return {
        "label": UserType(role.user_type).label,
        "needed": wanted,
        "free": free,
        "enough": wanted <= free,
    }


def enable(account, contacts, role, *, by, ip=None):
    """Give each contact (a queryset, already scoped to `account`) a portal user with `role`
    and an invitation. Returns an Outcome per contact, in name order."""
    outcomes = []
    for contact in with_user_flag(contacts).order_by("name", "pk"):
        if contact.deleted_at is not None:
            outcomes.append(Outcome(contact, SKIPPED, DELETED))
        elif contact.has_user:
            outcomes.append(Outcome(contact, SKIPPED, HAS_USER))
        else:
            outcomes.append(_invite(account, contact, role, by=by, ip=ip))
    return outcomes


def _invite(account, contact, role, *, by, ip):
    try:
        user = lifecycle.invite(account, role=role, by=by, contact=contact, ip=ip)
    except LifecycleError as error:
        message = str(error)
        # Another admin (or the CRM sync's merge) gave the contact a user after the list was
        # read: the contact has what was asked for.
        if message.startswith("User already exists"):
            return Outcome(contact, SKIPPED, HAS_USER)
        return Outcome(contact, FAILED, message)
    return Outcome(contact, CREATED, user_id=user.pk)


def summary(outcomes):
    """{"created": n, "skipped": n, "failed": n}."""
    counts = {CREATED: 0, SKIPPED: 0, FAILED: 0}
    for outcome in outcomes:
        counts[outcome.result] += 1
    return counts

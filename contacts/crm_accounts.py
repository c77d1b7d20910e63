"""The CRM-account filters of the Users and Contacts pages: the text typed matches the names of
the account's CRM accounts (contacts.models.CrmAccount: one row per company, however many
contacts it has), and the lists then select the users or contacts of those names through an
index. Matching the text against every contact instead read all 80,000 contacts of a
100,000-user account on each filtered page."""

from accounts import scoping

# A filter matches at most this many CRM accounts (a word in the names of more companies than
# this is not a filter anyone narrows with); the suggestions list as many.
NAMES_MATCHED = 100


def _offered(person, account):
    return scoping.crm_accounts(person, account).filter(contacts__gt=0)


def names_containing(person, account, text):
    """The names of the account's CRM accounts that contain `text`, in any case."""
    names = _offered(person, account).filter(name__icontains=text).order_by("name")
    return list(names.values_list("name", flat=True)[:NAMES_MATCHED])


def suggestions(person, account):
    """Names for the filter's type-ahead (a datalist), the first in alphabetical order. Lazy:
    a list fragment that shows no filter form runs no query."""
    return _offered(person, account).order_by("name").values_list("name", flat=True)[:NAMES_MATCHED]

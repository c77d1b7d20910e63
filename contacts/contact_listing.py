"""The contacts page's query: live or deleted contacts, what search, which page. One place, so
the page and its HTMX fragment agree, in a fixed number of queries whatever the page size."""

from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import Q

from accounts import scoping
from contacts.salesforce_ids import InvalidSalesforceId, to_18
from helpers.search_paging import search_paginator
from helpers.search_terms import search_term

PAGE_SIZE = 50
SEARCH_COUNT_CAP = 1000

SHOWS = {"live": "Live", "deleted": "Deleted"}
SHOW_CONDITIONS = {"live": Q(deleted_at__isnull=True), "deleted": Q(deleted_at__isnull=False)}


def search_condition(q):
    """Name, email and CRM account by substring; contact id and Salesforce id (15 or 18
    characters, as people paste them from the CRM) exactly."""
    condition = (
        Q(name__icontains=q)
        | Q(email__icontains=q)
        | Q(crm_account_name__icontains=q)
        | Q(contact_id=q)
    )
    # An 18-character word with a wrong checksum is nobody's Salesforce id.
    with suppress(InvalidSalesforceId):
        condition |= Q(salesforce_id=to_18(q))
    return condition


@dataclass
class ContactListing:
    show: str
    q: str
    page_number: int

    @classmethod
    def from_params(cls, params):
        show = params.get("show") if params.get("show") in SHOWS else "live"
        try:
            page_number = max(int(params.get("page", 1)), 1)
        except ValueError:
            page_number = 1
        return cls(show=show, q=search_term(params), page_number=page_number)

    def query_string(self, **changes):
        values = {"show": self.show, "q": self.q, "page": self.page_number}
        values.update(changes)
        if values["show"] == "live":
            values["show"] = ""  # short URLs for the usual view
        return urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})

    def matching(self, person, account):
        contacts = scoping.contacts(person, account).filter(SHOW_CONDITIONS[self.show])
        if self.q:
            contacts = contacts.filter(search_condition(self.q))
        return contacts

    def page(self, person, account, show_total):
        """Page through ids, then load the 50 rows with their portal user in one query: the
        join runs for the rows shown, not for every row an OFFSET skips. Without a search the
        count is already known (show_total); a search's matches are counted up to a cap."""
        matching = self.matching(person, account)
        if self.q:
            paginator = search_paginator(matching, ["name", "pk"], PAGE_SIZE, SEARCH_COUNT_CAP)
        else:
            ids = matching.order_by("name", "pk").values_list("pk", flat=True)
            paginator = Paginator(ids, PAGE_SIZE)
            paginator.capped = False
            paginator.count = show_total  # a cached property: no count query
        page = paginator.get_page(self.page_number)
        page.object_list = list(
            scoping.contacts(person, account)
            .filter(pk__in=list(page.object_list))
            .select_related("user")
            .order_by("name", "pk")
        )
        page.rows = [(contact, portal_status(contact)) for contact in page.object_list]
        return page


def portal_user(contact):
    """The contact's portal user or None (the reverse one-to-one raises when there is none)."""
    return getattr(contact, "user", None)


def portal_status(contact):
    """(label, badge class) for the contacts list and the contact page."""
    user = portal_user(contact)
    if user is None:
        return "No user", "inactive"
    return user.get_state_display(), {"enabled": "ok", "disabled": "danger"}.get(user.state, "")


def show_counts(person, account):
    """{"live": n, "deleted": m} from the account's counters (contacts.models.ContactCount)."""
    counts = {"live": 0, "deleted": 0}
    for deleted, contacts in scoping.contact_counts(person, account).values_list(
        "deleted", "contacts"
    ):
        counts["deleted" if deleted else "live"] += contacts
    return counts

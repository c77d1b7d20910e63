"""The contacts page's query: live or deleted contacts, what search and filters, which order,
which page. One place, so the page, its HTMX fragment and the bulk "all matching" selection
agree, in a fixed number of queries whatever the page size."""

from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import F, OuterRef, Q, Subquery

from accounts import scoping
from accounts.models import User, UserState
from contacts import crm_accounts
from contacts.salesforce_ids import InvalidSalesforceId, to_18
from helpers.search_paging import search_paginator
from helpers.search_terms import search_term
from helpers.sort_choices import both_directions

PAGE_SIZE = 50
SEARCH_COUNT_CAP = 1000

SHOWS = {"live": "Live", "deleted": "Deleted"}
SHOW_CONDITIONS = {"live": Q(deleted_at__isnull=True), "deleted": Q(deleted_at__isnull=False)}

# sort key -> (column label, ORDER BY fields); a "-" prefix in the URL reverses it. Each list
# offers the sorts a partial index of contacts.models.Contact serves (contact_live_by_* and
# contact_deleted_by_*, read forwards or backwards), so a sorted page reads 50 index entries
# whatever the account's size. The portal user's state is a filter, not a sort: sorting by it
# would join every contact of the account to its user.
SORTS = {
    "name": ("Name", ["name", "id"]),
    "email": ("Email", ["email", "id"]),
    "crm": ("CRM account", ["crm_account_name", "id"]),
    "created": ("Added", ["created_at", "id"]),
    "deleted": ("Deleted", ["deleted_at", "id"]),
}
SHOW_SORTS = {"live": ("name", "email", "crm", "created"), "deleted": ("name", "deleted")}
DEFAULT_SORT = "name"
DATE_SORTS = {"created", "deleted"}

# The portal-user filter: the contact's user, looked up by the one-to-one's unique index.
PORTAL_FILTERS = {
    "none": "No portal user",
    "any": "Has a portal user",
    "enabled": "Portal user enabled",
    "unconfirmed": "Portal user unconfirmed",
    "disabled": "Portal user disabled",
}


def with_portal_filter(contacts, value):
    """The contacts whose portal user matches the filter. The user's state is read with a scalar
    subquery, which PostgreSQL runs per contact through the users' unique contact index, so a
    page reads the users of the contacts it looks at. Written as EXISTS or IN, the planner
    joined instead, hashing every user of the table (or of the account) to find one page."""
    state = Subquery(User.objects.filter(contact=OuterRef("pk")).order_by().values("state")[:1])
    contacts = contacts.alias(portal_state=state)
    if value == "none":
        return contacts.filter(portal_state__isnull=True)
    if value == "any":
        return contacts.filter(portal_state__isnull=False)
    return contacts.filter(portal_state=UserState(value))


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
    sort: str = DEFAULT_SORT
    # Filters, kept in the URL so a filtered list can be bookmarked.
    portal: str = ""
    crm_account: str = ""

    @property
    def filtered(self):
        return bool(self.portal or self.crm_account)

    @property
    def is_live(self):
        return self.show == "live"

    @classmethod
    def from_params(cls, params):
        show = params.get("show") if params.get("show") in SHOWS else "live"
        try:
            page_number = max(int(params.get("page", 1)), 1)
        except ValueError:
            page_number = 1
        sort = params.get("sort", "")
        if sort.lstrip("-") not in SHOW_SORTS[show]:
            sort = DEFAULT_SORT
        portal = params.get("portal", "")
        return cls(
            show=show,
            q=search_term(params),
            page_number=page_number,
            sort=sort,
            portal=portal if portal in PORTAL_FILTERS else "",
            crm_account=search_term(params, "crm"),
        )

    def filter_values(self):
        return {"portal": self.portal, "crm": self.crm_account}

    def query_string(self, **changes):
        values = {
            "show": self.show,
            "q": self.q,
            **self.filter_values(),
            "sort": self.sort,
            "page": self.page_number,
        }
        values.update(changes)
        if values["show"] == "live":
            values["show"] = ""  # short URLs for the usual view
        if values["sort"] == DEFAULT_SORT:
            values["sort"] = ""
        return urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})

    def show_link(self, show):
        """The other list with the same search and filters, in name order (its own sorts)."""
        return self.query_string(show=show, sort=DEFAULT_SORT, page=1)

    def sort_link(self, key):
        """Clicking a column sorts by it; clicking it again reverses."""
        return self.query_string(sort=f"-{key}" if self.sort == key else key, page=1)

    def sort_choices(self):
        """This list's sorts for the Sort by select (a phone shows no column headers)."""
        labels = {key: label for key, (label, _fields) in SORTS.items()}
        return both_directions(SHOW_SORTS[self.show], labels, self.sort, dates=DATE_SORTS)

    def order_by(self):
        descending = self.sort.startswith("-")
        fields = SORTS[self.sort.lstrip("-")][1]
        return [F(field).desc() if descending else F(field).asc() for field in fields]

    def matching(self, person, account):
        """The contacts of this list, search and filters, unordered and unpaged (the page, the
        bulk "all matching" selection)."""
        contacts = scoping.contacts(person, account).filter(SHOW_CONDITIONS[self.show])
        if self.portal:
            contacts = with_portal_filter(contacts, self.portal)
        if self.crm_account:
            names = crm_accounts.names_containing(person, account, self.crm_account)
            contacts = contacts.filter(crm_account_name__in=names)
        if self.q:
            contacts = contacts.filter(search_condition(self.q))
        return contacts

    def page(self, person, account, show_total):
        """Page through ids, then load the 50 rows with their portal user in one query: the
        join runs for the rows shown, not for every row an OFFSET skips. Without a search or
        filter the count is already known (show_total); otherwise the matches are found
        unordered and counted up to a cap (helpers.search_paging), as on the Users page."""
        matching = self.matching(person, account)
        if self.portal and not (self.q or self.crm_account):
            paginator = _walk_paginator(matching, self.order_by())
        elif self.q or self.filtered:
            paginator = search_paginator(matching, self.order_by(), PAGE_SIZE, SEARCH_COUNT_CAP)
        else:
            ids = matching.order_by(*self.order_by()).values_list("pk", flat=True)
            paginator = Paginator(ids, PAGE_SIZE)
            paginator.capped = False
            paginator.count = show_total  # a cached property: no count query
        page = paginator.get_page(self.page_number)
        page.object_list = list(
            scoping.contacts(person, account)
            .filter(pk__in=list(page.object_list))
            .select_related("user")
            .order_by(*self.order_by())
        )
        # (contact, its portal status, whether it can be enabled as a portal user)
        page.rows = [
            (
                contact,
                portal_status(contact),
                portal_user(contact) is None and not contact.deleted_at,
            )
            for contact in page.object_list
        ]
        return page


def _walk_paginator(matching, order_by):
    """The portal-user filter alone: no index finds its matches, so they are found walking the
    list's own index in the order shown, up to the cap. Unordered (as a search's are found),
    PostgreSQL read the table in its physical order, where contacts without a user may all sit
    at the end (the CRM's contacts loaded after those that got a login): 80,000 rows probed
    for the first page at 100,000 contacts, 0.9 s. In the order shown, the first page costs
    what its matches are spread over."""
    ordered = matching.order_by(*order_by).values_list("pk", flat=True)
    found = list(ordered[: SEARCH_COUNT_CAP + 1])
    capped = len(found) > SEARCH_COUNT_CAP
    paginator = Paginator(ordered if capped else found, PAGE_SIZE)
    paginator.count = min(len(found), SEARCH_COUNT_CAP)  # a cached property: no count query
    paginator.capped = capped
    return paginator


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

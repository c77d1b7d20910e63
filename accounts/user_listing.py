"""The users page's query: which tab, what search, which order, which page. One place, so the
page, its HTMX fragments, the bulk "all matching" selection and the CSV export agree."""

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from accounts import scoping, user_counts
from accounts.models import LoginToken, OutboxEmail, TokenPurpose, UserState, UserType
from contacts import crm_accounts
from contacts.models import Contact
from helpers.search_paging import search_paginator
from helpers.search_terms import search_term
from helpers.sort_choices import both_directions

PAGE_SIZE = 50
SEARCH_COUNT_CAP = 1000

TABS = {"enabled": "Enabled", "disabled": "Disabled", "unconfirmed": "Unconfirmed"}


def tab_condition(tab):
    """A tab is a state, nothing else: a user whose CRM contact is deleted (an orphaned user)
    stays under the state they are in, marked on their row, so the page never offers to enable
    someone it shows as disabled. A plain state test is also what the user_tab_* indexes lead
    with, so every tab and its count stays an index range."""
    return Q(state=UserState(tab))


# sort key -> (column label, ORDER BY fields); a "-" prefix in the URL reverses it. Each tab
# offers the sorts an index of accounts.models.User serves (read forwards or backwards), so a
# sorted page reads 50 index entries, never a sort of the whole tab: role and type are shown,
# not sorted (sorting by the role's name would sort every user of the tab).
SORTS = {
    "name": ("Name", ["name", "id"]),
    "last_login": ("Last sign-in", ["last_login", "id"]),
    "disabled_at": ("Disabled", ["disabled_at", "id"]),
    "invited_at": ("Invited", ["invited_at", "id"]),
    "last_invited_at": ("Last sent", ["last_invited_at", "id"]),
}
TAB_SORTS = {
    "enabled": ("name", "last_login"),
    "disabled": ("name", "disabled_at"),
    "unconfirmed": ("name", "invited_at", "last_invited_at"),
}
DEFAULT_SORT = {"enabled": "name", "disabled": "-disabled_at", "unconfirmed": "-last_invited_at"}
# Dates a user may not have (never signed in): ordered as the oldest, which is the order of their
# indexes (NULLS FIRST) in both directions.
NULLABLE_SORT_FIELDS = {"last_login", "disabled_at", "invited_at", "last_invited_at"}


# Last sign-in filter: never, or not in the last N days (which includes never).
SIGNED_IN_FILTERS = {"never": "Never signed in", "30": "Not in 30 days", "90": "Not in 90 days"}


def _positive_int(value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


@dataclass
class Listing:
    tab: str
    q: str
    sort: str
    page_number: int
    # Filters, kept in the URL so a filtered list can be bookmarked and exported.
    role: int | None = None
    user_type: str = ""
    signed_in: str = ""
    crm_account: str = ""

    @property
    def filtered(self):
        return bool(self.role or self.user_type or self.signed_in or self.crm_account)

    @classmethod
    def from_params(cls, params):
        tab = params.get("tab") if params.get("tab") in TABS else "enabled"
        sort = params.get("sort", "")
        if sort.lstrip("-") not in TAB_SORTS[tab]:
            sort = DEFAULT_SORT[tab]
        try:
            page_number = max(int(params.get("page", 1)), 1)
        except ValueError:
            page_number = 1
        user_type = params.get("type", "")
        signed_in = params.get("signed_in", "")
        return cls(
            tab=tab,
            q=search_term(params),
            sort=sort,
            page_number=page_number,
            role=_positive_int(params.get("role")),
            user_type=user_type if user_type in UserType.values else "",
            # Unconfirmed users never signed in: the filter means nothing on their tab.
            signed_in=signed_in if signed_in in SIGNED_IN_FILTERS and tab != "unconfirmed" else "",
            crm_account=search_term(params, "crm"),
        )

    def filter_values(self):
        return {
            "role": self.role,
            "type": self.user_type,
            "signed_in": self.signed_in,
            "crm": self.crm_account,
        }

    def query_string(self, **changes):
        values = {
            "tab": self.tab,
            "q": self.q,
            **self.filter_values(),
            "sort": self.sort,
            "page": self.page_number,
        }
        values.update(changes)
        if values["sort"] == DEFAULT_SORT[values["tab"]]:
            values["sort"] = ""  # short URLs for the usual view
        return urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})

    def tab_link(self, tab):
        """Another tab with the same search and filters, in its own usual order."""
        signed_in = "" if tab == "unconfirmed" else self.signed_in
        return self.query_string(tab=tab, sort=DEFAULT_SORT[tab], page=1, signed_in=signed_in)

    def sort_link(self, key):
        """Clicking a column sorts by it; clicking it again reverses."""
        return self.query_string(sort=f"-{key}" if self.sort == key else key, page=1)

    def sort_choices(self):
        """The tab's sorts for the Sort by select (a phone shows no column headers)."""
        labels = {key: label for key, (label, _fields) in SORTS.items()}
        return both_directions(TAB_SORTS[self.tab], labels, self.sort, dates=NULLABLE_SORT_FIELDS)

    def matching(self, person, account):
        """The users of this tab, search and filters, unordered and unpaged (bulk 'all
        matching', the export)."""
        users = scoping.portal_users(person, account).filter(tab_condition(self.tab))
        if self.role:
            users = users.filter(role_id=self.role)
        if self.user_type:
            users = users.filter(user_type=self.user_type)
        if self.signed_in == "never":
            users = users.filter(last_login__isnull=True)
        elif self.signed_in:
            since = timezone.now() - timedelta(days=int(self.signed_in))
            users = users.filter(Q(last_login__isnull=True) | Q(last_login__lt=since))
        if self.crm_account:
            names = crm_accounts.names_containing(person, account, self.crm_account)
            users = users.filter(crm_account_name__in=names)
        if self.q:
            # The contact-id arm is a scalar subquery (run once), so every arm of the OR is an
            # indexed test on the users table and PostgreSQL can combine the indexes.
            by_contact_id = Contact.objects.filter(portal_account=account, contact_id=self.q)
            users = users.filter(
                Q(name__icontains=self.q)
                | Q(email__icontains=self.q)
                | Q(contact=Subquery(by_contact_id.order_by().values("pk")[:1]))
            )
        return users

    def order_by(self):
        fields = SORTS[self.sort.lstrip("-")][1]
        descending = self.sort.startswith("-")
        ordering = []
        for field in fields:
            if field not in NULLABLE_SORT_FIELDS:
                ordering.append(F(field).desc() if descending else F(field).asc())
            elif descending:  # newest first, who never had the date at the end
                ordering.append(F(field).desc(nulls_last=True))
            else:
                ordering.append(F(field).asc(nulls_first=True))
        return ordering

    def ordered(self, person, account):
        """The matching users in the list's order, with their role and contact (the export)."""
        return (
            self.matching(person, account)
            .select_related("role", "contact")
            .order_by(*self.order_by())
        )

    def shown(self, person, account):
        """The rows as the page shows them: ordered, with their role and contact and what the
        tab's columns say (users.html): who disabled them (Disabled), the state of their last
        email (Enabled and Unconfirmed) and when their invitation expires (Unconfirmed). Each
        is a join or a subquery per row, so a tab asks only for its own."""
        rows = self.ordered(person, account)
        if self.tab == "disabled":
            return rows.select_related("disabled_by")
        rows = rows.annotate(
            last_email_status=Subquery(_last_email.values("status")[:1]),
            last_email_error=Subquery(_last_email.values("last_error")[:1]),
        )
        if self.tab == "unconfirmed":
            rows = rows.annotate(
                invitation_expires_at=Subquery(
                    LoginToken.objects.filter(
                        user=OuterRef("pk"),
                        purpose=TokenPurpose.ACTIVATION,
                        used_at__isnull=True,
                        revoked_at__isnull=True,
                    )
                    .order_by("-created_at")
                    .values("expires_at")[:1]
                )
            )
        return rows

    def page(self, person, account, tab_total=None):
        """Page through ids only, then load the 50 rows in full: the joins and subqueries run
        for the rows shown, not for every row an OFFSET skips (page 1,000 of 100,000 users
        went from 900 ms to under 100). Without a search the tab's count is already known
        (tab_total, from the counters); a search counts its matches up to a cap
        (helpers.search_paging)."""
        matching = self.matching(person, account)
        if self.q or self.filtered:
            paginator = search_paginator(matching, self.order_by(), PAGE_SIZE, SEARCH_COUNT_CAP)
        else:
            ids = matching.order_by(*self.order_by()).values_list("pk", flat=True)
            paginator = Paginator(ids, PAGE_SIZE)
            if tab_total is not None:
                paginator.count = tab_total  # a cached property: no count query
        page = paginator.get_page(self.page_number)
        # The 50 ids as values: left as a subquery, PostgreSQL planned the page's query again
        # around it and joined every user of the tab to it.
        page.object_list = list(self.shown(person, account).filter(pk__in=list(page.object_list)))
        return page


_last_email = OutboxEmail.objects.filter(user=OuterRef("pk")).order_by("-created_at", "-id")


def tab_counts(person, account):
    """All three tab counts from the account's counters (a tab is a state, tab_condition)."""
    counts = user_counts.counts_of(scoping.user_counts(person, account))
    return [(tab, label, user_counts.in_state(counts, tab)) for tab, label in TABS.items()]

"""The users page's query: which tab, what search, which order, which page. One place, so the
page, its HTMX fragments, the bulk "all matching" selection and the CSV export agree."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Q, Subquery

from accounts import scoping
from accounts.models import LoginToken, OutboxEmail, TokenPurpose, UserState

PAGE_SIZE = 50

# A partner or customer user whose CRM contact is deleted cannot sign in, whatever their state:
# the console shows them with the disabled ones, marked "contact deleted".
CONTACT_DELETED = Q(contact__deleted_at__isnull=False)
TABS = {
    "enabled": ("Enabled", Q(state=UserState.ENABLED) & ~CONTACT_DELETED),
    "disabled": (
        "Disabled",
        Q(state=UserState.DISABLED) | (Q(state=UserState.ENABLED) & CONTACT_DELETED),
    ),
    "unconfirmed": ("Unconfirmed", Q(state=UserState.UNCONFIRMED)),
}

# sort key -> (column label, ORDER BY fields); a "-" prefix in the URL reverses it.
SORTS = {
    "name": ("Name", ["name", "id"]),
    "email": ("Email", ["email", "id"]),
    "role": ("Role", ["role__name", "name", "id"]),
    "type": ("Type", ["user_type", "name", "id"]),
    "last_login": ("Last sign-in", ["last_login", "id"]),
    "disabled_at": ("Disabled", ["disabled_at", "id"]),
    "invited_at": ("Invited", ["invited_at", "id"]),
    "last_invited_at": ("Last sent", ["last_invited_at", "id"]),
}
DEFAULT_SORT = {"enabled": "name", "disabled": "-disabled_at", "unconfirmed": "-last_invited_at"}


@dataclass
class Listing:
    tab: str
    q: str
    sort: str
    page_number: int

    @classmethod
    def from_params(cls, params):
        tab = params.get("tab") if params.get("tab") in TABS else "enabled"
        sort = params.get("sort", "")
        if sort.lstrip("-") not in SORTS:
            sort = DEFAULT_SORT[tab]
        try:
            page_number = max(int(params.get("page", 1)), 1)
        except ValueError:
            page_number = 1
        return cls(tab=tab, q=params.get("q", "").strip()[:200], sort=sort, page_number=page_number)

    def query_string(self, **changes):
        values = {"tab": self.tab, "q": self.q, "sort": self.sort, "page": self.page_number}
        values.update(changes)
        if values["sort"] == DEFAULT_SORT[values["tab"]]:
            values["sort"] = ""  # short URLs for the usual view
        return urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})

    def sort_link(self, key):
        """Clicking a column sorts by it; clicking it again reverses."""
        return self.query_string(sort=f"-{key}" if self.sort == key else key, page=1)

    def matching(self, person, account):
        """The users of this tab and search, unordered and unpaged (bulk 'all matching')."""
        users = scoping.portal_users(person, account).filter(TABS[self.tab][1])
        if self.q:
            users = users.filter(
                Q(name__icontains=self.q)
                | Q(email__icontains=self.q)
                | Q(contact__contact_id=self.q)
            )
        return users

    def ordered(self, person, account):
        fields = SORTS[self.sort.lstrip("-")][1]
        if self.sort.startswith("-"):
            fields = [f"-{field}" for field in fields]
        return (
            self.matching(person, account)
            .select_related("role", "contact", "disabled_by")
            .annotate(
                last_email_status=Subquery(
                    OutboxEmail.objects.filter(user=OuterRef("pk"))
                    .order_by("-created_at", "-id")
                    .values("status")[:1]
                ),
                last_email_error=Subquery(
                    OutboxEmail.objects.filter(user=OuterRef("pk"))
                    .order_by("-created_at", "-id")
                    .values("last_error")[:1]
                ),
                invitation_expires_at=Subquery(
                    LoginToken.objects.filter(
                        user=OuterRef("pk"),
                        purpose=TokenPurpose.ACTIVATION,
                        used_at__isnull=True,
                        revoked_at__isnull=True,
                    )
                    .order_by("-created_at")
                    .values("expires_at")[:1]
                ),
            )
            .order_by(*fields)
        )

    def page(self, person, account):
        paginator = Paginator(self.ordered(person, account), PAGE_SIZE)
        return paginator.get_page(self.page_number)


def tab_counts(person, account):
    """All three tab counts in one query."""
    counts = scoping.portal_users(person, account).aggregate(
        **{tab: Count("pk", filter=condition) for tab, (_, condition) in TABS.items()}
    )
    return [(tab, label, counts[tab]) for tab, (label, _) in TABS.items()]

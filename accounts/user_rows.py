"""The rows of the Users page with every link they carry, built once per page.

A row's menu has up to seven links, each in href and hx-get, with the list's query string so a
confirmation returns to the same tab, search and page. Written as {% url %} tags they were
about 800 reverse() calls and 800 query strings a page, most of the page's time. Here the
users URL is reversed once and each row's links are that prefix plus the user id and action,
which is what the URL patterns say (accounts.urls: users/<id>/, users/<id>/<action>/);
tests/test_user_rows.py holds the two to each other."""

from dataclasses import dataclass, field
from html import escape

from django.urls import reverse
from django.utils.safestring import mark_safe

from accounts.user_actions import row_actions


@dataclass(frozen=True)
class MenuLink:
    label: str
    href: str
    danger: bool = False
    opens_dialog: bool = False  # HTMX loads it into the dialog slot


@dataclass
class UserRow:
    user: object
    href: str
    menu: list = field(default_factory=list)  # empty: the viewer's own seat

    def menu_links_html(self):
        """The menu's links as one piece of HTML: as template tags, a row's seven links were
        ~35 variable lookups, half of what a row costs to render (and format_html per link
        costs about as much again). html.escape quotes attributes too."""
        return mark_safe("".join(_link_html(link) for link in self.menu))  # noqa: S308


def _link_html(link):
    href = escape(link.href)
    dialog = f' hx-get="{href}" hx-target="#dialog-slot"' if link.opens_dialog else ""
    danger = ' class="danger-text"' if link.danger else ""
    return f'<a href="{href}"{dialog}{danger}>{escape(link.label)}</a>'


def user_rows(person, account, listing, users):
    users_url = reverse("users", args=[account.slug])
    query = listing.query_string()
    return [_row(person, account, user, users_url, query) for user in users]


def _row(person, account, user, users_url, query):
    user_url = f"{users_url}{user.pk}/"
    actions = row_actions(person, user)
    if not actions:
        return UserRow(user, user_url)
    menu = [
        MenuLink(action.label, f"{user_url}{action.name}/?{query}", action.danger, True)
        for action in actions
    ]
    if user.state != "disabled":
        menu.append(MenuLink("Sign-in links", f"{user_url}links/"))
    if user.contact_deleted:  # the fixes live with the contact, not in the lifecycle
        menu += [
            MenuLink(
                "Restore the contact…", reverse("contact", args=[account.slug, user.contact.pk])
            ),
            MenuLink(
                "Associate with another contact…",
                reverse("orphan-associate", args=[account.slug, user.pk]),
            ),
            MenuLink("Orphaned users", reverse("orphaned-users", args=[account.slug])),
        ]
    return UserRow(user, user_url, menu)

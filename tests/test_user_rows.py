"""The Users page builds its rows' links from one reversed prefix (accounts.user_rows): each
link must be exactly what the URL patterns reverse to, for every action a row can offer."""

import re
from html import unescape

from django.urls import reverse
from django.utils import timezone

from accounts.models import UserState
from accounts.user_actions import ACTIONS
from contacts.models import Contact
from tests.factories import PortalUserFactory


def menu_links(page, user):
    row = re.search(rf'<tr id="user-{user.pk}">.*?</tr>', page, re.S).group(0)
    menu = re.search(r'<div class="menu">(.*?)</div>', row, re.S).group(1)
    links = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', menu)
    return {unescape(label): unescape(href) for href, label in links}


def test_every_row_link_is_what_its_url_pattern_reverses_to(admin_client, account, partner_role):
    users = {
        state: PortalUserFactory(portal_account=account, role=partner_role, state=state)
        for state in (UserState.ENABLED, UserState.DISABLED, UserState.UNCONFIRMED)
    }
    offered = set()
    for state, user in users.items():
        query = f"tab={state}&q={user.email}&sort=-name"
        page = admin_client.get(reverse("users", args=[account.slug]) + "?" + query)
        links = menu_links(page.content.decode(), user)
        listed_query = re.search(rf'{user.pk}/\w[\w-]*/\?([^"]+)"', page.content.decode()).group(1)
        for action in ACTIONS.values():
            if action.label in links:
                offered.add(action.name)
                expected = reverse("user-action", args=[account.slug, user.pk, action.name])
                assert links[action.label] == f"{expected}?{unescape(listed_query)}"
        assert "sort=-name" in unescape(listed_query)
        assert "tab=" in unescape(listed_query)
        if state != UserState.DISABLED:
            assert links["Sign-in links"] == reverse("user-links", args=[account.slug, user.pk])
        assert f'href="{reverse("user", args=[account.slug, user.pk])}"' in page.content.decode()
    assert {"disable", "enable", "delete", "reinvite"} <= offered


def test_an_orphans_menu_links_to_its_fixes(admin_client, account, partner_role):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    Contact.objects.filter(pk=user.contact_id).update(deleted_at=timezone.now())
    page = admin_client.get(reverse("users", args=[account.slug]) + "?tab=enabled")
    links = menu_links(page.content.decode(), user)
    assert links["Restore the contact…"] == reverse("contact", args=[account.slug, user.contact_id])
    assert links["Associate with another contact…"] == reverse(
        "orphan-associate", args=[account.slug, user.pk]
    )

"""A new magic link as the console (the Sign-in links page, the contact card) and the API hand
it over: the absolute link into the portal, the section it opens, when it expires. Built once,
from the token lifecycle.issue_magic_link returns; its secret is never kept."""

from django.conf import settings
from django.urls import reverse

from accounts.models import TokenPurpose
from accounts.portal_sections import SECTIONS


def lifetime_minutes():
    """How long a new magic link works, in whole minutes (the setting)."""
    return int(settings.TOKEN_LIFETIMES[TokenPurpose.MAGIC_LINK].total_seconds() // 60)


def created(account, token):
    """What the person who created the magic link `token` (with `.secret`) is shown, once."""
    path = reverse("portal-magic-link", kwargs={"slug": account.slug, "token": token.secret})
    return {
        "url": settings.PORTAL_BASE_URL + path,
        "target": token.target,
        "section": SECTIONS.get(token.target, "Home"),
        "expires_at": token.expires_at,
        "lifetime_minutes": lifetime_minutes(),
    }

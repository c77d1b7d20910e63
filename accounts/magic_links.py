"""A new magic link as the console (the Sign-in links page, the contact card) and the API hand
it over: the absolute link into the portal, the section it opens, when it expires. Built once,
from the token lifecycle.issue_magic_link returns; its secret is never kept."""

from django.conf import settings
from django.urls import reverse

from accounts import link_lifetimes
from accounts.models import TokenPurpose
from accounts.models.access_policy import describe
from accounts.portal_sections import SECTIONS


def lifetime(account):
    """How long a new magic link of the account works, in words ("15 minutes", "3 days")."""
    return describe(link_lifetimes.lifetime(account.pk, TokenPurpose.MAGIC_LINK))


def created(account, token):
    """What the person who created the magic link `token` (with `.secret`) is shown, once."""
    path = reverse("portal-magic-link", kwargs={"slug": account.slug, "token": token.secret})
    return {
        "url": settings.PORTAL_BASE_URL + path,
        "target": token.target,
        "section": SECTIONS.get(token.target, "Home"),
        "expires_at": token.expires_at,
        "lifetime": lifetime(account),
    }

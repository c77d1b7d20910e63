from django import template

from mail import logos

register = template.Library()


@register.simple_tag
def portal_logo_path(account):
    """The path of the account's logo, or "" (one query that reads no pixels)."""
    digest = logos.digest_of(account) if account and account.pk else None
    return logos.path_of(account.slug, digest) if digest else ""

"""The portal's brand: its colour as a stylesheet (/p/<slug>/brand.css: the CSP allows styles
from this site only, so the colour comes as a file, not an inline style) and its logo."""

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET

from accounts.models import PortalAccount
from mail import brand
from mail.models import BrandLogo
from mail.sender_identity import sender_of


@require_GET
def brand_css(request, slug):
    account = get_object_or_404(PortalAccount, slug=slug)
    accent = sender_of(account).accent
    if brand.problem(accent):  # saved past the form's check: the console's colour instead
        accent = brand.DEFAULT_ACCENT
    css = f":root {{ --accent: {accent}; --accent-dark: {brand.darker(accent)}; }}\n"
    response = HttpResponse(css, content_type="text/css; charset=utf-8")
    patch_cache_control(response, public=True, max_age=300)
    return response


@require_GET
def logo(request, slug, digest):
    """The logo as mail.logos drew it. Its URL changes with the logo, so it may be cached for
    a year; emails keep pointing at an old one only until it is replaced (then 404)."""
    found = BrandLogo.objects.filter(portal_account__slug=slug, digest=digest).first()
    if found is None:
        raise Http404
    response = HttpResponse(bytes(found.png), content_type="image/png")
    # Served to mail clients and portal pages alike: an image, never anything a browser runs.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Content-Disposition"] = 'inline; filename="logo.png"'
    patch_cache_control(response, public=True, max_age=365 * 24 * 3600, immutable=True)
    return response

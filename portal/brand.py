"""The portal's brand colour as a stylesheet (/p/<slug>/brand.css): the CSP allows styles from
this site only, so the colour comes as a file, not an inline style."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET

from accounts.models import PortalAccount
from mail import brand
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

"""A portal account's logo, shown at the top of its emails and of its portal pages.

An upload is decoded and drawn again as a new PNG of at most MAX_WIDTH x MAX_HEIGHT: what is
kept and served is pixels only, never the uploaded bytes, so an SVG with a script, a file that
is an image and an HTML page at once, or a photo's EXIF location cannot reach a viewer. The
size is checked from the header before any pixel is decoded (a tiny file can declare billions
of pixels)."""

import hashlib
import io
import warnings

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from PIL import Image, UnidentifiedImageError

from accounts import audit
from mail.models import BrandLogo

MAX_UPLOAD_BYTES = 1024 * 1024
# Twice the size an email shows it at (48 px high), for sharp screens.
MAX_WIDTH, MAX_HEIGHT = 480, 96
MAX_SOURCE_PIXELS = 25_000_000
FORMATS = {"PNG", "JPEG", "GIF", "WEBP"}
TOO_MANY_PIXELS = "The image is too large: use one under 5,000 x 5,000 pixels."


class LogoProblem(ValueError):
    """What is wrong with an uploaded logo, in words for the person who sent it."""


def redrawn(upload):
    """(png bytes, width, height) of the upload drawn again; LogoProblem otherwise."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns below twice its own pixel limit: a refusal here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            source = Image.open(upload, formats=sorted(FORMATS))
        with source:
            width, height = source.size
            if width * height > MAX_SOURCE_PIXELS:
                raise LogoProblem(TOO_MANY_PIXELS)
            source.seek(0)  # the first frame of an animated GIF
            image = source.convert("RGBA")
    except LogoProblem:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise LogoProblem(TOO_MANY_PIXELS) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        # Not an image, or a broken one (Pillow's decoders raise all of these).
        raise LogoProblem("Upload a PNG, JPEG, GIF or WebP image.") from None
    image.thumbnail((MAX_WIDTH, MAX_HEIGHT), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue(), image.width, image.height


def replace(account, upload, *, by, ip=None):
    png, width, height = redrawn(upload)
    digest = hashlib.sha256(png).hexdigest()[:16]
    try:
        _save(account, png, digest, width, height, by, ip)
    except IntegrityError:
        # Another admin's first logo landed at the same moment: this one replaces it.
        _save(account, png, digest, width, height, by, ip)


def _save(account, png, digest, width, height, by, ip):
    with transaction.atomic():
        before = BrandLogo.objects.select_for_update().filter(portal_account=account)
        before = before.values_list("digest", flat=True).first()
        BrandLogo.objects.update_or_create(
            portal_account=account,
            defaults={"png": png, "digest": digest, "width": width, "height": height},
        )
        audit.record(
            "change_logo",
            by=by,
            portal_account=account,
            before={"logo": before} if before else None,
            after={"logo": digest, "size": f"{width} x {height}"},
            ip=ip,
        )


def remove(account, *, by, ip=None):
    """False when the account had no logo."""
    with transaction.atomic():
        logo = BrandLogo.objects.select_for_update().filter(portal_account=account).first()
        if logo is None:
            return False
        logo.delete()
        audit.record(
            "remove_logo", by=by, portal_account=account, before={"logo": logo.digest}, ip=ip
        )
    return True


def path_of(slug, digest):
    return reverse("portal-logo", kwargs={"slug": slug, "digest": digest})


def url_of(slug, digest):
    """The absolute address an email points at ("" without a logo)."""
    return settings.PORTAL_BASE_URL + path_of(slug, digest) if digest else ""


def digest_of(account):
    """The account's logo's digest, or None (reads no pixels)."""
    logos = BrandLogo.objects.filter(portal_account=account)
    return logos.values_list("digest", flat=True).first()


def for_settings_page(account):
    """{"path", "logo"} of the account's logo without its pixels, or None."""
    logo = BrandLogo.objects.filter(portal_account=account).defer("png").first()
    return logo and {"path": path_of(account.slug, logo.digest), "logo": logo}

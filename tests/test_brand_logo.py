"""A portal account's logo: an MSSP admin uploads an image, which is drawn again as a small PNG
(no uploaded byte is served), audited, shown at the top of every email of that account and on
its portal pages, replaced or removed; anything that is not a sane image is a form error that
changes nothing."""

import io
import struct
import zlib

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts import lifecycle
from accounts.models import AuditEvent
from mail import logos
from mail.models import BrandLogo
from tests.factories import PortalUserFactory


def image_file(size=(800, 200), fmt="PNG", name="logo.png", **save_options):
    out = io.BytesIO()
    Image.new("RGB", size, (15, 118, 110)).save(out, format=fmt, **save_options)
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/png")


def declared_png(width, height):
    """A PNG that only declares its size: its header (IHDR) and one tiny compressed row, as an
    attacker sends it (drawing a real image of that size to compress would take seconds)."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\x0f\x76\x6e" * 16)
    png = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
    return SimpleUploadedFile("logo.png", png, content_type="image/png")


def upload(client, account, file):
    url = reverse("sender-logo", args=[account.slug])
    return client.post(url, {"action": "upload", "image": file})


def test_an_uploaded_logo_is_redrawn_small_audited_and_served(admin_client, account, client):
    answer = upload(admin_client, account, image_file((1600, 400), "JPEG", "logo.jpg"))
    assert answer.status_code == 302
    logo = BrandLogo.objects.get(portal_account=account)
    assert (logo.width, logo.height) == (384, 96)
    event = AuditEvent.objects.get(action="change_logo", portal_account=account)
    assert event.after["logo"] == logo.digest
    served = client.get(logos.path_of(account.slug, logo.digest))
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert "immutable" in served["Cache-Control"]
    assert "sandbox" in served["Content-Security-Policy"]
    assert Image.open(io.BytesIO(served.content)).format == "PNG"
    page = admin_client.get(reverse("sender-identity", args=[account.slug])).content.decode()
    assert logos.path_of(account.slug, logo.digest) in page


def test_exif_and_trailing_bytes_of_the_upload_are_not_kept(admin_client, account):
    original = image_file((200, 50))
    polyglot = original.read() + b"<script>alert(1)</script>"
    upload(admin_client, account, SimpleUploadedFile("logo.png", polyglot))
    png = bytes(BrandLogo.objects.get(portal_account=account).png)
    assert b"<script>" not in png


@pytest.mark.parametrize(
    "file",
    [
        SimpleUploadedFile("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>'),
        SimpleUploadedFile("logo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),
        SimpleUploadedFile("logo.png", b""),
        SimpleUploadedFile("logo.html", b"<html>hello</html>"),
    ],
    ids=["svg", "broken png", "empty", "html"],
)
def test_what_is_not_an_image_is_a_form_error_and_changes_nothing(admin_client, account, file):
    answer = upload(admin_client, account, file)
    assert answer.status_code == 400
    assert not BrandLogo.objects.exists()
    assert not AuditEvent.objects.filter(action="change_logo").exists()


def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(admin_client, account):
    # A few dozen bytes that declare 10,000 x 10,000 pixels.
    answer = upload(admin_client, account, declared_png(10_000, 10_000))
    assert answer.status_code == 400
    assert "too large" in answer.content.decode()
    assert not BrandLogo.objects.exists()


def test_a_file_over_the_limit_is_refused_while_it_streams(admin_client, account, settings):
    big = SimpleUploadedFile("logo.png", b"\x89PNG" + b"x" * (logos.MAX_UPLOAD_BYTES + 10))
    answer = upload(admin_client, account, big)
    assert answer.status_code == 400
    assert "larger than 1 MB" in answer.content.decode()


def test_only_mssp_admins_may_change_it(technician_client, account_admin_client, account):
    for client in (technician_client, account_admin_client):
        assert upload(client, account, image_file()).status_code == 403
    assert not BrandLogo.objects.exists()


def test_another_tenant_is_a_404(admin_client, other_admin, account):
    from tests.conftest import _client_for

    assert upload(_client_for(other_admin), account, image_file()).status_code in (403, 404)
    assert not BrandLogo.objects.exists()


def test_the_logo_is_in_the_accounts_emails_and_portal_pages(
    admin_client, account, other_account, partner_role, mssp_admin, client, settings,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    upload(admin_client, account, image_file())
    digest = BrandLogo.objects.get(portal_account=account).digest
    ada = PortalUserFactory(portal_account=account, role=partner_role)
    other = PortalUserFactory(portal_account=other_account)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.send_login_email(ada, by=mssp_admin)
        lifecycle.send_login_email(other, by=mssp_admin)
    by_recipient = {message.to[0]: message.alternatives[0][0] for message in mail.outbox}
    logo_url = settings.PORTAL_BASE_URL + logos.path_of(account.slug, digest)
    assert f'<img src="{logo_url}" alt="{account.name}"' in by_recipient[ada.email]
    assert "<img" not in by_recipient[other.email]
    login_page = client.get(reverse("portal-login", args=[account.slug])).content.decode()
    assert logos.path_of(account.slug, digest) in login_page


def test_a_replaced_logo_has_a_new_address_and_the_old_one_is_gone(admin_client, account, client):
    upload(admin_client, account, image_file((300, 100)))
    first = BrandLogo.objects.get(portal_account=account).digest
    upload(admin_client, account, image_file((100, 100)))
    second = BrandLogo.objects.get(portal_account=account).digest
    assert first != second
    assert client.get(logos.path_of(account.slug, first)).status_code == 404
    assert client.get(logos.path_of(account.slug, second)).status_code == 200


def test_removing_the_logo_brings_the_name_back_and_is_audited(admin_client, account, client):
    upload(admin_client, account, image_file())
    url = reverse("sender-logo", args=[account.slug])
    assert admin_client.post(url, {"action": "remove"}).status_code == 302
    assert not BrandLogo.objects.exists()
    assert AuditEvent.objects.filter(action="remove_logo", portal_account=account).exists()
    login_page = client.get(reverse("portal-login", args=[account.slug])).content.decode()
    assert "brand-logo" not in login_page
    # Removing again is a no-op, not an error.
    assert admin_client.post(url, {"action": "remove"}).status_code == 302
    assert AuditEvent.objects.filter(action="remove_logo").count() == 1


def test_a_get_is_not_allowed(admin_client, account):
    assert admin_client.get(reverse("sender-logo", args=[account.slug])).status_code == 405


@pytest.mark.parametrize("digest", ["%00", "x" * 5000, "0123456789abcdeg"])
def test_a_logo_address_that_cannot_be_one_is_a_404(client, account, digest):
    url = reverse("portal-logo", args=[account.slug, "0" * 16]).replace("0" * 16, digest)
    assert client.get(url).status_code == 404

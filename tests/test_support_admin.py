import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import PortalAccount
from tests.factories import PortalUserFactory

PROJECT_APPS = ("accounts", "contacts", "imports", "api")


def project_models():
    return [m for m in apps.get_models() if m._meta.app_label in PROJECT_APPS]


def test_every_model_is_registered():
    assert {m for m in project_models()} <= set(admin.site._registry)


def changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


# What the console shows MSSP admins only: the whole audit log, API tokens, sessions and IPs.
MSSP_ADMINS_ONLY = {"accounts.AuditEvent", "api.ApiToken", "accounts.SignedInSession"}


def test_mssp_admins_can_browse_every_model(admin_client, account_admin):
    for model in project_models():
        assert admin_client.get(changelist(model)).status_code == 200, changelist(model)


def test_technicians_browse_all_but_what_the_console_keeps_for_mssp_admins(
    technician_client, account_admin
):
    for model in project_models():
        status = technician_client.get(changelist(model)).status_code
        assert status == (403 if model._meta.label in MSSP_ADMINS_ONLY else 200), model
    index = technician_client.get(reverse("admin:index")).content.decode()
    assert "Audit events" not in index
    assert "/support/api/apitoken/" not in index


def test_portal_users_are_read_only_here(admin_client, account, partner_role):
    user = PortalUserFactory(portal_account=account, role=partner_role)
    url = reverse("admin:accounts_user_change", args=[user.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert (
        admin_client.post(reverse("admin:accounts_user_delete", args=[user.pk])).status_code == 403
    )


def test_account_admins_cannot_enter_the_support_admin(account_admin_client):
    response = account_admin_client.get(reverse("admin:index"))
    assert response.status_code == 302


@pytest.mark.parametrize("model", ["portalaccount", "role", "user", "apitoken", "contact"])
def test_nothing_the_console_manages_can_be_added_here(model):
    request = RequestFactory().get("/support/")
    request.user = AnonymousUser()
    registered = {m._meta.model_name: a for m, a in admin.site._registry.items()}
    assert registered[model].has_add_permission(request) is False


def test_an_mssp_superuser_cannot_create_an_account_with_a_reserved_slug_here(
    admin_client, mssp_admin
):
    mssp_admin.is_superuser = True
    mssp_admin.save(update_fields=["is_superuser"])
    form = {"name": "Sneaky", "slug": "new", "partner_licenses": 2_000_000_000}

    response = admin_client.post(reverse("admin:accounts_portalaccount_add"), form)

    assert response.status_code == 403
    assert not PortalAccount.objects.filter(slug="new").exists()


def test_an_mssp_superuser_cannot_change_licenses_here(admin_client, mssp_admin, account):
    mssp_admin.is_superuser = True
    mssp_admin.save(update_fields=["is_superuser"])
    url = reverse("admin:accounts_portalaccount_change", args=[account.pk])
    before = account.partner_licenses

    page = admin_client.get(url)
    admin_client.post(url, {"name": account.name, "slug": account.slug, "partner_licenses": 9})

    assert 'name="_save"' not in page.content.decode()
    account.refresh_from_db()
    assert account.partner_licenses == before


def test_every_model_on_the_support_site_is_read_only_and_no_second_factor_is_there(mssp_admin):
    """Whatever registers itself on the admin (a library's admin module too) is either read-only
    here or not here: the authenticator keys and recovery codes of django-otp are not shown."""
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    mssp_admin.is_superuser = True
    request = RequestFactory().get("/support/")
    request.user = mssp_admin
    for model, model_admin in admin.site._registry.items():
        assert model_admin.has_add_permission(request) is False, model
        assert model_admin.has_change_permission(request) is False, model
        assert model_admin.has_delete_permission(request) is False, model
    assert not {TOTPDevice, StaticDevice} & set(admin.site._registry)


def test_the_support_admin_changes_no_password(admin_client, mssp_admin):
    response = admin_client.post(
        reverse("admin:password_change"),
        {"old_password": "x", "new_password1": "a-new-pass-123", "new_password2": "a-new-pass-123"},
    )
    assert response.status_code == 404


def test_a_list_filters_only_by_what_it_offers_never_by_a_secret(technician_client, mssp_admin):
    """Django lets a URL filter a list by any field of its model: asking for
    `password__startswith=` one character at a time read out a password hash. Only the
    offered filters pass; anything else is refused."""
    users = reverse("admin:accounts_user_changelist")
    tokens = reverse("admin:accounts_logintoken_changelist")
    for url, lookup in (
        (users, "password__startswith=pbkdf2"),
        (users, "password__regex=^p"),
        (users, "email__startswith=" + mssp_admin.email[:3]),
        (tokens, "token_hash__startswith=a"),
    ):
        assert technician_client.get(f"{url}?{lookup}").status_code == 400, lookup
    assert technician_client.get(f"{users}?kind__exact=mssp_admin").status_code == 200
    assert technician_client.get(f"{users}?portal_account__id__exact=1").status_code == 200


def test_the_support_admin_offers_no_password_change(technician_client):
    page = technician_client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:password_change") not in page
    assert reverse("admin:logout") in page

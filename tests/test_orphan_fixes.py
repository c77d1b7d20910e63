"""The orphan fixes for many at once: restore the deleted contacts of one CRM account, or
disable every orphaned user; a confirmation first, each user's outcome after, one transaction
and audit event per user, and at most BULK_ACTION_MAX_USERS a run."""

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, UserState
from contacts import orphan_fixes
from contacts.models import Contact
from tests.conftest import _client_for
from tests.factories import PortalUserFactory


def orphan(account, role, name, crm="Acme Corp", state=UserState.ENABLED):
    user = PortalUserFactory(portal_account=account, role=role, name=name, state=state)
    Contact.objects.filter(pk=user.contact_id).update(
        deleted_at=timezone.now(), crm_account_name=crm
    )
    user.refresh_from_db()
    return user


def fix_url(account, fix):
    return reverse("orphan-fix", args=[account.slug, fix])


def is_deleted(user):
    return Contact.objects.get(pk=user.contact_id).deleted_at is not None


@pytest.fixture
def orphans(account, partner_role):
    return {
        "ada": orphan(account, partner_role, "Ada Acme"),
        "dan": orphan(account, partner_role, "Dan Acme", state=UserState.DISABLED),
        "una": orphan(account, partner_role, "Una Acme", state=UserState.UNCONFIRMED),
        "gil": orphan(account, partner_role, "Gil Globex", crm="Globex"),
    }


def test_the_orphaned_users_page_offers_the_crm_accounts_of_its_orphans(
    admin_client, account, orphans
):
    page = admin_client.get(reverse("orphaned-users", args=[account.slug])).content.decode()
    assert "<option>Acme Corp</option><option>Globex</option>" in page
    assert fix_url(account, "disable-all") in page


def test_restoring_a_crm_accounts_contacts_asks_first_then_restores_only_those(
    admin_client, account, orphans
):
    asked = admin_client.get(fix_url(account, "restore-crm-account"), {"crm_account": "Acme Corp"})
    assert asked.status_code == 200
    text = asked.content.decode()
    assert "3 orphaned users of Acme Corp:" in text
    assert all(f"{name} Acme" in text for name in ("Ada", "Dan", "Una"))
    assert "Gil Globex" not in text
    assert all(is_deleted(user) for user in orphans.values())  # asking changed nothing

    done = admin_client.post(
        fix_url(account, "restore-crm-account"), {"crm_account": "Acme Corp", "confirmed": "1"}
    )
    assert done.status_code == 200
    assert "3 done" in done.content.decode()
    assert not any(is_deleted(orphans[name]) for name in ("ada", "dan", "una"))
    assert is_deleted(orphans["gil"])
    restored = AuditEvent.objects.filter(action="restore_contact", portal_account=account)
    assert restored.count() == 3
    states = dict(
        (name, type(user).objects.get(pk=user.pk).state) for name, user in orphans.items()
    )
    assert states["dan"] == UserState.DISABLED  # restored, but disabled as before


def test_disabling_every_orphan_leaves_the_disabled_and_the_others_alone(
    admin_client, account, orphans, partner_role
):
    bystander = PortalUserFactory(portal_account=account, role=partner_role)
    done = admin_client.post(fix_url(account, "disable-all"), {"confirmed": "1"})
    assert done.status_code == 200
    assert "3 done" in done.content.decode()
    for name in ("ada", "una", "gil"):
        orphans[name].refresh_from_db()
        assert orphans[name].state == UserState.DISABLED
    bystander.refresh_from_db()
    assert bystander.state == UserState.ENABLED
    assert AuditEvent.objects.filter(action="disable", portal_account=account).count() == 3


def test_one_refusal_is_that_rows_outcome_and_stops_nobody_else(mssp_admin, account, orphans):
    listed = list(orphan_fixes.orphans_to_disable(mssp_admin, account))
    # Disabled by someone else between the list and the run.
    type(orphans["ada"]).objects.filter(pk=orphans["ada"].pk).update(state=UserState.DISABLED)
    outcomes = {o.user.name: o for o in orphan_fixes.disable_users(mssp_admin, listed)}
    assert not outcomes["Ada Acme"].done
    assert "disable" in outcomes["Ada Acme"].text.lower()
    assert outcomes["Una Acme"].done
    assert outcomes["Gil Globex"].done


def test_a_run_takes_at_most_the_bulk_limit_and_says_what_is_left(
    admin_client, account, orphans, settings
):
    settings.BULK_ACTION_MAX_USERS = 2
    asked = admin_client.get(fix_url(account, "disable-all")).content.decode()
    assert "2+ orphaned users" in asked
    first = admin_client.post(fix_url(account, "disable-all"), {"confirmed": "1"})
    assert "Run it again for the rest" in first.content.decode()
    second = admin_client.post(fix_url(account, "disable-all"), {"confirmed": "1"})
    assert "1 done" in second.content.decode()
    assert "Run it again" not in second.content.decode()


def test_a_crm_account_without_orphans_changes_nothing_and_says_why(admin_client, account, orphans):
    answer = admin_client.post(
        fix_url(account, "restore-crm-account"), {"crm_account": "Initech", "confirmed": "1"}
    )
    assert answer.status_code == 400
    assert "pick a CRM account" in answer.content.decode()
    assert "Restore contacts</button>" not in answer.content.decode()
    assert all(is_deleted(user) for user in orphans.values())


def test_another_tenants_admin_gets_404_and_changes_nothing(account, other_admin, orphans):
    answer = _client_for(other_admin).post(fix_url(account, "disable-all"), {"confirmed": "1"})
    assert answer.status_code == 404
    orphans["ada"].refresh_from_db()
    assert orphans["ada"].state == UserState.ENABLED


def test_an_unknown_fix_is_404(admin_client, account):
    assert admin_client.get(fix_url(account, "delete-everyone")).status_code == 404

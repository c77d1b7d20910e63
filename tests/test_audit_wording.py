"""The audit log reads in one voice: every stored action code has a label in the past tense,
sentence case, and a value that is itself a set of values is listed field by field (never a
Python dict)."""

import re
from pathlib import Path

from django.urls import reverse

from accounts import audit
from accounts.views.audit import ACTION_LABELS, changes
from tests.factories import PortalUserFactory

ROOT = Path(__file__).resolve().parents[1]
APPS = ["accounts", "api", "contacts", "imports", "mail", "operations", "portal", "webhooks"]
# Verbs whose past tense does not end in -ed.
IRREGULAR = {"Made", "Set", "Sent", "Split"}
# Codes written where the scan does not look: a role form picks its code in a conditional, and
# migration 0015 wrote the role splits once.
ROLE_ACTIONS = {"create_role", "rename_role", "change_role_type", "set_role_type", "split_role"}


def recorded_actions():
    """The action codes the code base writes: the literals given to audit.record (also in a
    conditional) and the ones bulk inserts use."""
    codes = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            for call in re.finditer(r"audit\.record\(\s*([^,]+),", text):
                codes.update(re.findall(r'"([a-z_]+)"', call.group(1)))
            codes.update(re.findall(r'\(\s*(?:line, )?"((?:create|update)_contact|invite)",', text))
    return codes


def test_the_scan_finds_the_actions_it_should():
    found = recorded_actions()
    assert {"invite", "send_login_email", "create_contact", "merge_contacts"} <= found
    assert {"send_access_blocked", "discard_import", "activate_role"} <= found


def test_every_recorded_action_has_a_past_tense_sentence_case_label():
    for code in recorded_actions() | ROLE_ACTIONS:
        label = ACTION_LABELS.get(code)
        assert label, f"{code} has no label"
        first, *rest = label.split()
        assert first.endswith("ed") or first in IRREGULAR, label
        assert first[0].isupper(), label
        assert all(not word[0].isupper() or word in {"CRM", "API"} for word in rest), label


def test_a_nested_value_is_listed_field_by_field():
    before = {"loser": {"name": "Ada", "email": "a@x.example"}, "user": None}
    after = {"loser": {"name": "Ada", "email": "b@x.example"}, "user": {"state": "enabled"}}
    rows = changes(before, after)
    assert ("loser email", "a@x.example", "b@x.example") in rows
    assert ("user state", None, "enabled") in rows
    assert not any("{" in str(value) for row in rows for value in row)


def test_the_log_and_the_user_page_show_labels_not_codes(
    technician_client, technician, account, partner_role
):
    grace = PortalUserFactory(portal_account=account, role=partner_role, name="Grace Hopper")
    audit.record(
        "merge_contacts",
        by=technician,
        subject=grace,
        before={"loser": {"name": "Old"}, "user": None},
        after={"loser": {"name": "Old", "deleted": True}, "user": None},
    )
    audit.record("send_login_email", by=technician, subject=grace)
    log = technician_client.get(reverse("audit-log", args=["acme"])).content.decode()
    assert "Merged contacts" in log
    assert "loser deleted" in log
    assert "{&#x27;" not in log
    page = technician_client.get(reverse("user", args=["acme", grace.pk])).content.decode()
    assert "Sent login email" in page
    assert "send_login_email" not in page
    assert "Merged contacts" in page

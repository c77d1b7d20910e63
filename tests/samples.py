"""The shared import sample files (see shared/samples/README.md). They live beside the repository,
not in it: CI clones the repo with `shared/` next to it, so from the repo root they are at
`../shared/samples`. Locally the tests that need them skip when the folder is missing; in CI
(CI=true) they fail instead, so a broken checkout cannot pass by skipping."""

import csv
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from accounts.models import Role, UserType
from contacts.models import Contact
from tests.factories import PortalUserFactory

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "shared" / "samples"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def samples_dir():
    if not SAMPLES_DIR.is_dir():
        missing = f"The shared sample folder {SAMPLES_DIR} is missing"
        if IN_CI:
            pytest.fail(f"{missing}; CI clones shared/ beside the repository.", pytrace=False)
        pytest.skip(f"{missing} (runs in CI)")
    return SAMPLES_DIR


def sample_path(name):
    """A sample file; a file missing from a folder that exists is always a failure."""
    path = samples_dir() / name
    if not path.is_file():
        pytest.fail(f"The sample file {name} is missing from {SAMPLES_DIR}", pytrace=False)
    return path


def sample_rows(name):
    """The rows of a sample CSV as dicts."""
    with sample_path(name).open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


# roles.csv has no type column (the shared samples predate role types): "Customer User" is the
# customer role, the others are partner roles.
SAMPLE_ROLE_TYPES = {"Customer User": UserType.CUSTOMER}


def load_world(account):
    """The samples' world in `account`: its roles and contacts (some deleted, some with users)."""
    roles = {}
    for row in sample_rows("roles.csv"):
        roles[row["name"]] = Role.objects.create(
            portal_account=account,
            name=row["name"],
            user_type=SAMPLE_ROLE_TYPES.get(row["name"], UserType.PARTNER),
            active=row["active"] == "yes",
        )
    for row in sample_rows("contacts.csv"):
        contact = Contact.objects.create(
            portal_account=account,
            contact_id=row["contact_id"],
            salesforce_id=row["salesforce_id"],
            name=row["name"],
            email=row["email"],
            crm_account_name=row["crm_account"],
            deleted_at=datetime(2025, 1, 1, tzinfo=UTC) if row["deleted"] == "yes" else None,
        )
        if row["has_user"] == "yes":
            PortalUserFactory(
                portal_account=account,
                contact=contact,
                name=contact.name,
                email=contact.email,
                role=roles["Partner User"],
            )
    return roles

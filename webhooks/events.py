"""Which changes become webhook events, and what their payloads say.

A change's deliveries are written in the change's own transaction: accounts.audit sends
`recorded` as it writes the audit event, and `on_audit_recorded` turns the events an account's
active endpoints subscribe to into Delivery rows. A change that rolls back takes its deliveries
with it; a change that commits hands them to the worker (webhooks.tasks) once it has. The
import's end is not an audit event: imports calls `import_finished` in the transaction that
marks the job done or failed."""

import datetime
import uuid
from collections import defaultdict

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User, UserKind
from helpers.bulk_sql import any_of, insert
from webhooks import tasks
from webhooks.models import Delivery, Endpoint, EventType

# The audit actions that are webhook events. The policies' disables and enables go through
# the same lifecycle verbs, so they are covered too.
_TYPES = {
    "invite": EventType.USER_INVITED,
    "activate": EventType.USER_ACTIVATED,
    "disable": EventType.USER_DISABLED,
    "enable": EventType.USER_ENABLED,
    "delete": EventType.USER_DELETED,
    "change_role": EventType.USER_ROLE_CHANGED,
    "sign_in": EventType.USER_SIGNED_IN,
    "email_bounced": EventType.USER_EMAIL_BOUNCED,
}


# Up to this many users or rows: plain SQL (a list of ids, an INSERT); more, an import batch's,
# go through helpers.bulk_sql (one JSON parameter, COPY), which costs more to set up.
FEW = 20


def new_event_id():
    return "evt_" + uuid.uuid4().hex


def timestamp(moment):
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def user_data(user, *, state=None):
    contact = user.contact
    return {
        "id": user.pk,
        "email": user.email,
        "name": user.name,
        "state": state or user.state,
        "role": user.role.name if user.role_id else None,
        "user_type": user.user_type or None,
        "is_account_admin": user.is_account_admin,
        "contact_id": contact.contact_id if contact else None,
        "salesforce_id": (contact.salesforce_id or None) if contact else None,
    }


def payload(event_type, account_slug, data, *, event_id=None, occurred_at=None):
    return {
        "id": event_id or new_event_id(),
        "type": str(event_type),
        "occurred_at": timestamp(occurred_at or timezone.now()),
        "portal_account": account_slug,
        "data": data,
    }


def _event_data(event_type, user, recorded):
    if event_type == EventType.USER_DELETED:
        data = {"user": user_data(user, state="deleted")}
    else:
        data = {"user": user_data(user)}
    before, after = recorded.before or {}, recorded.after or {}
    if event_type == EventType.USER_ROLE_CHANGED:
        data["previous"] = {
            "role": before.get("role"),
            "user_type": before.get("user_type", user.user_type or None),
        }
    elif event_type == EventType.USER_SIGNED_IN:
        data["sign_in"] = {"door": after.get("door", ""), "method": after.get("method", "")}
    elif event_type == EventType.USER_EMAIL_BOUNCED:
        data["bounce"] = {"email": after.get("email", ""), "reply": after.get("reply", "")}
    return data


def on_audit_recorded(sender, events, **kwargs):
    wanted = defaultdict(list)  # portal account id -> [(event type, Recorded)]
    for recorded in events:
        event_type = _TYPES.get(recorded.action)
        if event_type and recorded.portal_account_id and recorded.user_id:
            wanted[recorded.portal_account_id].append((event_type, recorded))
    for account_id, items in wanted.items():
        endpoints = subscribed(account_id, {event_type for event_type, _ in items})
        if not endpoints:
            continue
        ids = list({r.user_id for _, r in items})
        # A list for one change's user (a primary-key lookup); any_of for an import batch's.
        users = (
            User.objects.filter(pk__in=ids if len(ids) <= FEW else any_of(ids))
            .filter(kind=UserKind.PORTAL)
            .select_related("role", "contact", "portal_account")
            .in_bulk()
        )
        made = []
        for event_type, recorded in items:
            user = users.get(recorded.user_id)
            if user is not None:
                data = _event_data(event_type, user, recorded)
                made.append(payload(event_type, user.portal_account.slug, data))
        write(account_id, endpoints, made)


def subscribed(account_id, event_types):
    """{event type: [endpoint ids]} of the account's active endpoints, for these types: one
    query on the (portal_account, active) index of a table with a few rows per account."""
    found = defaultdict(list)
    rows = Endpoint.objects.filter(portal_account_id=account_id, active=True)
    for endpoint_id, types in rows.values_list("id", "events"):
        for event_type in event_types:
            if event_type in types:
                found[event_type].append(endpoint_id)
    return found


def write(account_id, endpoints, payloads):
    """A Delivery per payload and endpoint subscribed to its type; handed to the worker when
    the surrounding transaction commits."""
    now = timezone.now()
    rows = [
        (account_id, endpoint_id, body["id"], body["type"], body, now)
        for body in payloads
        for endpoint_id in endpoints.get(body["type"], ())
    ]
    if not rows:
        return
    fields = ("portal_account_id", "endpoint_id", "event_id", "event_type", "payload")
    fields += ("next_attempt_at",)
    if len(rows) > FEW:
        with transaction.atomic():
            insert(Delivery, fields, rows)
    else:  # one change's few rows: one INSERT costs less than setting up a COPY
        Delivery.objects.bulk_create(Delivery(**dict(zip(fields, r, strict=True))) for r in rows)
    wake_on_commit()


def import_finished(job):
    """import.finished for an import that ended (done or failed): call it in the transaction
    that marks the job."""
    endpoints = subscribed(job.portal_account_id, {EventType.IMPORT_FINISHED})
    if not endpoints:
        return
    data = {
        "import": {
            "id": job.pk,
            "target": job.target,
            "status": job.status,
            "file_name": job.original_filename,
            "total_rows": job.total_rows,
            "processed": job.processed,
            "created": job.created,
            "failed": job.failed,
            "started_at": timestamp(job.started_at) if job.started_at else None,
            "finished_at": timestamp(job.finished_at) if job.finished_at else None,
            "error": job.error_message or None,
        }
    }
    write(
        job.portal_account_id,
        endpoints,
        [payload(EventType.IMPORT_FINISHED, job.portal_account.slug, data)],
    )


def wake_on_commit():
    """Once the transaction commits, a worker sends what it wrote: one task per transaction,
    however many deliveries (a 5,000-user import batch). The callback list and the savepoints
    tell whether this transaction already has its wake-up (a rolled-back savepoint drops one)."""
    savepoints = set(connection.savepoint_ids)
    earlier = connection.__dict__.get("webhooks_wake_on_commit")
    if earlier and earlier[0] is connection.run_on_commit and earlier[1] <= savepoints:
        return
    transaction.on_commit(tasks.wake)
    if connection.in_atomic_block:
        connection.webhooks_wake_on_commit = (connection.run_on_commit, savepoints)

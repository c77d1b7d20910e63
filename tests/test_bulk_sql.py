"""`helpers.bulk_sql.insert`: on PostgreSQL the rows go through COPY as text built by hand
(a column at a time, the columns with one value for every row written once), so what comes back
must be exactly what went in, awkward characters included."""

from django.utils import timezone

from accounts.models import AuditEvent, User
from helpers.bulk_sql import insert
from tests.factories import PortalAccountFactory, StaffFactory

AWKWARD = [
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "back\\slash \\N \\t",
    "ünïcödé ✓ 名前",
    "",
    "=1+2",
    "quote \" and ' and ,",
]


def test_insert_writes_every_value_as_given(db):
    account = PortalAccountFactory()
    actor = StaffFactory()
    start = timezone.now()
    fields = (
        "action",
        "actor_id",
        "actor_label",
        "portal_account_id",
        "subject_label",
        "before",
        "after",
        "ip_address",
        "detail",
    )
    shared = {"role": 'Partner "A" \\ B\tC'}
    rows = [
        (
            "invite",
            actor.pk,
            "same for every row",
            account.pk,
            label,
            shared,
            {"label": label, "n": index},
            None if index % 2 else "10.0.0.1",
            label * 2,
        )
        for index, label in enumerate(AWKWARD)
    ]

    ids = insert(AuditEvent, fields, rows, returning_ids=True)

    assert len(set(ids)) == len(rows)
    stored = {event.pk: event for event in AuditEvent.objects.filter(pk__in=ids)}
    for pk, row in zip(ids, rows, strict=True):
        event = stored[pk]
        assert (
            event.action,
            event.actor_id,
            event.actor_label,
            event.portal_account_id,
            event.subject_label,
            event.before,
            event.after,
            event.ip_address,
            event.detail,
        ) == row
        assert event.outcome == AuditEvent.Outcome.SUCCESS  # the field's default
        assert event.user_agent == ""
        assert event.subject_user_id is None
        assert start <= event.created_at <= timezone.now()  # auto_now_add, one time for all


def test_insert_of_one_row_and_of_rows_that_are_all_alike(db):
    account = PortalAccountFactory()
    fields = ("action", "portal_account_id", "detail")
    insert(AuditEvent, fields, [("one", account.pk, "x\ty")])
    insert(AuditEvent, fields, [("same", account.pk, "a\\b")] * 3)

    assert list(AuditEvent.objects.filter(action="one").values_list("detail", flat=True)) == [
        "x\ty"
    ]
    assert (
        list(AuditEvent.objects.filter(action="same").values_list("detail", flat=True))
        == ["a\\b"] * 3
    )


def test_insert_of_a_type_it_does_not_write_as_text(db):
    """A value of another type (a str subclass here) goes through psycopg's own formatting."""
    account = PortalAccountFactory()
    kind = User._meta.get_field("kind")
    fields = ("action", "portal_account_id", "detail")
    insert(AuditEvent, fields, [("sub", account.pk, kind.choices[0][0].__class__("plain"))] * 2)
    assert AuditEvent.objects.filter(action="sub", detail="plain").count() == 2


def test_insert_new_skips_the_rows_already_there_and_fills_the_defaults(account, partner_role):
    """The batch sender's tokens: an email sent again mints the token it minted before."""
    from datetime import timedelta

    from accounts.models import LoginToken
    from helpers.bulk_sql import insert_new
    from tests.factories import PortalUserFactory

    user = PortalUserFactory(portal_account=account, role=partner_role)
    expires = timezone.now() + timedelta(days=3)
    before = timezone.now()
    fields = ("token_hash", "user_id", "purpose", "target", "expires_at")
    insert_new(LoginToken, fields, [("a" * 64, user.pk, "activation", "", expires)])
    kept = LoginToken.objects.get(token_hash="a" * 64)
    kept.failed_attempts = 2
    kept.save()

    insert_new(
        LoginToken,
        fields,
        [
            ("a" * 64, user.pk, "magic_link", "again", expires),  # there already: skipped
            ("b" * 64, user.pk, "magic_link", "tab\t'quote'\\", expires),
        ],
    )

    tokens = {token.token_hash[0]: token for token in LoginToken.objects.filter(user=user)}
    assert set(tokens) == {"a", "b"}
    assert (tokens["a"].purpose, tokens["a"].failed_attempts) == ("activation", 2)
    new = tokens["b"]
    assert (new.purpose, new.target, new.expires_at) == ("magic_link", "tab\t'quote'\\", expires)
    assert (new.failed_attempts, new.used_at, new.revoked_at) == (0, None, None)
    assert new.created_at >= before


def test_any_of_nothing_matches_nothing(account, partner_role):
    """The batch sender's claim when the pace defers every row: an empty list of ids. On
    PostgreSQL an empty JSON array's elements were text, and `id IN (text)` an error."""
    from helpers.bulk_sql import any_of
    from tests.factories import PortalUserFactory

    user = PortalUserFactory(portal_account=account, role=partner_role)
    assert User.objects.filter(pk__in=any_of([])).update(name="nobody") == 0
    assert not User.objects.filter(email__in=any_of(iter(()))).exists()
    assert list(User.objects.filter(pk__in=any_of([user.pk])).values_list("pk", flat=True)) == [
        user.pk
    ]


def test_insert_new_gives_a_json_column_left_out_its_default_as_json(account):
    from accounts.models import OutboxEmail
    from helpers.bulk_sql import insert_new

    insert_new(
        OutboxEmail,
        ("portal_account_id", "to_email", "kind"),
        [(account.pk, "pia@acme.example", "login_email")],
    )
    row = OutboxEmail.objects.get(to_email="pia@acme.example")
    assert (row.context, row.status, row.attempts) == ({}, "pending", 0)

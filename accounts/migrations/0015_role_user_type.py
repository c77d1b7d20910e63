"""A role belongs to one user type (Role.user_type). Existing roles take the type of their users:

- a role whose users all have one type gets that type;
- a role whose users have several types is split: it keeps the type most of its users have
  (ties: partner, customer, employee), and for each other type a new role "Name (Customer)"
  (same active flag) takes that type's users;
- a role with no users gets the type most of its account's users have, or partner.

Every split and every guessed type is printed (in migrate's output) and written to the
account's audit log as a "split_role" or "set_role_type" event, so an operator can see what
changed and rename or retype the roles afterwards. Reads the users once, grouped by role
and type (one scan however large the accounts), and moves users with one UPDATE per new role."""

from collections import Counter, defaultdict

from django.db import migrations, models

TYPES = ("partner", "customer", "employee")
LABELS = {"partner": "Partner", "customer": "Customer", "employee": "Employee"}


def _say(message):
    print(f"\n  {message}", end="")


def _free_name(taken, wanted):
    name, n = wanted[:100], 1
    while name in taken:
        n += 1
        suffix = f" {n}"
        name = wanted[: 100 - len(suffix)] + suffix
    taken.add(name)
    return name


def _most_common(counts):
    # Highest count first; equal counts in the order of TYPES.
    return max(TYPES, key=lambda t: (counts.get(t, 0), -TYPES.index(t)))


def give_roles_types(apps, schema_editor):
    Role = apps.get_model("accounts", "Role")
    User = apps.get_model("accounts", "User")
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    PortalAccount = apps.get_model("accounts", "PortalAccount")
    slugs = dict(PortalAccount.objects.values_list("pk", "slug"))

    per_role = defaultdict(Counter)  # role id -> {user type: users}
    per_account = defaultdict(Counter)  # account id -> {user type: users}
    grouped = (
        User.objects.filter(kind="portal")
        .exclude(role=None)
        .values_list("portal_account_id", "role_id", "user_type")
        .annotate(n=models.Count("pk"))
        .order_by()
    )
    for account_id, role_id, user_type, n in grouped:
        per_role[role_id][user_type] += n
        per_account[account_id][user_type] += n
    names = defaultdict(set)
    for account_id, name in Role.objects.values_list("portal_account_id", "name"):
        names[account_id].add(name)

    def audit(role, action, after, detail):
        AuditEvent.objects.create(
            actor_label="migration accounts.0015_role_user_type",
            portal_account_id=role.portal_account_id,
            action=action,
            before={"name": role.name},
            after=after,
            detail=detail,
        )

    for role in Role.objects.order_by("pk").iterator():
        where = slugs[role.portal_account_id]
        counts = per_role.get(role.pk)
        if not counts:
            account_counts = per_account.get(role.portal_account_id)
            role.user_type = _most_common(account_counts) if account_counts else "partner"
            role.save(update_fields=["user_type"])
            why = "its account's most common" if account_counts else "the default"
            message = (
                f"Role '{role.name}' (account {where}) has no users: it is now "
                f"a {LABELS[role.user_type]} role ({why} user type). Change it on the Roles "
                "page if that is wrong."
            )
            _say(message)
            audit(role, "set_role_type", {"user_type": role.user_type}, message)
            continue
        keep = _most_common(counts)
        role.user_type = keep
        role.save(update_fields=["user_type"])
        for user_type in TYPES:
            if user_type == keep or not counts.get(user_type):
                continue
            name = _free_name(names[role.portal_account_id], f"{role.name} ({LABELS[user_type]})")
            new = Role.objects.create(
                portal_account_id=role.portal_account_id,
                name=name,
                user_type=user_type,
                active=role.active,
            )
            moved = User.objects.filter(role=role, user_type=user_type).update(role=new)
            message = (
                f"Role '{role.name}' (account {where}) had users of several "
                f"types: it stays a {LABELS[keep]} role, and its {moved} {LABELS[user_type]} "
                f"user(s) now have the new role '{name}'."
            )
            _say(message)
            audit(role, "split_role", {"name": name, "user_type": user_type}, message)
    if schema_editor is not None and schema_editor.connection.vendor == "postgresql":
        # The new roles and moved users left deferred foreign-key checks pending, and PostgreSQL
        # refuses the ALTER TABLE below while any are: run them now.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0014_users_page_sort_indexes")]

    operations = [
        migrations.AddField(
            model_name="role",
            name="user_type",
            field=models.CharField(
                choices=[("partner", "Partner"), ("customer", "Customer"), ("employee", "Employee")],
                default="partner",
                max_length=20,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(give_roles_types, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="role",
            constraint=models.CheckConstraint(
                condition=models.Q(user_type__in=["partner", "customer", "employee"]),
                name="role_has_user_type",
            ),
        ),
    ]

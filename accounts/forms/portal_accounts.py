"""Portal accounts and their roles: the forms, and saving them with their audit events."""

import re
from copy import copy

from django import forms
from django.core.validators import MaxValueValidator
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts import audit, licenses, scoping
from accounts.models import PortalAccount, Role, User, UserType
from helpers.one_line_text import refuse_control_characters

ACCOUNT_FIELDS = [
    "name",
    "slug",
    "partner_licenses",
    "customer_licenses",
    "employee_licenses",
    "require_two_factor",
]
# More seats than any real contract; it keeps a typo from overflowing the database column.
MAX_LICENSES = 1_000_000
# Slugs that would shadow a console URL under /accounts/ (accounts/new/ is the create page).
RESERVED_SLUGS = {"new"}
_PORTAL_URL_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
SLUG_RULE = (
    "Use lowercase letters and numbers, with single hyphens between them (no spaces, "
    "underscores or other signs), e.g. acme-partners."
)


def account_snapshot(account):
    return {field: getattr(account, field) for field in ACCOUNT_FIELDS}


def _changes(before, after):
    changed = [field for field in ACCOUNT_FIELDS if before[field] != after[field]]
    return {f: before[f] for f in changed}, {f: after[f] for f in changed}


def suggest_slug(name):
    """A free slug made from the name: 'Acme Partners' -> 'acme-partners', else '...-2'."""
    base = re.sub(r"[-_]+", "-", slugify(name))[:55].strip("-")  # slugify keeps underscores
    if not base:
        return ""
    slug, n = base, 1
    while slug in RESERVED_SLUGS or PortalAccount.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


class PortalAccountForm(forms.ModelForm):
    class Meta:
        model = PortalAccount
        fields = ACCOUNT_FIELDS
        labels = {
            "name": "Name",
            "slug": "Portal URL name",
            "partner_licenses": "Partner licenses",
            "customer_licenses": "Customer licenses",
            "employee_licenses": "Employee licenses",
            "require_two_factor": "The account admin must sign in with two-factor",
        }
        error_messages = {
            "slug": {
                "invalid": SLUG_RULE,
                "unique": "Another portal account has this portal URL name. Pick another.",
            }
        }
        help_texts = {
            "slug": "Lowercase letters, numbers and hyphens; the portal is at /p/<name>/.",
            "require_two_factor": "An authenticator app code after the password, at every "
            "console sign-in; an admin without one sets it up at their next sign-in.",
        }

    def __init__(self, *args, instance=None, **kwargs):
        # Validation writes the posted values onto the instance; a copy keeps the page's own
        # account (its heading and links) as saved when the form comes back with errors.
        super().__init__(*args, instance=copy(instance) if instance else None, **kwargs)
        creating = self.instance.pk is None
        self.fields["slug"].required = not creating
        if creating:
            self.fields[
                "slug"
            ].help_text = (
                "Lowercase letters, numbers and hyphens. Leave empty to make one from the name."
            )
        else:
            self.fields[
                "slug"
            ].help_text = "Changing it moves the portal: links in emails already sent stop working."
        self.fields["name"].validators.append(refuse_control_characters)
        for user_type in UserType:
            field = self.fields[f"{user_type}_licenses"]
            field.max_value = MAX_LICENSES
            field.validators.append(MaxValueValidator(MAX_LICENSES))
            field.widget.attrs.update(min=0, max=MAX_LICENSES)

    def license_fields_with(self, usage):
        """Each license field with its type's seat use, which becomes the field's help text."""
        pairs = []
        for seat in usage.seats:
            name = f"{seat.user_type}_licenses"
            self.fields[name].help_text = f"{seat.used} in use"
            pairs.append((self[name], seat))
        return pairs

    def clean_slug(self):
        slug = self.cleaned_data["slug"].strip().lower()
        if not slug:
            slug = suggest_slug(self.data.get("name", ""))
            if not slug:
                raise forms.ValidationError(
                    "Enter a portal URL name: the name has no letters or numbers to make one from."
                )
        if slug in RESERVED_SLUGS:
            raise forms.ValidationError(f"'{slug}' is reserved. Pick another portal URL name.")
        # What the help text says (a slug field also takes underscores, and a lone hyphen); an
        # account's name from before is kept as it is.
        if slug != self.instance.slug and not _PORTAL_URL_NAME.fullmatch(slug):
            raise forms.ValidationError(SLUG_RULE)
        return slug

    def create(self, *, by, ip):
        """The new account with its audit event, or None when another admin took the slug
        between validation and saving (the form then carries the error)."""
        try:
            with transaction.atomic():
                account = self.save()
                audit.record(
                    "create_portal_account",
                    by=by,
                    portal_account=account,
                    after=account_snapshot(account),
                    ip=ip,
                )
        except IntegrityError:
            self.instance.pk = None
            self.add_error("slug", "Another portal account has just taken this portal URL name.")
            return None
        return account

    def update(self, *, by, ip):
        """Saves the changes under the account's row lock, the one license checks take, so a
        seat claimed at the same moment is counted against the new numbers. Sets `changes`
        (field -> new value) and `license_warnings` (user types now using more seats than they
        have); False when another admin took the slug meanwhile (the form carries the error)."""
        self.changes, self.license_warnings = {}, []
        try:
            with transaction.atomic():
                account = PortalAccount.objects.select_for_update().get(pk=self.instance.pk)
                before = account_snapshot(account)
                for field in ACCOUNT_FIELDS:
                    setattr(account, field, self.cleaned_data[field])
                old, new = _changes(before, account_snapshot(account))
                if new:
                    account.save(update_fields=list(new))
                    audit.record(
                        "update_portal_account",
                        by=by,
                        portal_account=account,
                        before=old,
                        after=new,
                        ip=ip,
                    )
                    self.license_warnings = _over_limit(account, new)
        except IntegrityError:
            self.add_error("slug", "Another portal account has just taken this portal URL name.")
            return False
        self.changes = new
        return True


def _over_limit(account, changed_fields):
    warnings = []
    for user_type in UserType:
        if f"{user_type}_licenses" not in changed_fields:
            continue
        used, limit = licenses.seats_used(account, user_type), account.licenses_for(user_type)
        if used > limit:
            label = user_type.label
            warnings.append(
                f"{label} licenses are now {limit}, but {used} are in use. The users keep their "
                f"access, but nobody new can be invited or enabled as a {label} user until "
                f"{used - limit} of them are disabled or deleted."
            )
    return warnings


ROLE_TYPE_LOCKED = (
    "Users have the role '{name}', so its user type stays {type}: a user's type is their "
    "role's. To make them {new} users, create a {new} role and give it to them with Change role "
    "on the Users page (that checks the {new} licenses)."
)


class RoleForm(forms.ModelForm):
    """A role's name, unique per account and case-sensitive: 'Partner' and 'partner' are two
    roles, as the CRM and CSV files spell them; and its user type, which every user of the role
    has. The type changes only while nobody has the role (ROLE_TYPE_LOCKED): moving users
    between types is Change role's job, with its license check per user."""

    class Meta:
        model = Role
        fields = ["name", "user_type"]
        labels = {"name": "Role name", "user_type": "User type"}
        help_texts = {
            "user_type": "Everybody with this role is a user of this type and takes its license."
        }

    def __init__(self, *args, person, account, instance=None, **kwargs):
        # A copy, as for PortalAccountForm: the page keeps showing the saved name on errors.
        super().__init__(*args, instance=copy(instance) if instance else None, **kwargs)
        self.person, self.account = person, account
        self.instance.portal_account = account
        # Role names are matched as typed by the CRM, CSV files and the API: an invisible
        # character would make a role nobody can name.
        self.fields["name"].validators.append(refuse_control_characters)
        self.fields["user_type"].choices = UserType.choices

    def clean_name(self):
        name = self.cleaned_data["name"]
        # The model's unique constraint names portal_account, which is not a form field, so
        # ModelForm validation skips it; check here so a duplicate is a message, not a 500.
        if (
            scoping.roles(self.person, self.account)
            .filter(name=name)
            .exclude(pk=self.instance.pk)
            .exists()
        ):
            raise forms.ValidationError(f"This account already has a role named '{name}'.")
        return name

    def _refuse_type_change(self, role):
        """The message when the type may not change (the role has users), else ""."""
        old, new = role.user_type, self.cleaned_data["user_type"]
        if old == new:
            return ""
        # exists(), not count(): one index probe however many users the role has.
        if not User.objects.filter(role=role).exists():
            return ""
        return ROLE_TYPE_LOCKED.format(
            name=role.name,
            type=UserType(old).label,
            new=UserType(new).label,
        )

    def save_audited(self, *, by, ip):
        """Creates or changes the role with its audit event; False when another admin took the
        name between validation and saving, or users have the role and the type would change
        (the form then carries the error). Under the account's row lock, which every invite and
        role change takes before reading a role's type, so none of them sees the old type."""
        creating = self.instance.pk is None
        try:
            with transaction.atomic():
                PortalAccount.objects.select_for_update().filter(pk=self.account.pk).first()
                if creating:
                    before = {}
                else:
                    saved = Role.objects.get(pk=self.instance.pk)
                    before = {"name": saved.name, "user_type": saved.user_type}
                    refused = self._refuse_type_change(saved)
                    if refused:
                        self.add_error("user_type", refused)
                        return False
                role = self.save()
                after = {"name": role.name, "user_type": role.user_type}
                changed = [field for field in after if before.get(field) != after[field]]
                if creating or changed:
                    audit.record(
                        _role_action(creating, changed),
                        by=by,
                        portal_account=self.account,
                        before={field: before[field] for field in changed if before},
                        after={**after, "active": role.active},
                        ip=ip,
                    )
        except IntegrityError:
            if creating:
                self.instance.pk = None
            self.add_error("name", f"This account already has a role named '{self.instance.name}'.")
            return False
        return True


def _role_action(creating, changed):
    if creating:
        return "create_role"
    return "rename_role" if "name" in changed else "change_role_type"


def set_role_active(role, active, *, by, ip):
    """Activates or deactivates a role. Users who have it keep it; an inactive role just
    cannot be given to anybody new. Returns whether anything changed."""
    with transaction.atomic():
        role = Role.objects.select_for_update().get(pk=role.pk)
        if role.active == active:
            return False
        role.active = active
        role.save(update_fields=["active"])
        audit.record(
            "activate_role" if active else "deactivate_role",
            by=by,
            portal_account=role.portal_account,
            before={"name": role.name, "active": not active},
            after={"name": role.name, "active": active},
            ip=ip,
        )
    return True
